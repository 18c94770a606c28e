//! The compact, facts-only form of the official PVE API schema that the lab
//! commits (`lab/apidoc/pve-apidoc.compact.json`) and embeds.
//!
//! Owns: turning the official `pve-apidoc.json` (a tree of path nodes with
//! prose for people) into a flat list of path nodes (`{"path", "info"}`, in
//! the official file's depth-first order) that keeps every fact a client or
//! the validator can observe — methods, parameter names, `type`, `format`
//! (named or inline property-string formats), `pattern`, `enum`, ranges,
//! lengths, `default`, `optional`, `requires`, `alias`, `typetext`,
//! `returns` shapes, `permissions` (verbatim), `allowtoken`, `protected`,
//! `proxyto`, ... — and drops the prose: `description`,
//! `verbose_description`, `title`, `format_description`, and the viewer's
//! `renderer`/`links`/`text`/`leaf`. One fact lives only in prose: the index
//! range of a `name[n]` parameter ("(n is 0 to 31)"), which the validator
//! reads; its description is cut down to exactly that phrase.
//! The text form is one path node per line, so a schema update diffs by path.
//! Must not: change any fact (the `apidoc_compact` test compares validation
//! outcomes of both forms).

use serde_json::{Map, Value};

/// Keys of a parameter/return schema that are prose for people.
const PROSE: [&str; 6] = ["description", "verbose_description", "title", "format_description", "renderer", "links"];

/// The compact form of a parsed official schema (or of an already compact one:
/// compacting is idempotent).
pub fn compact(official: &Value) -> Result<Value, String> {
    let roots = official.as_array().ok_or("the schema is not a JSON list of path nodes")?;
    let mut nodes = Vec::new();
    for root in roots {
        flatten(root, &mut nodes)?;
    }
    Ok(Value::Array(nodes))
}

/// The committed text: a JSON list with one path node per line, ending in a newline.
pub fn to_text(compact: &Value) -> String {
    let nodes = compact.as_array().map(Vec::as_slice).unwrap_or(&[]);
    let lines: Vec<String> = nodes.iter().map(|n| serde_json::to_string(n).expect("JSON values serialize")).collect();
    format!("[\n{}\n]\n", lines.join(",\n"))
}

fn flatten(node: &Value, out: &mut Vec<Value>) -> Result<(), String> {
    let path = node["path"].as_str().ok_or("a path node without \"path\"")?;
    let mut compact = Map::new();
    compact.insert("path".into(), Value::String(path.to_string()));
    if let Some(info) = node["info"].as_object().filter(|i| !i.is_empty()) {
        let mut methods = Map::new();
        for (method, info) in info {
            methods.insert(method.clone(), method_info(info));
        }
        compact.insert("info".into(), Value::Object(methods));
    }
    out.push(Value::Object(compact));
    for child in node["children"].as_array().into_iter().flatten() {
        flatten(child, out)?;
    }
    Ok(())
}

/// A method's `info`: everything but its `description`; `parameters` and
/// `returns` without prose; `permissions` and the flags verbatim.
fn method_info(info: &Value) -> Value {
    let Some(info) = info.as_object() else { return info.clone() };
    let mut out = Map::new();
    for (k, v) in info {
        match k.as_str() {
            "description" => {}
            "parameters" | "returns" => {
                out.insert(k.clone(), schema(v));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// A JSON schema without prose, recursively (`properties`, `items`,
/// `additionalProperties`, inline `format` objects, `oneOf`).
fn schema(s: &Value) -> Value {
    let Some(s) = s.as_object() else { return s.clone() };
    let mut out = Map::new();
    for (k, v) in s {
        if PROSE.contains(&k.as_str()) {
            continue;
        }
        let v = match (k.as_str(), v) {
            ("properties", Value::Object(props)) | ("format", Value::Object(props)) => properties(props),
            ("items", _) | ("additionalProperties", Value::Object(_)) => schema(v),
            ("oneOf", Value::Array(list)) => Value::Array(list.iter().map(schema).collect()),
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

fn properties(props: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for (name, p) in props {
        let mut compact = schema(p);
        if name.ends_with("[n]") {
            if let (Some(range), Value::Object(c)) = (index_range(&p["description"]), &mut compact) {
                c.insert("description".into(), Value::String(range));
            }
        }
        out.insert(name.clone(), compact);
    }
    Value::Object(out)
}

/// "(n is 0 to N)" out of a `name[n]` parameter's description.
fn index_range(description: &Value) -> Option<String> {
    let d = description.as_str()?;
    let start = d.find("(n is 0 to ")?;
    let end = start + d[start..].find(')')?;
    let range = &d[start..=end];
    let digits = range.strip_prefix("(n is 0 to ")?.strip_suffix(')')?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| range.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn prose_goes_facts_stay() {
        let official = json!([{
            "path": "/nodes", "text": "nodes", "leaf": 0,
            "info": {"GET": {
                "description": "Cluster node index.", "method": "GET", "name": "index",
                "permissions": {"description": "kept verbatim", "user": "all"},
                "parameters": {"additionalProperties": 0, "properties": {
                    "net[n]": {"type": "string", "format": {"model": {"type": "string", "enum": ["virtio"],
                        "description": "NIC model", "default_key": 1}},
                        "description": "Specify network devices (n is 0 to 31). More text.", "optional": 1},
                    "description": {"type": "string", "description": "A parameter named description.",
                        "maxLength": 8192, "optional": 1}
                }},
                "returns": {"type": "array", "items": {"type": "object", "title": "x",
                    "properties": {"node": {"type": "string", "description": "The node."}}}}
            }},
            "children": [{"path": "/nodes/{node}", "text": "{node}", "leaf": 1}]
        }]);
        let c = compact(&official).unwrap();
        assert_eq!(
            c,
            json!([
                {"path": "/nodes", "info": {"GET": {
                    "method": "GET", "name": "index",
                    "permissions": {"description": "kept verbatim", "user": "all"},
                    "parameters": {"additionalProperties": 0, "properties": {
                        "net[n]": {"type": "string", "format": {"model": {"type": "string", "enum": ["virtio"],
                            "default_key": 1}}, "description": "(n is 0 to 31)", "optional": 1},
                        "description": {"type": "string", "maxLength": 8192, "optional": 1}
                    }},
                    "returns": {"type": "array", "items": {"type": "object",
                        "properties": {"node": {"type": "string"}}}}
                }}},
                {"path": "/nodes/{node}"}
            ])
        );
        assert_eq!(compact(&c).unwrap(), c, "idempotent");
        let text = to_text(&c);
        assert_eq!(text.lines().count(), 4);
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), c);
    }
}
