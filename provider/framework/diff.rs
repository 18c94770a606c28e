//! The structural diff of old and new inputs, with property paths (`cpu.cores`,
//! `disks[1].size`), honouring `ignoreChanges` and the schema's
//! `replace_on_changes`. Works on JSON projections, where an unknown value is the
//! unknown sentinel string and so always differs from a known one.

use serde_json::Value as Json;

use crate::value::{PathSegment, PropertyPath};

/// What happened to one property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffKind {
    /// Present only in the new inputs.
    Add,
    /// Present only in the old inputs.
    Delete,
    /// Present in both, different.
    Update,
}

/// One changed property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyDiff {
    /// Where, e.g. `disks[1].size`.
    pub path: PropertyPath,
    /// How it changed.
    pub kind: DiffKind,
    /// Whether the change forces a replacement.
    pub replace: bool,
    /// Whether `path` is an input; `false` for an output due to change although
    /// no input did (see `CustomResource::due_changes`).
    pub input: bool,
}

/// The outcome of a diff.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffResult {
    /// Every changed path (leaves where both sides are objects or arrays).
    pub diffs: Vec<PropertyDiff>,
    /// Delete the old resource before creating its replacement.
    pub delete_before_replace: bool,
}

impl DiffResult {
    /// Whether anything changed.
    pub fn has_changes(&self) -> bool {
        !self.diffs.is_empty()
    }

    /// Whether any change replaces the resource.
    pub fn replaces(&self) -> bool {
        self.diffs.iter().any(|d| d.replace)
    }

    /// The top-level property names that changed, in order, without duplicates.
    pub fn changed_keys(&self) -> Vec<String> {
        top_keys(self.diffs.iter().map(|d| &d.path))
    }

    /// The top-level property names whose change replaces.
    pub fn replace_keys(&self) -> Vec<String> {
        top_keys(self.diffs.iter().filter(|d| d.replace).map(|d| &d.path))
    }
}

fn top_keys<'a>(paths: impl Iterator<Item = &'a PropertyPath>) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for p in paths {
        if let Some(PathSegment::Key(k)) = p.segments().first() {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    keys
}

/// Options of a structural diff.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions<'a> {
    /// Patterns whose changes replace the resource (from the schema).
    pub replace: &'a [PropertyPath],
    /// Patterns the user asked to ignore (`ignoreChanges`).
    pub ignore: &'a [PropertyPath],
}

/// Diffs two input objects. `null` and absent are the same.
pub fn structural(old: &Json, new: &Json, opts: &DiffOptions<'_>) -> DiffResult {
    let mut diffs = Vec::new();
    walk(old, new, PropertyPath::root(), &mut diffs);
    diffs.retain(|d| !opts.ignore.iter().any(|i| i.matches_prefix(&d.path)));
    for d in &mut diffs {
        // A change at or under a replace path replaces; so does adding or removing
        // a whole object that contains one.
        d.replace = opts
            .replace
            .iter()
            .any(|r| r.matches_prefix(&d.path) || (d.kind != DiffKind::Update && pattern_under(r, &d.path)));
    }
    DiffResult { diffs, delete_before_replace: false }
}

/// True when `pattern` names something strictly below `path`.
fn pattern_under(pattern: &PropertyPath, path: &PropertyPath) -> bool {
    pattern.len() > path.len() && PropertyPath::from_segments(pattern.segments()[..path.len()].to_vec()).matches(path)
}

fn walk(old: &Json, new: &Json, at: PropertyPath, out: &mut Vec<PropertyDiff>) {
    match (old, new) {
        (Json::Object(o), Json::Object(n)) => {
            for (k, ov) in o {
                let nv = n.get(k).unwrap_or(&Json::Null);
                walk(ov, nv, at.key(k.clone()), out);
            }
            for (k, nv) in n {
                if !o.contains_key(k) {
                    walk(&Json::Null, nv, at.key(k.clone()), out);
                }
            }
        }
        (Json::Array(o), Json::Array(n)) => {
            for i in 0..o.len().max(n.len()) {
                walk(o.get(i).unwrap_or(&Json::Null), n.get(i).unwrap_or(&Json::Null), at.index(i), out);
            }
        }
        (Json::Null, Json::Null) => {}
        (Json::Null, _) => out.push(PropertyDiff { path: at, kind: DiffKind::Add, replace: false, input: true }),
        (_, Json::Null) => out.push(PropertyDiff { path: at, kind: DiffKind::Delete, replace: false, input: true }),
        (o, n) if numbers_equal(o, n) || o == n => {}
        _ => out.push(PropertyDiff { path: at, kind: DiffKind::Update, replace: false, input: true }),
    }
}

/// `1` and `1.0` are the same number (the wire carries doubles).
fn numbers_equal(a: &Json, b: &Json) -> bool {
    matches!((a.as_f64(), b.as_f64()), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> PropertyPath {
        PropertyPath::parse(s).unwrap()
    }

    fn paths(r: &DiffResult) -> Vec<(String, DiffKind, bool)> {
        r.diffs.iter().map(|d| (d.path.to_string(), d.kind, d.replace)).collect()
    }

    #[test]
    fn reports_nested_paths_with_kinds() {
        let old = json!({"cpu": {"cores": 2}, "tags": ["a", "b"], "name": "x"});
        let new = json!({"cpu": {"cores": 4, "type": "host"}, "tags": ["a"], "name": "x"});
        let r = structural(&old, &new, &DiffOptions::default());
        assert_eq!(
            paths(&r),
            vec![
                ("cpu.cores".into(), DiffKind::Update, false),
                ("cpu.type".into(), DiffKind::Add, false),
                ("tags[1]".into(), DiffKind::Delete, false),
            ]
        );
        assert_eq!(r.changed_keys(), vec!["cpu", "tags"]);
    }

    #[test]
    fn replace_and_ignore_patterns_apply_by_prefix() {
        let old = json!({"nodeName": "a", "disks": [{"size": 10}, {"size": 20}], "name": "x"});
        let new = json!({"nodeName": "b", "disks": [{"size": 10}, {"size": 30}], "name": "y"});
        let replace = [p("nodeName")];
        let ignore = [p("disks[*].size")];
        let r = structural(&old, &new, &DiffOptions { replace: &replace, ignore: &ignore });
        assert_eq!(
            paths(&r),
            vec![("nodeName".into(), DiffKind::Update, true), ("name".into(), DiffKind::Update, false)]
        );
        assert!(r.replaces());
        assert_eq!(r.replace_keys(), vec!["nodeName"]);
    }

    #[test]
    fn adding_an_object_containing_a_replace_path_replaces() {
        let replace = [p("clone.vmId")];
        let r =
            structural(&json!({}), &json!({"clone": {"vmId": 9000}}), &DiffOptions { replace: &replace, ignore: &[] });
        assert_eq!(paths(&r), vec![("clone".into(), DiffKind::Add, true)]);
    }

    #[test]
    fn equal_values_and_null_versus_absent_are_no_change() {
        let r = structural(&json!({"a": 1, "b": null}), &json!({"a": 1.0}), &DiffOptions::default());
        assert!(!r.has_changes());
    }

    #[test]
    fn an_unknown_new_value_is_an_update() {
        let r = structural(&json!({"a": "x"}), &json!({"a": crate::value::UNKNOWN}), &DiffOptions::default());
        assert_eq!(paths(&r), vec![("a".into(), DiffKind::Update, false)]);
    }
}
