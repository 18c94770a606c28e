//! Parameter verification against the PVE API schema, with PVE's own error
//! texts, before any handler runs.
//!
//! Owns: turning a request's raw parameters (query or form strings, or JSON
//! body values) into typed values (`integer`, `number`, `boolean` as 0/1,
//! `string`, `array`), and collecting per-parameter errors the way
//! `PVE::JSONSchema::validate` does: unknown and missing parameters, type,
//! `enum`, `minimum`/`maximum`, `minLength`/`maxLength`, `pattern` (Perl
//! regexes, translated by [`perl_regex`]), `requires`, and property strings
//! (`format` given as an object, e.g. `net[n]`, `scsi[n]`; see
//! [`parse_property_string`]).
//! Submodules: [`formats`] (named formats: `"format": "pve-node"`,
//! `"address-list"`, and the dispatch to property-string formats registered
//! by name; [`parse_named`] for handlers), [`property_formats`] (the named
//! property-string formats of qemu-server: `pve-qm-ipconfig`,
//! `pve-qm-hostpci`, `pve-vm-cpu-conf`, ...) and [`sshkeys`] (the cloud-init
//! SSH key check PVE runs in its handlers).
//! Must not: know handlers or HTTP; the server turns the errors into
//! `400 Parameter verification failed.`.

pub mod formats;
pub mod property_formats;
pub mod returns;
pub mod sshkeys;

pub use formats::{check_format, check_named_format, is_known_format, parse_named, split_list};
pub use property_formats::{parse_hostpci, parse_ipconfig};
pub use sshkeys::{uri_unescape, validate_ssh_public_keys};

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};

use regex::Regex;
use serde_json::{Map, Number, Value};

/// Errors by parameter name (`net0`, `vmid`), each with PVE's message.
pub type ParamErrors = BTreeMap<String, String>;

/// One raw parameter value as it arrived.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    /// From a path segment, the query string or a form body.
    Text(String),
    /// From a JSON body.
    Json(Value),
}

pub const UNKNOWN: &str = "property is not defined in schema and the schema does not allow additional properties";
pub const MISSING: &str = "property is missing and it is not optional";

/// Validates `input` against a method's `parameters` schema and returns the
/// typed parameters, or every parameter error (`check_object` of PVE).
pub fn validate(parameters: &Value, input: Vec<(String, Raw)>) -> Result<Map<String, Value>, ParamErrors> {
    let empty = Map::new();
    let props = parameters["properties"].as_object().unwrap_or(&empty);
    // PVE checks the object only if the schema has `properties` or a true
    // `additionalProperties`, and rejects unknown keys only if
    // `additionalProperties` is given and false.
    let checked = parameters.get("properties").is_some() || truthy(&parameters["additionalProperties"]);
    let reject_unknown = parameters.get("additionalProperties").is_some_and(|v| !truthy(v));
    let mut grouped: Vec<(String, Vec<Raw>)> = Vec::new();
    for (name, raw) in input {
        match grouped.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(raw),
            None => grouped.push((name, vec![raw])),
        }
    }
    let mut errors = ParamErrors::new();
    let mut out = Map::new();
    for (name, mut values) in grouped {
        let raw = values.pop().expect("at least one value");
        let schema = if checked { property_schema(props, &name) } else { None };
        let Some(schema) = schema else {
            if checked && reject_unknown {
                errors.insert(name, UNKNOWN.to_string());
            } else {
                out.insert(name, raw_to_value(raw));
            }
            continue;
        };
        let checked = if schema["type"] == "array" {
            // Repeated form/query keys, or one JSON array.
            match raw {
                Raw::Json(Value::Array(items)) => values.extend(items.into_iter().map(Raw::Json)),
                raw => values.push(raw),
            }
            values
                .into_iter()
                .enumerate()
                .map(|(i, raw)| check_value(&format!("{name}[{i}]"), &schema["items"], raw))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        } else {
            check_value(&name, schema, raw)
        };
        match checked {
            Ok(v) => {
                out.insert(name, v);
            }
            Err(e) => {
                errors.insert(name, e);
            }
        }
    }
    if checked {
        for (name, schema) in props {
            if !name.ends_with("[n]") && !is_optional(schema) && !out.contains_key(name) && !errors.contains_key(name) {
                errors.insert(name.clone(), MISSING.to_string());
            }
        }
        let present: Vec<String> = out.keys().chain(errors.keys()).cloned().collect();
        for name in &present {
            let required = property_schema(props, name).and_then(|s| s["requires"].as_str());
            if let Some(required) = required {
                if !present.iter().any(|p| p == required) {
                    add_error(&mut errors, required, format!("missing property - '{name}' requires this property"));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// PVE's `add_error`: a second error on the same path is joined with a
/// literal backslash-n (PVE's code uses a single-quoted `'\n'`).
fn add_error(errors: &mut ParamErrors, path: &str, msg: String) {
    match errors.get_mut(path) {
        Some(existing) => {
            existing.push_str("\\n");
            existing.push_str(&msg);
        }
        None => {
            errors.insert(path.to_string(), msg);
        }
    }
}

fn is_optional(schema: &Value) -> bool {
    truthy(&schema["optional"]) || schema.get("alias").is_some() || schema.get("group").is_some()
}

fn raw_to_value(raw: Raw) -> Value {
    match raw {
        Raw::Text(s) => Value::String(s),
        Raw::Json(v) => v,
    }
}

/// The schema of parameter `name`: exact, or `net[n]` for `net0`, `net31`, ...
/// (the schema documents the range as "(n is 0 to N)"; without it any `n` is accepted).
fn property_schema<'a>(props: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(s) = props.get(name) {
        return Some(s);
    }
    let prefix = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let digits = &name[prefix.len()..];
    if digits.is_empty() || prefix.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    let schema = props.get(&format!("{prefix}[n]"))?;
    let description = schema["description"].as_str().unwrap_or("");
    let max = re(r"(?s).*\(n is 0 to (\d+)\).*").captures(description).and_then(|c| c[1].parse::<u64>().ok());
    match (max, digits.parse::<u64>()) {
        (Some(max), Ok(n)) if n > max => None,
        (_, Ok(_)) => Some(schema),
        (_, Err(_)) => None,
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty() && s != "0",
        Value::Null => false,
        _ => true,
    }
}

/// PVE's `parse_boolean` (used inside property strings; top-level API
/// booleans must be exactly `0` or `1`).
pub fn parse_boolean(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn is_integer(s: &str) -> bool {
    re(r"[+-]?\d+").is_match(s)
}

fn is_number(s: &str) -> bool {
    re(r"[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?").is_match(s)
}

/// A schema number as Perl interpolates it (`65520`, `0.5`).
fn perl_number(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Some(f) => format!("{f}"),
        None => v.as_str().unwrap_or_default().to_string(),
    }
}

/// Checks one value against its property schema in `check_prop`'s order
/// (type, format, pattern, maxLength, minLength, maximum, minimum, enum) and
/// returns the typed value, or PVE's message.
pub fn check_value(path: &str, schema: &Value, raw: Raw) -> Result<Value, String> {
    let ty = schema["type"].as_str();
    let s = match raw {
        Raw::Text(s) | Raw::Json(Value::String(s)) => s,
        Raw::Json(Value::Number(n)) => n.to_string(),
        Raw::Json(Value::Bool(b)) if ty == Some("boolean") => u8::from(b).to_string(),
        Raw::Json(v) => {
            let perl = match &v {
                Value::Array(_) => "ARRAY",
                Value::Object(_) => "HASH",
                _ => "JSON::PP::Boolean",
            };
            return match ty {
                Some("array") if v.is_array() => Ok(v),
                Some("object") if v.is_object() => Ok(v),
                Some(t @ ("array" | "object")) => Err(format!("type check ('{t}') failed")),
                Some(t) => Err(format!("type check ('{t}') failed - got {perl}")),
                None => Ok(v),
            };
        }
    };
    let type_ok = match ty {
        Some("boolean") => s == "0" || s == "1",
        Some("integer") => is_integer(&s),
        Some("number") => is_number(&s),
        Some("array" | "object") => return Err(format!("type check ('{}') failed", ty.unwrap_or_default())),
        _ => true,
    };
    if !type_ok {
        return Err(format!("type check ('{}') failed - got '{s}'", ty.unwrap_or_default()));
    }
    let format_result = match &schema["format"] {
        Value::String(format) => check_format(path, format, &s),
        Value::Object(format) => parse_property_string(path, format, &s).map(|_| ()),
        _ => Ok(()),
    };
    if let Err(e) = format_result {
        let newline = if e.ends_with('\n') { "" } else { "\n" };
        return Err(format!("invalid format - {e}{newline}"));
    }
    if let Some(pattern) = schema["pattern"].as_str() {
        if perl_regex(pattern).is_some_and(|re| !re.is_match(&s)) {
            return Err("value does not match the regex pattern".to_string());
        }
    }
    let len = s.chars().count() as u64;
    if let Some(max) = schema["maxLength"].as_u64() {
        if len > max {
            return Err(format!("value may only be {max} characters long"));
        }
    }
    if let Some(min) = schema["minLength"].as_u64() {
        if len < min {
            return Err(format!("value must be at least {min} characters long"));
        }
    }
    if is_number(&s) {
        let n: f64 = s.parse().unwrap_or(f64::NAN);
        let bound = |k: &str| schema.get(k).and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()));
        if bound("maximum").is_some_and(|max| n > max) {
            return Err(format!("value must have a maximum value of {}", perl_number(&schema["maximum"])));
        }
        if bound("minimum").is_some_and(|min| n < min) {
            return Err(format!("value must have a minimum value of {}", perl_number(&schema["minimum"])));
        }
    }
    if let Some(allowed) = schema["enum"].as_array() {
        let text = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
        if !allowed.iter().any(|a| text(a) == s) {
            let list: Vec<String> = allowed.iter().map(text).collect();
            return Err(format!("value '{s}' does not have a value in the enumeration '{}'", list.join(", ")));
        }
    }
    Ok(match ty {
        Some("integer") => s.trim_start_matches('+').parse::<i64>().map(Value::from).unwrap_or(Value::String(s)),
        Some("number") => {
            s.parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number).unwrap_or(Value::String(s))
        }
        Some("boolean") => Value::from(u8::from(s == "1")),
        _ => Value::String(s),
    })
}

/// A schema pattern (Perl syntax) compiled for the `regex` crate, anchored as
/// PVE anchors it (`^(?:pattern)$`). Patterns that cannot be translated are
/// not checked (`None`); see [`untranslatable_patterns`].
pub fn perl_regex(pattern: &str) -> Option<Regex> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().expect("regex cache");
    cache
        .entry(pattern.to_string())
        .or_insert_with(|| {
            // `{0,256}` of a case-insensitive Unicode class needs more than the default 10 MiB.
            regex::RegexBuilder::new(&format!("^(?:{})$", translate_perl(pattern))).size_limit(1 << 28).build().ok()
        })
        .clone()
}

/// Perl-only constructs used in the apidoc: `(?^:…)`/`(?^i:…)` (default-flag
/// groups), `{,n}` (a Perl quantifier for `{0,n}`) and `\0` (NUL).
fn translate_perl(pattern: &str) -> String {
    let mut s = pattern.replace("(?^:", "(?:").replace("(?^i:", "(?i:").replace("\\0", "\\x00");
    while let Some(i) = s.find("{,") {
        s.replace_range(i..i + 2, "{0,");
    }
    s
}

/// The patterns of a schema that [`perl_regex`] cannot compile (for reports and tests).
pub fn untranslatable_patterns<'a>(patterns: impl Iterator<Item = &'a str>) -> Vec<String> {
    patterns.filter(|p| perl_regex(p).is_none()).map(str::to_string).collect()
}

pub(crate) fn re(pattern: &str) -> Regex {
    perl_regex(pattern).expect("built-in format regex")
}

/// A property string (`key=value,...`, with the format's `default_key`,
/// `alias` and `keyAlias` entries) parsed and checked as PVE's
/// `parse_property_string` does: booleans given as `key=yes|on|true|...` are
/// stored as `1`/`0`, every key is checked with [`check_value`] under
/// `path.key` (just `key` when `path` is empty), and `requires` is enforced.
/// Returns the keys and values, or the message that follows "invalid format - ".
pub fn parse_property_string(
    path: &str,
    format: &Map<String, Value>,
    s: &str,
) -> Result<BTreeMap<String, String>, String> {
    let mut res: BTreeMap<String, String> = BTreeMap::new();
    for part in s.split(',') {
        if part.trim().is_empty() {
            continue;
        }
        match part.split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => {
                if res.contains_key(k) {
                    return Err(format!("duplicate key in comma-separated list property: {k}\n"));
                }
                let mut key = k.to_string();
                if let Some(alias) = format.get(k).and_then(|f| f["alias"].as_str()) {
                    if let Some(key_alias) = format[k]["keyAlias"].as_str() {
                        if res.contains_key(key_alias) {
                            return Err(format!("key alias '{key_alias}' is already defined\n"));
                        }
                        res.insert(key_alias.to_string(), k.to_string());
                    }
                    key = alias.to_string();
                }
                let Some(schema) = format.get(&key) else {
                    return Err(format!("invalid key in comma-separated list property: {key}\n"));
                };
                let v = match schema["type"].as_str() {
                    Some("boolean") => {
                        parse_boolean(v).map(|b| u8::from(b).to_string()).unwrap_or_else(|| v.to_string())
                    }
                    _ => v.to_string(),
                };
                res.insert(key, v);
            }
            None => {
                let Some((default_key, _)) = format.iter().find(|(_, f)| truthy(&f["default_key"])) else {
                    return Err("value without key, but schema does not define a default key\n".to_string());
                };
                if res.contains_key(default_key) {
                    return Err(format!("duplicate key in comma-separated list property: {default_key}\n"));
                }
                res.insert(default_key.clone(), part.to_string());
            }
            Some(_) => return Err("missing key in comma-separated list property\n".to_string()),
        }
    }
    let sub = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
    let mut errors = ParamErrors::new();
    for (k, f) in format {
        match res.get(k) {
            Some(v) => {
                if let Err(e) = check_value(&sub(k), f, Raw::Text(v.clone())) {
                    add_error(&mut errors, &sub(k), e);
                }
            }
            None if !is_optional(f) => add_error(&mut errors, &sub(k), MISSING.to_string()),
            None => {}
        }
    }
    for k in res.keys() {
        if let Some(required) = format.get(k).and_then(|f| f["requires"].as_str()) {
            if !res.contains_key(required) {
                add_error(
                    &mut errors,
                    &sub(required),
                    format!("missing property - '{}' requires this property", sub(k)),
                );
            }
        }
    }
    if errors.is_empty() {
        Ok(res)
    } else {
        // `raise "format error\n", errors => ...` stringified by PVE::Exception.
        Err(errors.iter().fold("format error\n".to_string(), |acc, (k, e)| format!("{acc}{k}: {e}\n")))
    }
}

#[cfg(test)]
mod tests;
