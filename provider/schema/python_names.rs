//! Python spellings of property names in function arguments (docs/adr/0011).
//!
//! The Python SDK keeps a resource's object outputs (`secrets.machine_secrets`) with
//! Python names (`k8s_aggregator`) and translates keys back only where a resource input's
//! type says how; function arguments get no such translation. So a function accepts, for
//! every property of every object type in its arguments, at any depth, either the schema
//! name or the name Pulumi's Python generator gives it ([`py_name`]). Both spellings of one
//! property together, or a key that is neither, fail with the key's path.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::{Property, PropertySpec, TypeRegistry, TypeSpec};
use crate::framework::CheckFailure;
use crate::value::PropertyPath;

/// The Python name of a schema property, as Pulumi's Python code generator derives it
/// (`pyName` in pkg/codegen/python): camelCase words joined by `_` and lower-cased; digits
/// stay with the word before them (`k8sAggregator` → `k8s_aggregator`, `ipv4Addresses` →
/// `ipv4_addresses`); in an upper-case run the last capital starts the next word
/// (`IPAddress` → `ip_address`); Python keywords get a trailing `_`.
pub fn py_name(name: &str) -> String {
    #[derive(PartialEq)]
    enum State {
        First,
        Upper,
        Acronym,
        LowerOrNumber,
    }
    let mut out = String::new();
    let mut state = State::First;
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        match state {
            State::First => {
                out.extend(c.to_lowercase());
                state = if c.is_uppercase() { State::Upper } else { State::LowerOrNumber };
            }
            State::Upper | State::Acronym if c.is_uppercase() => {
                // Inside a run of capitals; the last one before a lower-case letter starts a word.
                let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
                if next_lower {
                    out.push('_');
                }
                out.extend(c.to_lowercase());
                state = if next_lower { State::Upper } else { State::Acronym };
            }
            State::Upper | State::Acronym => {
                out.push(c);
                state = State::LowerOrNumber;
            }
            State::LowerOrNumber if c.is_uppercase() => {
                out.push('_');
                out.extend(c.to_lowercase());
                state = State::Upper;
            }
            State::LowerOrNumber => out.push(c),
        }
    }
    if PYTHON_KEYWORDS.contains(&out.as_str()) {
        out.push('_');
    }
    out
}

const PYTHON_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
    "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
    "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
];

/// Rewrites the Python spelling of every property of every object below the top level of
/// `args` (function arguments, as JSON) to its schema name. Returns a failure per key that
/// is neither spelling of a property, and per property given in both spellings.
pub fn accept_python_names(props: &[Property], reg: &TypeRegistry, args: &mut Json) -> Vec<CheckFailure> {
    let mut failures = Vec::new();
    let Json::Object(map) = args else { return failures };
    for p in props {
        if let Some(v) = map.get_mut(p.name) {
            walk(&p.type_spec, reg, v, &PropertyPath::root().key(p.name), &mut failures);
        }
    }
    failures
}

fn walk(t: &TypeSpec, reg: &TypeRegistry, value: &mut Json, at: &PropertyPath, failures: &mut Vec<CheckFailure>) {
    if let (Some(items), Json::Array(a)) = (&t.items, &mut *value) {
        for (i, v) in a.iter_mut().enumerate() {
            walk(items, reg, v, &at.index(i), failures);
        }
    } else if let (Some(values), Json::Object(m)) = (&t.additional_properties, &mut *value) {
        for (k, v) in m.iter_mut() {
            walk(values, reg, v, &at.key(k), failures);
        }
    } else if let (Some(token), Json::Object(_)) = (t.referenced_type_token(), &*value) {
        if let Some(def) = reg.get(token).filter(|d| d.kind == "object") {
            object(&def.properties, reg, value, at, failures);
        }
    }
}

fn object(
    props: &BTreeMap<String, PropertySpec>,
    reg: &TypeRegistry,
    value: &mut Json,
    at: &PropertyPath,
    failures: &mut Vec<CheckFailure>,
) {
    let Json::Object(map) = value else { return };
    let mut out = serde_json::Map::new();
    for (key, v) in std::mem::take(map) {
        let name = if props.contains_key(&key) {
            Some(key.clone())
        } else {
            props.keys().find(|n| py_name(n) == key).cloned()
        };
        let Some(name) = name else {
            let mut valid: Vec<String> = props.keys().cloned().collect();
            valid.sort();
            failures.push(CheckFailure::new(
                at.key(&key).to_string(),
                format!("unknown property; valid properties are: {}", valid.join(", ")),
            ));
            continue;
        };
        if out.contains_key(&name) {
            failures.push(CheckFailure::new(
                at.key(&name).to_string(),
                format!("given twice, as `{name}` and as `{}`; give one", py_name(&name)),
            ));
            continue;
        }
        out.insert(name, v);
    }
    for (name, v) in out.iter_mut() {
        walk(&props[name].type_spec, reg, v, &at.key(name), failures);
    }
    *map = out;
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;
    use crate::schema::PulumiObject;

    #[test]
    fn python_names_are_pulumis() {
        let cases = [
            ("k8sAggregator", "k8s_aggregator"),
            ("k8sServiceaccount", "k8s_serviceaccount"),
            ("caCertificate", "ca_certificate"),
            ("os", "os"),
            ("ipv4Addresses", "ipv4_addresses"),
            ("IPAddress", "ip_address"),
            ("vmID", "vm_id"),
            ("talosVersion", "talos_version"),
            ("from", "from_"),
        ];
        for (name, python) in cases {
            assert_eq!(py_name(name), python, "{name}");
        }
    }

    /// A value of type `t` with every property present, keys spelt by `spell` (the schema
    /// name or the Python one); object types already on the way stop the recursion.
    fn sample(t: &TypeSpec, reg: &TypeRegistry, spell: fn(&str) -> String, seen: &mut BTreeSet<String>) -> Json {
        if let Some(items) = &t.items {
            return json!([sample(items, reg, spell, seen)]);
        }
        if let Some(values) = &t.additional_properties {
            return json!({"someKey": sample(values, reg, spell, seen)});
        }
        if let Some(token) = t.referenced_type_token() {
            let def = reg.get(token).unwrap();
            if def.kind != "object" {
                return json!(def.enum_values[0].value);
            }
            if !seen.insert(token.to_string()) {
                return json!({});
            }
            let object = def
                .properties
                .iter()
                .map(|(name, p)| (spell(name), sample(&p.type_spec, reg, spell, seen)))
                .collect::<serde_json::Map<_, _>>();
            seen.remove(token);
            return Json::Object(object);
        }
        match t.kind {
            Some("boolean") => json!(true),
            Some("integer") | Some("number") => json!(1),
            _ => json!("text"),
        }
    }

    /// Every function's arguments, with every nested key in Python spelling, come out with
    /// the schema's names (and with the schema's names, unchanged).
    #[test]
    fn every_function_accepts_python_names_at_every_depth() {
        let registry = crate::resources::registry();
        let mut renamed = 0;
        for function in registry.functions() {
            let mut reg = TypeRegistry::default();
            let spec = function.describe(&mut reg);
            let props: Vec<Property> = spec
                .inputs
                .properties
                .iter()
                .map(|(name, p)| Property {
                    name: Box::leak(name.clone().into_boxed_str()),
                    type_spec: p.type_spec.clone(),
                    required: false,
                    description: "",
                    secret: false,
                    replace_on_changes: false,
                    default_json: None,
                    env: &[],
                })
                .collect();
            let build = |spell: fn(&str) -> String| {
                let mut seen = BTreeSet::new();
                let map: serde_json::Map<_, _> =
                    props.iter().map(|p| (p.name.to_string(), sample(&p.type_spec, &reg, spell, &mut seen))).collect();
                Json::Object(map)
            };
            let camel = build(|n| n.to_string());
            let mut python = build(py_name);
            renamed += usize::from(python != camel);
            let failures = accept_python_names(&props, &reg, &mut python);
            assert!(failures.is_empty(), "{}: {failures:?}", function.token());
            assert_eq!(python, camel, "{}", function.token());
            let mut same = camel.clone();
            assert!(accept_python_names(&props, &reg, &mut same).is_empty());
            assert_eq!(same, camel, "{}", function.token());
        }
        assert!(renamed >= 2, "the Talos functions take objects with camelCase keys");
    }

    fn get_configuration_props(reg: &mut TypeRegistry) -> Vec<Property> {
        crate::resources::machine::get_configuration::GetConfigurationArgs::properties(reg)
    }

    #[test]
    fn unknown_and_doubled_keys_fail_with_their_paths() {
        let mut reg = TypeRegistry::default();
        let props = get_configuration_props(&mut reg);
        let mut args = json!({
            "clusterName": "c",
            "machineSecrets": {
                "certs": {"k8s_aggregator": {"cert": "a"}, "k8sAggregator": {"cert": "b"}, "k8s_agregator": {}},
                "trustdinfo": {"token": "t", "tokn": "x"}
            }
        });
        let failures = accept_python_names(&props, &reg, &mut args);
        let paths: Vec<&str> = failures.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(
            paths,
            [
                "machineSecrets.certs.k8sAggregator",
                "machineSecrets.certs.k8s_agregator",
                "machineSecrets.trustdinfo.tokn"
            ]
        );
        assert!(failures[0].reason.contains("`k8sAggregator` and as `k8s_aggregator`"), "{}", failures[0].reason);
        assert!(
            failures[1].reason.contains("valid properties are: etcd, k8s, k8sAggregator"),
            "{}",
            failures[1].reason
        );
    }

    /// Through the function adapter, as a Python program's invoke arrives: the talosconfig
    /// renders from a client configuration with Python keys.
    #[tokio::test]
    async fn client_get_configuration_takes_a_python_client_configuration() {
        use base64::Engine as _;
        let registry = crate::resources::registry();
        let function = registry.functions().find(|f| f.token() == "proxmox-talos:client:getConfiguration").unwrap();
        let pem = |tag: &str| {
            base64::engine::general_purpose::STANDARD
                .encode(format!("-----BEGIN {tag}-----\nAAECAw==\n-----END {tag}-----\n"))
        };
        let args = json!({
            "clusterName": "c1",
            "endpoints": ["127.0.0.1"],
            "clientConfiguration": {
                "ca_certificate": pem("CERTIFICATE"),
                "client_certificate": pem("CERTIFICATE"),
                "client_key": pem("ED25519 PRIVATE KEY")
            }
        });
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let ctx = crate::framework::Context::new(
            std::sync::Arc::default(),
            std::sync::Arc::new(crate::framework::context::NullSink),
            "",
            rx,
            None,
        );
        let result = function.invoke(&ctx, &crate::value::json::from_json(&args, &[])).await.unwrap().unwrap();
        let talosconfig = crate::value::json::to_json(&result).value["talosConfig"].as_str().unwrap().to_string();
        assert!(talosconfig.starts_with("context: c1\n"), "{talosconfig}");
        assert!(talosconfig.contains(&pem("CERTIFICATE")), "{talosconfig}");
    }
}
