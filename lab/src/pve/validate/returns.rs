//! Checks an answer's `data` against the schema's `returns` of its endpoint
//! with the rules of PVE's JSON schema validator: type, `properties` (a
//! property that is not `optional` must be there), `items`, `enum`, and no
//! undeclared property where `additionalProperties` is 0. As in PVE's Perl verifier, a number may be a
//! string of digits (PVE answers `GET /cluster/nextid` with `"101"`) and a
//! boolean 0/1 (number or string) or true/false.
//! Formats and patterns are not checked here (the lab's answers come from
//! values that passed them on the way in).
//!
//! Owns: [`check_returns`]. Must not: change answers (tests use it).

use serde_json::Value;

/// Every way `data` differs from `returns`, as `"path: problem"` (`data.items[0].status: ...`).
pub fn check_returns(returns: &Value, data: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(returns, data, "data", &mut errors);
    errors
}

fn flag(v: Option<&Value>) -> Option<bool> {
    v.map(|v| match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty() && s != "0",
        _ => false,
    })
}

/// Perl's `/^-?\d+$/`.
fn is_integer(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(schema) = schema.as_object() else { return };
    // `null` where PVE's Perl returns undef for an optional result.
    if value.is_null()
        && (schema.get("type").and_then(Value::as_str) == Some("null") || flag(schema.get("optional")) == Some(true))
    {
        return;
    }
    let ty = schema.get("type").and_then(Value::as_str).unwrap_or("any");
    let type_ok = match ty {
        "null" => value.is_null(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64() || value.as_str().is_some_and(is_integer),
        "number" => value.is_number() || value.as_str().is_some_and(|s| s.parse::<f64>().is_ok()),
        "boolean" => {
            value.is_boolean() || matches!(value.as_u64(), Some(0 | 1)) || matches!(value.as_str(), Some("0" | "1"))
        }
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    };
    if !type_ok {
        errors.push(format!("{path}: type check ('{ty}') failed - got {value}"));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        let text = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
        if !allowed.iter().any(|a| text(a) == text(value)) {
            let list: Vec<String> = allowed.iter().map(text).collect();
            errors.push(format!(
                "{path}: value '{}' does not have a value in the enumeration '{}'",
                text(value),
                list.join(", ")
            ));
        }
    }
    match value {
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Value::Object(map) => {
            let Some(props) = schema.get("properties").and_then(Value::as_object) else { return };
            for (name, prop) in props {
                match map.get(name) {
                    Some(v) => check(prop, v, &format!("{path}.{name}"), errors),
                    None if flag(prop.get("optional")) != Some(true) => {
                        errors.push(format!("{path}.{name}: property is missing and it is not optional"))
                    }
                    None => {}
                }
            }
            if flag(schema.get("additionalProperties")) == Some(false) {
                for name in map.keys().filter(|k| !props.contains_key(*k)) {
                    errors.push(format!("{path}.{name}: property is not defined in schema and the schema does not allow additional properties"));
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::check_returns;

    #[test]
    fn types_properties_items_and_enums() {
        let schema = json!({"type": "array", "items": {"type": "object", "properties": {
            "status": {"type": "string", "enum": ["running", "stopped"]},
            "vmid": {"type": "integer"},
            "name": {"type": "string", "optional": 1},
            "template": {"type": "boolean", "optional": 1}
        }}});
        assert!(
            check_returns(&schema, &json!([{"status": "running", "vmid": 100, "template": 1, "extra": 2}])).is_empty()
        );
        assert!(check_returns(&schema, &json!([{"status": "running", "vmid": "100", "template": true}])).is_empty());
        assert_eq!(
            check_returns(&schema, &json!([{"status": "paused", "vmid": "1x", "template": 2}, {"status": "stopped"}])),
            vec![
                "data[0].status: value 'paused' does not have a value in the enumeration 'running, stopped'",
                "data[0].vmid: type check ('integer') failed - got \"1x\"",
                "data[0].template: type check ('boolean') failed - got 2",
                "data[1].vmid: property is missing and it is not optional",
            ]
        );
        assert_eq!(check_returns(&schema, &json!({})), vec!["data: type check ('array') failed - got {}"]);
        let closed = json!({"type": "object", "additionalProperties": 0, "properties": {"a": {"type": "null"}}});
        assert_eq!(
            check_returns(&closed, &json!({"a": null, "b": 1})),
            vec!["data.b: property is not defined in schema and the schema does not allow additional properties"]
        );
        assert!(check_returns(&json!({"type": "null"}), &json!(null)).is_empty());
        assert!(!check_returns(&json!({"type": "string"}), &json!(null)).is_empty());
    }
}
