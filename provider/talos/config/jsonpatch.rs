//! RFC 6902 JSON patches, applied as machinery's `configpatcher.JSON6902`
//! applies them (evanphx/json-patch on the YAML converted to JSON).
//!
//! Owns: the operation type, decoding a JSON array (or a YAML list) of
//! operations, and applying them to a JSON document with RFC 6901 pointers.
//! Must not: know about configurations (the caller converts to and from JSON
//! and enforces the single-document rule).

use serde_json::Value as Json;

/// One operation.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPatchOp {
    /// `add`, `remove`, `replace`, `move`, `copy` or `test`.
    pub op: String,
    /// Target (RFC 6901 pointer).
    pub path: String,
    /// Source of `move` and `copy`.
    pub from: Option<String>,
    /// Value of `add`, `replace` and `test`.
    pub value: Option<Json>,
}

impl JsonPatchOp {
    /// An operation from a decoded JSON/YAML object (unknown keys are ignored, as evanphx does).
    pub fn from_object(obj: &serde_json::Map<String, Json>) -> JsonPatchOp {
        let text = |k: &str| obj.get(k).and_then(Json::as_str).map(str::to_owned);
        JsonPatchOp {
            op: text("op").unwrap_or_else(|| "unknown".to_owned()),
            path: text("path").unwrap_or_default(),
            from: text("from"),
            value: obj.get("value").cloned(),
        }
    }
}

/// Applies `ops` to `doc` in order.
pub fn apply(doc: &mut Json, ops: &[JsonPatchOp]) -> Result<(), String> {
    for op in ops {
        apply_one(doc, op)?;
    }
    Ok(())
}

fn apply_one(doc: &mut Json, op: &JsonPatchOp) -> Result<(), String> {
    let value = || op.value.clone().ok_or_else(|| format!("{} operation has no value", op.op));
    let from = || op.from.clone().ok_or_else(|| format!("{} operation has no from", op.op));
    match op.op.as_str() {
        "add" => add(doc, &op.path, value()?)
            .map_err(|e| format!("add operation does not apply: doc is missing path: {:?}: {e}", op.path)),
        "remove" => remove(doc, &op.path)
            .map(drop)
            .map_err(|e| format!("remove operation does not apply: doc is missing path: {:?}: {e}", op.path)),
        "replace" => {
            let v = value()?;
            let target = pointer_mut(doc, &op.path).ok_or_else(|| {
                format!("replace operation does not apply: doc is missing key: {}: missing value", op.path)
            })?;
            *target = v;
            Ok(())
        }
        "move" => {
            let from = from()?;
            let v = remove(doc, &from)
                .map_err(|e| format!("move operation does not apply: doc is missing from path: {from}: {e}"))?;
            add(doc, &op.path, v).map_err(|e| {
                format!("move operation does not apply: doc is missing destination path: {}: {e}", op.path)
            })
        }
        "copy" => {
            let from = from()?;
            let v = doc.pointer(&from).cloned().ok_or_else(|| {
                format!("copy operation does not apply: doc is missing from path: {from}: missing value")
            })?;
            add(doc, &op.path, v).map_err(|e| {
                format!("copy operation does not apply: doc is missing destination path: {}: {e}", op.path)
            })
        }
        "test" => {
            let expected = value()?;
            match doc.pointer(&op.path) {
                Some(actual) if *actual == expected => Ok(()),
                _ => Err(format!("testing value {} failed: test failed", op.path)),
            }
        }
        other => Err(format!("Unexpected kind: {other}")),
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Splits a pointer into its parent pointer and last token.
fn split(path: &str) -> Result<(&str, String), String> {
    if path.is_empty() {
        return Err("missing value".into());
    }
    let i = path.rfind('/').ok_or("invalid JSON pointer")?;
    Ok((&path[..i], unescape(&path[i + 1..])))
}

fn pointer_mut<'a>(doc: &'a mut Json, path: &str) -> Option<&'a mut Json> {
    if path.is_empty() {
        return Some(doc);
    }
    doc.pointer_mut(path)
}

fn add(doc: &mut Json, path: &str, value: Json) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split(path)?;
    match pointer_mut(doc, parent).ok_or("missing value")? {
        Json::Object(map) => {
            map.insert(last, value);
            Ok(())
        }
        Json::Array(items) => {
            let index = if last == "-" { items.len() } else { array_index(&last, items.len() + 1)? };
            items.insert(index, value);
            Ok(())
        }
        _ => Err("missing value".into()),
    }
}

fn remove(doc: &mut Json, path: &str) -> Result<Json, String> {
    let (parent, last) = split(path)?;
    match pointer_mut(doc, parent).ok_or("missing value")? {
        Json::Object(map) => map.shift_remove(&last).ok_or_else(|| "missing value".to_owned()),
        Json::Array(items) => {
            let index = array_index(&last, items.len())?;
            Ok(items.remove(index))
        }
        _ => Err("missing value".into()),
    }
}

fn array_index(token: &str, bound: usize) -> Result<usize, String> {
    let i: usize = token.parse().map_err(|_| format!("invalid array index {token:?}"))?;
    if i >= bound {
        return Err(format!("Unable to access invalid index: {i}: invalid index referenced"));
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(op: &str, path: &str, value: Option<Json>) -> JsonPatchOp {
        JsonPatchOp { op: op.into(), path: path.into(), from: None, value }
    }

    #[test]
    fn applies_rfc6902_operations() {
        let mut doc = json!({"machine": {"install": {"disk": "/dev/sda"}, "certSANs": ["a"]}});
        apply(
            &mut doc,
            &[
                op("replace", "/machine/install/disk", Some(json!("/dev/vda"))),
                op("add", "/machine/certSANs/-", Some(json!("b"))),
                op("add", "/machine/certSANs/0", Some(json!("z"))),
                op("remove", "/machine/certSANs/1", None),
                op("test", "/machine/install/disk", Some(json!("/dev/vda"))),
            ],
        )
        .unwrap();
        assert_eq!(doc, json!({"machine": {"install": {"disk": "/dev/vda"}, "certSANs": ["z", "b"]}}));
        let err = apply(&mut doc, &[op("remove", "/machine/nope", None)]).unwrap_err();
        assert!(err.starts_with("remove operation does not apply"), "{err}");
    }
}
