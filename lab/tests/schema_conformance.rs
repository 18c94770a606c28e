//! Schema conformance of every endpoint the lab implements: for each
//! (method, template) of the handler table ([`server::implemented_endpoints`]),
//! requests built from the PVE 9.1 schema alone go over HTTPS to a fresh lab:
//! - an unknown extra parameter → `400 Parameter verification failed.` with
//!   an `errors` entry for exactly that parameter (where the schema has
//!   `properties` and forbids additional ones, as almost all PVE methods do;
//!   PVE does not check methods without parameters, e.g. `GET /version`);
//! - a wrong value for a typed, enum or pattern parameter, and a value its
//!   named format refuses for a parameter with a named format (`ipconfig0`,
//!   `hostpci0`, `cpu`, `tags`, `content`, ...) → the same, naming exactly
//!   that parameter;
//! - the required parameters with valid values → neither a parameter
//!   verification error nor `501 not implemented` (handler answers such as
//!   404 "no such VM" or 500 are fine).
//!
//! Values come from the schema (`enum`, `format`, `pattern`, `minimum`,
//! `type`), with realistic values for well-known names (node `pve`, vmid
//! 100, storage `local`, a UPID). The test iterates the live handler table,
//! so endpoints added later are covered without changes here; when a new
//! endpoint needs a value this file cannot derive, the failure says which.

use std::collections::BTreeMap;
use std::sync::Arc;

use proxmox_talos_lab::pve::apidoc::{ApiDoc, Endpoint};
use proxmox_talos_lab::pve::auth::Auth;
use proxmox_talos_lab::pve::lab_config::{LabConfig, Timing};
use proxmox_talos_lab::pve::server::{self, PveState};
use proxmox_talos_lab::pve::tls::LabCa;
use proxmox_talos_lab::pve::validate::perl_regex;
use serde_json::Value;

const TOKEN: &str = "PVEAPIToken=root@pam!lab=00000000-1111-2222-3333-444444444444";
const PASSWORD: &str = "lab-password";
const UNKNOWN_PARAM: &str = "lab-no-such-parameter";
const PVF: &str = "Parameter verification failed.\n";
const UPID: &str = "UPID:pve:0000AB12:0001E240:6720F0A1:qmcreate:100:root@pam:";

/// Realistic valid values by parameter name (checked before the schema-derived ones).
const BY_NAME: &[(&str, &str)] = &[
    ("node", "pve"),
    ("target", "pve2"),
    ("vmid", "100"),
    ("newid", "101"),
    ("storage", "local"),
    ("upid", UPID),
    ("username", "root@pam"),
    ("password", PASSWORD),
    ("filename", "talos.iso"),
    ("url", "https://factory.talos.dev/image/3765679/v1.11.0/nocloud-amd64.iso"),
    ("disk", "scsi0"),
    ("size", "+1G"),
    ("volume", "local:iso/talos.iso"),
];

/// Valid values of named formats (a `-list` format takes its base's sample).
const BY_FORMAT: &[(&str, &str)] = &[
    ("pve-priv", "VM.Audit"),
    ("pve-task-status-type", "ok"),
    ("pve-node", "pve"),
    ("pve-vmid", "100"),
    ("pve-storage-id", "local"),
    ("pve-configid", "lab1"),
    ("pve-poolid", "lab"),
    ("pve-ha-resource-id", "vm:100"),
    ("pve-ha-resource-or-vm-id", "vm:100"),
    ("pve-userid", "root@pam"),
    ("pve-realm", "pam"),
    ("pve-roleid", "PVEVMAdmin"),
    ("pve-iface", "vmbr0"),
    ("pve-bridge-id", "vmbr0"),
    ("pve-volume-id", "local:iso/talos.iso"),
    ("pve-volume-id-or-qm-path", "local:iso/talos.iso"),
    ("pve-volume-id-or-absolute-path", "local:iso/talos.iso"),
    ("pve-storage-content", "iso"),
    ("pve-tag", "talos"),
    ("pve-startup-order", "order=1"),
    ("pve-qm-ipconfig", "ip=dhcp"),
    ("pve-qm-hostpci", "mapping=gpu"),
    ("pve-qm-cicustom", "user=local:snippets/user.yaml"),
    ("pve-qm-boot", "order=scsi0"),
    ("pve-vm-cpu-conf", "host"),
    ("storage-pair", "local"),
    ("address", "1.1.1.1"),
    ("dns-name", "talos-cp-1"),
    ("mac-addr", "BC:24:11:00:00:01"),
    ("ipv4", "10.0.0.5"),
    ("ipv6", "fd00::5"),
    ("ip", "10.0.0.5"),
    ("CIDR", "10.0.0.0/24"),
    ("disk-size", "1G"),
    ("urlencoded", "lab"),
];

/// Values tried against a `pattern` when nothing else gives a value.
const PATTERN_CANDIDATES: &[&str] = &[
    "1",
    "100",
    "lab1",
    "pve",
    "scsi0",
    "+1G",
    "1G",
    "a",
    "local:iso/talos.iso",
    UPID,
    "0x10de",
    "10de:2684",
    "0000:28:00.0",
    "10.0.0.5",
    "https://factory.talos.dev/x.iso",
    "now",
    "00000000-0000-0000-0000-000000000000",
    "/dev/ttyS0",
    "/dev/sda",
    "100-0",
    "pve1c-0123456789",
    "none",
    "AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB",
    "lab-1",
    "A",
];

/// Values each named format refuses (PVE's own texts are unit-tested in
/// `validate::tests`; here they must arrive as per-parameter errors).
const BAD_BY_FORMAT: &[(&str, &str)] = &[
    ("pve-qm-ipconfig", "ip=10.0.0.5,gw=10.0.0.1"),
    ("pve-qm-hostpci", "host=0000:28:00.0:1"),
    ("pve-qm-cicustom", "user=snippets/user.yaml"),
    ("pve-qm-boot", "order=scsi0;floppy0"),
    ("pve-vm-cpu-conf", "cputype=nosuchcpu"),
    ("pve-startup-order", "first=1"),
    ("pve-tag-list", "ok bad!"),
    ("address-list", "1.1.1.1 not_a_host!"),
    ("urlencoded", "ssh-ed25519 AAAA me@host"),
    ("pve-storage-content", "isos"),
    ("pve-storage-id", "9bad"),
    ("storage-pair-list", "local:9bad"),
    ("pve-configid", "9bad"),
    ("pve-volume-id", "no-volume"),
    ("pve-node", "bad_node!"),
    ("CIDR", "10.0.0.0"),
    ("dns-name", "bad_name!"),
];

/// Values tried as a non-matching value for a `pattern`.
const BAD_CANDIDATES: &[&str] = &["lab value!", "!", "%", "-", "\u{1}"];

fn string_of(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
}

fn truthy(v: &Value) -> bool {
    v.as_i64().map(|n| n != 0).or(v.as_bool()).unwrap_or(false)
}

fn pattern_matches(pattern: &str, s: &str) -> Option<bool> {
    perl_regex(pattern).map(|re| re.is_match(s))
}

/// A valid value for a parameter (or a property-string key), from its name and schema.
fn sample(name: &str, schema: &Value) -> Result<String, String> {
    // A realistic value by name, if this parameter's enum and pattern allow it.
    let fits = |v: &str| {
        schema["enum"].as_array().is_none_or(|e| e.iter().any(|a| string_of(a) == v))
            && schema["pattern"].as_str().is_none_or(|p| pattern_matches(p, v) != Some(false))
    };
    if let Some((_, v)) = BY_NAME.iter().find(|(n, v)| *n == name && fits(v)) {
        return Ok(v.to_string());
    }
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return Ok(string_of(first));
    }
    match &schema["format"] {
        Value::Object(keys) => return property_string(keys),
        Value::String(f) => {
            let base = f.strip_suffix("-list").or_else(|| f.strip_suffix("-opt")).unwrap_or(f);
            if let Some((_, v)) = BY_FORMAT.iter().find(|(n, _)| *n == base) {
                return Ok(v.to_string());
            }
        }
        _ => {}
    }
    let length_ok = |s: &str| {
        let len = s.chars().count() as u64;
        schema["minLength"].as_u64().is_none_or(|min| len >= min)
            && schema["maxLength"].as_u64().is_none_or(|max| len <= max)
    };
    if let Some(pattern) = schema["pattern"].as_str() {
        return PATTERN_CANDIDATES
            .iter()
            .find(|c| pattern_matches(pattern, c) == Some(true) && length_ok(c))
            .map(|c| c.to_string())
            .ok_or_else(|| format!("no sample value for '{name}' (pattern {pattern}); add one to BY_NAME"));
    }
    let bound = |k: &str| schema.get(k).and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()));
    match schema["type"].as_str() {
        Some("integer") => Ok(format!("{}", bound("minimum").unwrap_or(1.0).ceil() as i64)),
        Some("number") => Ok(format!("{}", bound("minimum").unwrap_or(1.0))),
        Some("boolean") => Ok("1".to_string()),
        Some("array") => sample(name, &schema["items"]),
        _ => {
            let mut s = "lab1".to_string();
            while schema["minLength"].as_u64().is_some_and(|min| (s.len() as u64) < min) {
                s.push('x');
            }
            Ok(s)
        }
    }
}

/// A property string of an object format: its required keys, or its first key.
fn property_string(keys: &serde_json::Map<String, Value>) -> Result<String, String> {
    let real: Vec<(&String, &Value)> = keys.iter().filter(|(_, s)| s.get("alias").is_none()).collect();
    let required: Vec<&(&String, &Value)> =
        real.iter().filter(|(_, s)| !truthy(&s["optional"]) && !truthy(&s["default_key"])).collect();
    let default_key = real.iter().find(|(_, s)| truthy(&s["default_key"]));
    let mut parts = Vec::new();
    if let Some((k, s)) = default_key {
        parts.push(format!("{k}={}", sample(k, s)?));
    }
    for (k, s) in required {
        parts.push(format!("{k}={}", sample(k, s)?));
    }
    if parts.is_empty() {
        let (k, s) = real.first().ok_or("an object format without keys")?;
        parts.push(format!("{k}={}", sample(k, s)?));
    }
    Ok(parts.join(","))
}

/// A value the schema rejects for this parameter, if there is an obvious one.
fn wrong_value(schema: &Value) -> Option<String> {
    if schema.get("requires").is_some() || schema.get("alias").is_some() {
        return None;
    }
    match schema["type"].as_str() {
        Some("integer" | "number") => return Some("lab".to_string()),
        Some("boolean") => return Some("maybe".to_string()),
        Some("string") | None => {}
        Some(_) => return None,
    }
    if schema["enum"].is_array() {
        return Some("lab-not-in-enum".to_string());
    }
    let pattern = schema["pattern"].as_str()?;
    BAD_CANDIDATES.iter().find(|c| pattern_matches(pattern, c) == Some(false)).map(|c| c.to_string())
}

fn path_params(template: &str) -> Vec<String> {
    template.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).map(str::to_string).collect()
}

fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One request: path values and the other parameters.
#[derive(Clone, Debug)]
struct Request {
    path: BTreeMap<String, String>,
    params: Vec<(String, String)>,
}

impl Request {
    fn valid(endpoint: &Endpoint) -> Result<Request, String> {
        let props = endpoint.parameters()["properties"].as_object().cloned().unwrap_or_default();
        let in_path = path_params(&endpoint.template);
        let mut path = BTreeMap::new();
        for name in &in_path {
            path.insert(name.clone(), sample(name, &props.get(name).cloned().unwrap_or(Value::Null))?);
        }
        let mut params = Vec::new();
        for (name, schema) in &props {
            let optional =
                truthy(&schema["optional"]) || schema.get("alias").is_some() || schema.get("group").is_some();
            if in_path.contains(name) || optional || name.ends_with("[n]") {
                continue;
            }
            params.push((name.clone(), sample(name, schema)?));
            if let Some(required) = schema["requires"].as_str() {
                if !params.iter().any(|(n, _)| n == required) {
                    params.push((required.to_string(), sample(required, &props[required])?));
                }
            }
        }
        Ok(Request { path, params })
    }

    /// The request with `name` set to `value` (in the path if it is a path parameter).
    fn with(&self, name: &str, value: &str) -> Request {
        let mut r = self.clone();
        if let Some(v) = r.path.get_mut(name) {
            *v = value.to_string();
        } else {
            r.params.retain(|(n, _)| n != name);
            r.params.push((name.to_string(), value.to_string()));
        }
        r
    }

    fn url(&self, base: &str, template: &str) -> String {
        let path: String = template
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => format!("/{}", encode_segment(&self.path[name])),
                None => format!("/{s}"),
            })
            .collect();
        format!("{base}{path}")
    }
}

/// The parameter to give a wrong value: the first (by name) non-path
/// parameter with an obvious wrong value, else such a path parameter.
fn wrong_target(endpoint: &Endpoint) -> Option<(String, String)> {
    let props = endpoint.parameters()["properties"].as_object()?;
    let in_path = path_params(&endpoint.template);
    let required_by_others: Vec<&str> = props.values().filter_map(|s| s["requires"].as_str()).collect();
    let eligible = |(name, schema): (&String, &Value)| {
        if name.ends_with("[n]") || required_by_others.contains(&name.as_str()) {
            return None;
        }
        wrong_value(schema).map(|v| (name.clone(), v))
    };
    let outside = props.iter().filter(|(n, _)| !in_path.contains(n)).find_map(eligible);
    outside.or_else(|| props.iter().filter(|(n, _)| in_path.contains(n)).find_map(eligible))
}

/// A parameter with a named format and a value that format refuses
/// (`ipconfig[n]` is tried as `ipconfig0`), if the method has one.
fn format_target(endpoint: &Endpoint) -> Option<(String, String)> {
    let props = endpoint.parameters()["properties"].as_object()?;
    let in_path = path_params(&endpoint.template);
    let required_by_others: Vec<&str> = props.values().filter_map(|s| s["requires"].as_str()).collect();
    props.iter().find_map(|(name, schema)| {
        if in_path.contains(name) || required_by_others.contains(&name.as_str()) || schema.get("requires").is_some() {
            return None;
        }
        let format = schema["format"].as_str()?;
        let (_, bad) = BAD_BY_FORMAT.iter().find(|(f, _)| *f == format)?;
        Some((name.replace("[n]", "0"), bad.to_string()))
    })
}

struct Lab {
    url: String,
    client: reqwest::Client,
    _state: tempfile::TempDir,
}

/// A fresh two-node lab (`pve`, `pve2`) with instant tasks.
async fn start(schema: &Value, ca: &LabCa) -> Lab {
    let state_dir = tempfile::tempdir().unwrap();
    let apidoc = ApiDoc::from_json(schema).unwrap();
    let auth =
        Auth::new().with_user("root@pam", PASSWORD).with_token("root@pam!lab", "00000000-1111-2222-3333-444444444444");
    let mut config = LabConfig::single_node();
    let mut second = config.nodes[0].clone();
    second.name = "pve2".into();
    second.address = std::net::Ipv4Addr::new(127, 0, 0, 2);
    second.pci_devices.clear();
    config.nodes.push(second);
    config.timing = Timing::instant();
    let state = PveState::new(apidoc, auth, config, state_dir.path()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server::serve(listener, ca.server_config().unwrap(), state, std::future::pending()));
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    Lab { url: server::base_url(addr), client, _state: state_dir }
}

/// What came back: status, `message`, `errors`.
#[derive(Debug)]
struct Answer {
    status: u16,
    message: String,
    errors: BTreeMap<String, String>,
}

impl Answer {
    fn is_param_error(&self) -> bool {
        self.status == 400 && self.message == PVF
    }
}

fn form(params: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

/// A `multipart/form-data` body (PVE's upload): `filename` is the file part.
fn multipart(params: &[(String, String)]) -> (String, Vec<u8>) {
    let boundary = "lab-conformance-boundary";
    let mut body = Vec::new();
    let mut file = None;
    for (k, v) in params {
        if k == "filename" {
            file = Some(v.clone());
            continue;
        }
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").bytes());
    }
    if let Some(name) = file {
        body.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"filename\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\nlab file\r\n"
            )
            .bytes(),
        );
    }
    body.extend(format!("--{boundary}--\r\n").bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn send(lab: &Lab, endpoint: &Endpoint, request: &Request, auth: &[(String, String)]) -> Answer {
    let url = request.url(&lab.url, &endpoint.template);
    let method = reqwest::Method::from_bytes(endpoint.method.as_bytes()).unwrap();
    let mut builder = match endpoint.method.as_str() {
        "GET" | "DELETE" if request.params.is_empty() => lab.client.request(method, url),
        "GET" | "DELETE" => lab.client.request(method, format!("{url}?{}", form(&request.params))),
        _ if endpoint.template.ends_with("/upload") => {
            // pveproxy reads only these fields from an upload's body (others answer 501
            // "upload failed"); any other parameter travels in the query string.
            let in_body = |k: &str| matches!(k, "content" | "checksum-algorithm" | "checksum" | "filename");
            let (body_params, query): (Vec<_>, Vec<_>) = request.params.iter().cloned().partition(|(k, _)| in_body(k));
            let (content_type, body) = multipart(&body_params);
            let url = if query.is_empty() { url } else { format!("{url}?{}", form(&query)) };
            lab.client.request(method, url).header("Content-Type", content_type).body(body)
        }
        _ => lab
            .client
            .request(method, url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form(&request.params)),
    };
    for (k, v) in auth {
        builder = builder.header(k, v);
    }
    let response = builder.send().await.unwrap_or_else(|e| panic!("{} {}: {e}", endpoint.method, endpoint.template));
    let status = response.status().as_u16();
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap_or(Value::Null);
    let errors = body["errors"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), string_of(v))).collect())
        .unwrap_or_default();
    Answer { status, message: body["message"].as_str().unwrap_or("").to_string(), errors }
}

/// An API token, or (for `allowtoken: 0` methods) a ticket with its CSRF token.
async fn credentials(lab: &Lab, endpoint: &Endpoint) -> Vec<(String, String)> {
    if endpoint.info.get("allowtoken").is_none_or(truthy) {
        return vec![("Authorization".into(), TOKEN.into())];
    }
    let login = form(&[("username".into(), "root@pam".into()), ("password".into(), PASSWORD.into())]);
    let response = lab
        .client
        .post(format!("{}/access/ticket", lab.url))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(login)
        .send()
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let ticket = body["data"]["ticket"].as_str().expect("ticket").to_string();
    let csrf = body["data"]["CSRFPreventionToken"].as_str().expect("csrf").to_string();
    vec![("Cookie".into(), format!("PVEAuthCookie={ticket}")), ("CSRFPreventionToken".into(), csrf)]
}

/// Checks one endpoint; returns its failures.
async fn check_endpoint(lab: &Lab, endpoint: &Endpoint) -> Vec<String> {
    let name = format!("{} {}", endpoint.method, endpoint.template);
    let mut failures = Vec::new();
    let valid = match Request::valid(endpoint) {
        Ok(r) => r,
        Err(e) => return vec![format!("{name}: {e}")],
    };
    let auth = credentials(lab, endpoint).await;
    let only = |answer: &Answer, param: &str| {
        answer.is_param_error() && answer.errors.len() == 1 && answer.errors.contains_key(param)
    };

    // PVE checks the parameter object only if the schema has `properties`
    // (`GET /version?x=1` passes), and refuses unknown keys only if
    // `additionalProperties` is false.
    let params = endpoint.parameters();
    let rejects_unknown =
        params.get("properties").is_some() && params.get("additionalProperties").is_some_and(|v| !truthy(v));
    if rejects_unknown {
        let answer = send(lab, endpoint, &valid.with(UNKNOWN_PARAM, "1"), &auth).await;
        if !only(&answer, UNKNOWN_PARAM) {
            failures.push(format!("{name}: an unknown parameter should be refused with 400, got {answer:?}"));
        }
    }
    if let Some((param, value)) = wrong_target(endpoint) {
        let answer = send(lab, endpoint, &valid.with(&param, &value), &auth).await;
        if !only(&answer, &param) {
            failures.push(format!("{name}: {param}={value:?} should be refused with 400, got {answer:?}"));
        }
    }
    if let Some((param, value)) = format_target(endpoint) {
        let answer = send(lab, endpoint, &valid.with(&param, &value), &auth).await;
        if !only(&answer, &param) {
            failures
                .push(format!("{name}: {param}={value:?} (named format) should be refused with 400, got {answer:?}"));
        }
    }
    let answer = send(lab, endpoint, &valid, &auth).await;
    if answer.is_param_error() || answer.status == 501 {
        failures.push(format!("{name}: the valid request {valid:?} got {answer:?}"));
    }
    failures
}

#[tokio::test]
async fn every_implemented_endpoint_verifies_parameters_as_the_schema_says() {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(ApiDoc::locate().unwrap()).unwrap()).expect("schema parses");
    let apidoc = ApiDoc::from_json(&schema).unwrap();
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = Arc::new(LabCa::load_or_create(ca_dir.path()).unwrap());
    let endpoints = server::implemented_endpoints();
    assert!(endpoints.len() >= 3, "the handler table is empty: {endpoints:?}");
    let mut failures = Vec::new();
    for (method, template) in &endpoints {
        let Some(endpoint) = apidoc.endpoint(method, template) else {
            failures.push(format!("{method} {template}: a handler for an endpoint the schema does not have"));
            continue;
        };
        let lab = start(&schema, &ca).await;
        failures.extend(check_endpoint(&lab, endpoint).await);
    }
    assert!(failures.is_empty(), "{} of {} endpoints fail:\n{}", failures.len(), endpoints.len(), failures.join("\n"));
}

#[test]
fn requests_are_derived_from_the_schema() {
    let apidoc = ApiDoc::load(&ApiDoc::locate().unwrap()).unwrap();
    let resize = apidoc.endpoint("PUT", "/nodes/{node}/qemu/{vmid}/resize").unwrap();
    let r = Request::valid(resize).unwrap();
    assert_eq!(r.path, BTreeMap::from([("node".into(), "pve".into()), ("vmid".into(), "100".into())]));
    assert_eq!(r.params, [("disk".to_string(), "scsi0".to_string()), ("size".to_string(), "+1G".to_string())]);
    assert_eq!(r.url("https://x/api2/json", &resize.template), "https://x/api2/json/nodes/pve/qemu/100/resize");
    assert_eq!(wrong_target(resize), Some(("disk".into(), "lab-not-in-enum".into())));
    let status = apidoc.endpoint("GET", "/nodes/{node}/tasks/{upid}/status").unwrap();
    assert_eq!(
        Request::valid(status).unwrap().url("", &status.template),
        "/nodes/pve/tasks/UPID%3Apve%3A0000AB12%3A0001E240%3A6720F0A1%3Aqmcreate%3A100%3Aroot%40pam%3A/status"
    );
    // Only path parameters are typed: the wrong value goes into the path.
    let current = apidoc.endpoint("GET", "/nodes/{node}/qemu/{vmid}/status/current").unwrap();
    assert_eq!(wrong_target(current), Some(("vmid".into(), "lab".into())));
    // Every endpoint of the schema gets a valid request.
    let missing: Vec<String> = apidoc
        .endpoints()
        .filter_map(|e| Request::valid(e).err().map(|err| format!("{} {}: {err}", e.method, e.template)))
        .collect();
    assert!(missing.is_empty(), "{missing:#?}");
}

/// The requests the HTTP test would send for any endpoint of the schema,
/// checked by the lab's validator directly: valid ones pass, invalid ones
/// fail on exactly the parameter made wrong. Endpoints get handlers over
/// time; this keeps the generator ready for all of them.
#[test]
fn generated_requests_validate_as_intended_for_every_schema_endpoint() {
    use proxmox_talos_lab::pve::validate::{validate, Raw};
    let apidoc = ApiDoc::load(&ApiDoc::locate().unwrap()).unwrap();
    let input = |r: &Request| -> Vec<(String, Raw)> {
        r.path
            .iter()
            .chain(r.params.iter().map(|(k, v)| (k, v)))
            .map(|(k, v)| (k.clone(), Raw::Text(v.clone())))
            .collect()
    };
    let mut failures = Vec::new();
    for e in apidoc.endpoints() {
        let name = format!("{} {}", e.method, e.template);
        let valid = Request::valid(e).unwrap();
        if let Err(errors) = validate(e.parameters(), input(&valid)) {
            failures.push(format!("{name}: valid request refused: {errors:?}"));
        }
        for (param, value) in wrong_target(e).into_iter().chain(format_target(e)) {
            match validate(e.parameters(), input(&valid.with(&param, &value))) {
                Err(errors) if errors.len() == 1 && errors.contains_key(&param) => {}
                other => failures.push(format!("{name}: {param}={value:?} gave {other:?}")),
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
