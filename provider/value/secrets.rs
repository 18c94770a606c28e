//! Secret bookkeeping: finding, marking, propagating and redacting secrets in property bags.
//!
//! Owns the rule that keeps secrets secret across a resource operation: a provider that
//! negotiated `acceptSecrets` receives secrets wrapped and must wrap them again in what it
//! returns, or the engine stores them in plaintext. The rule implemented here is "a secret input
//! stays secret in the output of the same path" (see [`propagate_input_secrets`]); schema-level
//! secret outputs are the resource's business, not this module's.
//!
//! Must not: decide which values are secret on its own (it only carries secretness from where
//! it was found to where it should be), or unwrap a secret except for [`strip_secrets`], whose
//! result is for logs and replaces the value rather than revealing it.

use super::path::PathSegment;
use super::{json::Projection, OutputValue, PropertyMap, PropertyPath, PropertyValue, ResourceReference};

/// What [`strip_secrets`] puts in place of a secret.
pub const REDACTED: &str = "[secret]";

/// Adds to `outputs` (the secret paths of a resource's outputs, e.g. a [`Projection`]'s
/// `secrets` about to be given to [`super::from_json`]) every secret path of `inputs`, so that a
/// value that was secret on the way in is secret at the same path on the way out.
///
/// Paths already covered (equal to or under an existing output secret path) are not added;
/// output paths that a newly added path covers are dropped as redundant. Input paths that do
/// not exist in the outputs are kept anyway: `from_json` ignores paths that find nothing,
/// which is the "only when the output at that path exists" half of the rule, applied where the
/// output value is at hand.
pub fn propagate_input_secrets(inputs: &Projection, outputs: &mut Vec<PropertyPath>) {
    for secret in &inputs.secrets {
        if outputs.iter().any(|o| o.is_prefix_of(secret)) {
            continue;
        }
        outputs.retain(|o| !secret.is_prefix_of(o));
        outputs.push(secret.clone());
    }
}

/// Wraps the value at each of `paths` in a secret.
///
/// Paths that find nothing are ignored, and so are paths that run through an unknown (which
/// stays unknown) or through a value that is already secret (already covered). A
/// [`PathSegment::Wildcard`] applies to every element. The root path cannot be wrapped (a
/// property bag is not a value) and is ignored.
pub fn mark_secret_paths(map: &mut PropertyMap, paths: &[PropertyPath]) {
    // Outer paths first, so that an inner path then meets the new secret wrapper and stops
    // instead of producing a secret nested in a secret.
    let mut ordered: Vec<&PropertyPath> = paths.iter().collect();
    ordered.sort_by_key(|p| p.len());
    for path in ordered {
        match path.segments().split_first() {
            Some((PathSegment::Key(k), rest)) => {
                if let Some(v) = map.get_mut(k) {
                    mark(v, rest);
                }
            }
            Some((PathSegment::Wildcard, rest)) => map.values_mut().for_each(|v| mark(v, rest)),
            _ => {}
        }
    }
}

fn mark(v: &mut PropertyValue, path: &[PathSegment]) {
    let Some((seg, rest)) = path.split_first() else {
        match v {
            PropertyValue::Secret(_) => {}
            // An output value has its own secret flag; wrapping it would hide the dependencies.
            PropertyValue::Output(o) => o.secret = true,
            other => *other = PropertyValue::secret(std::mem::replace(other, PropertyValue::Null)),
        }
        return;
    };
    match (v, seg) {
        // A known, non-secret output value is transparent: the path continues inside it.
        (PropertyValue::Output(OutputValue { value: Some(inner), secret: false, .. }), _) => mark(inner, path),
        (PropertyValue::Object(m), PathSegment::Key(k)) => {
            if let Some(child) = m.get_mut(k) {
                mark(child, rest);
            }
        }
        (PropertyValue::Array(a), PathSegment::Index(i)) => {
            if let Some(child) = a.get_mut(*i) {
                mark(child, rest);
            }
        }
        (PropertyValue::Object(m), PathSegment::Wildcard) => m.values_mut().for_each(|c| mark(c, rest)),
        (PropertyValue::Array(a), PathSegment::Wildcard) => a.iter_mut().for_each(|c| mark(c, rest)),
        // Through a secret (already covered), an unknown (stays unknown), a scalar, or a
        // segment of the wrong kind: nothing to mark.
        _ => {}
    }
}

/// The outermost secret paths in `map`, in document order: secrets, and output values marked
/// secret. The same list [`super::to_json`] records, without building the JSON.
pub fn secret_paths_in(map: &PropertyMap) -> Vec<PropertyPath> {
    fn walk(v: &PropertyValue, path: &mut PropertyPath, out: &mut Vec<PropertyPath>) {
        if v.is_secret() {
            out.push(path.clone());
            return;
        }
        match v {
            PropertyValue::Object(m) => walk_map(m, path, out),
            PropertyValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(PathSegment::Index(i));
                    walk(item, path, out);
                    path.pop();
                }
            }
            PropertyValue::Output(OutputValue { value: Some(inner), .. }) => walk(inner, path, out),
            PropertyValue::ResourceReference(ResourceReference { id: Some(id), .. }) => walk(id, path, out),
            _ => {}
        }
    }
    fn walk_map(m: &PropertyMap, path: &mut PropertyPath, out: &mut Vec<PropertyPath>) {
        for (k, v) in m {
            path.push(PathSegment::Key(k.clone()));
            walk(v, path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk_map(map, &mut PropertyPath::root(), &mut out);
    out
}

/// True if any value in `map`, at any depth, is unknown: a computed value, an output value
/// without a value, or a resource reference whose id is not known yet.
pub fn contains_unknowns(map: &PropertyMap) -> bool {
    map.values().any(value_contains_unknowns)
}

/// [`contains_unknowns`] for a single value.
pub fn value_contains_unknowns(v: &PropertyValue) -> bool {
    match v {
        PropertyValue::Computed => true,
        PropertyValue::Secret(inner) => value_contains_unknowns(inner),
        PropertyValue::Output(o) => o.value.as_deref().is_none_or(value_contains_unknowns),
        PropertyValue::ResourceReference(r) => match r.id.as_deref() {
            None => false,
            Some(PropertyValue::String(s)) => s.is_empty(),
            Some(id) => value_contains_unknowns(id),
        },
        PropertyValue::Array(items) => items.iter().any(value_contains_unknowns),
        PropertyValue::Object(m) => contains_unknowns(m),
        PropertyValue::Null
        | PropertyValue::Bool(_)
        | PropertyValue::Number(_)
        | PropertyValue::String(_)
        | PropertyValue::Asset(_)
        | PropertyValue::Archive(_) => false,
    }
}

/// A copy of `map` fit for logs: every secret (and every output value marked secret) is
/// replaced by the string [`REDACTED`]. Everything else, unknowns included, is kept.
pub fn strip_secrets(map: &PropertyMap) -> PropertyMap {
    map.iter().map(|(k, v)| (k.clone(), strip_value(v))).collect()
}

fn strip_value(v: &PropertyValue) -> PropertyValue {
    if v.is_secret() {
        return PropertyValue::String(REDACTED.to_string());
    }
    match v {
        PropertyValue::Object(m) => PropertyValue::Object(strip_secrets(m)),
        PropertyValue::Array(items) => PropertyValue::Array(items.iter().map(strip_value).collect()),
        PropertyValue::Output(o) => PropertyValue::Output(OutputValue {
            value: o.value.as_deref().map(|inner| Box::new(strip_value(inner))),
            secret: false,
            dependencies: o.dependencies.clone(),
        }),
        PropertyValue::ResourceReference(r) => PropertyValue::ResourceReference(ResourceReference {
            id: r.id.as_deref().map(|id| Box::new(strip_value(id))),
            ..r.clone()
        }),
        other => other.clone(),
    }
}
