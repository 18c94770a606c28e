//! Questions the runtime asks of a schema: at which property paths values are
//! always secret, and which paths force a replacement. Answers are path
//! patterns (`certs.*.key`, `disks[*].size`); [`expand`] turns a pattern into
//! the concrete paths present in a JSON value.

use std::collections::HashSet;

use serde_json::Value as Json;

use super::{Property, PropertySpec, TypeRegistry, TypeSpec};
use crate::value::{PathSegment, PropertyPath};

/// Paths (patterns) of every schema-secret property under `props`, nested types included.
pub fn secret_patterns(props: &[Property], reg: &TypeRegistry) -> Vec<PropertyPath> {
    let mut out = Vec::new();
    for p in props {
        let path = PropertyPath::root().key(p.name);
        if p.secret {
            out.push(path);
            continue;
        }
        collect_nested(&p.type_spec, &path, reg, &mut HashSet::new(), &mut out, Pick::SECRET);
    }
    out
}

/// Paths (patterns) of every property marked `replace_on_changes`, nested types included.
pub fn replace_patterns(props: &[Property], reg: &TypeRegistry) -> Vec<PropertyPath> {
    let mut out = Vec::new();
    for p in props {
        let path = PropertyPath::root().key(p.name);
        if p.replace_on_changes {
            out.push(path.clone());
        }
        collect_nested(&p.type_spec, &path, reg, &mut HashSet::new(), &mut out, Pick::REPLACE);
    }
    out
}

/// Which properties to collect, and whether to look below a collected one.
#[derive(Clone, Copy)]
struct Pick {
    test: fn(&PropertySpec) -> bool,
    /// A secret object is secret as a whole: nothing below it needs its own path.
    stop_below: bool,
}

impl Pick {
    const SECRET: Pick = Pick { test: |s| s.secret, stop_below: true };
    const REPLACE: Pick = Pick { test: |s| s.replace_on_changes, stop_below: false };
}

/// Descends into arrays, maps and named object types, pushing the path of every
/// property `pick` selects.
fn collect_nested(
    t: &TypeSpec,
    at: &PropertyPath,
    reg: &TypeRegistry,
    seen: &mut HashSet<String>,
    out: &mut Vec<PropertyPath>,
    pick: Pick,
) {
    if let Some(items) = &t.items {
        collect_nested(items, &at_wild(at), reg, seen, out, pick);
    }
    if let Some(values) = &t.additional_properties {
        collect_nested(values, &at_wild(at), reg, seen, out, pick);
    }
    let Some(token) = t.referenced_type_token() else { return };
    if !seen.insert(token.to_string()) {
        return; // recursive type: its paths were already collected one level up
    }
    if let Some(def) = reg.get(token) {
        for (name, spec) in &def.properties {
            let path = at.key(name.clone());
            if (pick.test)(spec) {
                out.push(path.clone());
                if pick.stop_below {
                    continue;
                }
            }
            collect_nested(&spec.type_spec, &path, reg, seen, out, pick);
        }
    }
    seen.remove(token);
}

fn at_wild(at: &PropertyPath) -> PropertyPath {
    let mut p = at.clone();
    p.push(PathSegment::Wildcard);
    p
}

/// The concrete paths in `value` that `pattern` names (wildcards over array
/// indices and object keys). Absent paths yield nothing.
pub fn expand(pattern: &PropertyPath, value: &Json) -> Vec<PropertyPath> {
    let mut out = Vec::new();
    expand_from(pattern.segments(), value, PropertyPath::root(), &mut out);
    out
}

fn expand_from(rest: &[PathSegment], value: &Json, at: PropertyPath, out: &mut Vec<PropertyPath>) {
    let Some((first, tail)) = rest.split_first() else {
        out.push(at);
        return;
    };
    match (first, value) {
        (PathSegment::Key(k), Json::Object(m)) => {
            if let Some(v) = m.get(k) {
                expand_from(tail, v, at.key(k.clone()), out);
            }
        }
        (PathSegment::Index(i), Json::Array(a)) => {
            if let Some(v) = a.get(*i) {
                expand_from(tail, v, at.index(*i), out);
            }
        }
        (PathSegment::Wildcard, Json::Array(a)) => {
            for (i, v) in a.iter().enumerate() {
                expand_from(tail, v, at.index(i), out);
            }
        }
        (PathSegment::Wildcard, Json::Object(m)) => {
            for (k, v) in m {
                expand_from(tail, v, at.key(k.clone()), out);
            }
        }
        _ => {}
    }
}
