//! Unit tests of the PVE API foundation against the real PVE 9.1 schema:
//! template matching, parameter verification and its error texts, patterns.

use std::sync::OnceLock;

use serde_json::Value;

use super::apidoc::{ApiDoc, Lookup};
use super::validate::{self, perl_regex, ParamErrors, Raw, MISSING, UNKNOWN};

fn apidoc() -> &'static ApiDoc {
    static DOC: OnceLock<ApiDoc> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::load(&ApiDoc::locate().expect("schema")).expect("schema loads"))
}

fn found(method: &str, path: &str) -> (String, Vec<(String, String)>) {
    match apidoc().lookup(method, path) {
        Lookup::Found(m) => (m.endpoint.template.clone(), m.path_params),
        other => panic!("{method} {path}: {other:?}"),
    }
}

fn text(pairs: &[(&str, &str)]) -> Vec<(String, Raw)> {
    pairs.iter().map(|(k, v)| (k.to_string(), Raw::Text(v.to_string()))).collect()
}

fn check(method: &str, template: &str, pairs: &[(&str, &str)]) -> Result<serde_json::Map<String, Value>, ParamErrors> {
    let endpoint = apidoc().endpoint(method, template).expect("endpoint");
    validate::validate(endpoint.parameters(), text(pairs))
}

fn errors(method: &str, template: &str, pairs: &[(&str, &str)]) -> ParamErrors {
    check(method, template, pairs).expect_err("invalid parameters")
}

#[test]
fn the_schema_loads_and_indexes_every_method() {
    assert!(apidoc().endpoint_count() > 500, "PVE 9.1 has ~650 endpoints, got {}", apidoc().endpoint_count());
    assert!(apidoc().endpoint("GET", "/version").is_some());
    assert!(apidoc().endpoint("POST", "/nodes/{node}/qemu").is_some());
}

#[test]
fn concrete_paths_match_their_templates() {
    assert_eq!(found("GET", "/version"), ("/version".into(), vec![]));
    assert_eq!(found("GET", "/cluster/status").0, "/cluster/status");
    let (t, p) = found("GET", "/nodes/pve/qemu/100/config");
    assert_eq!(t, "/nodes/{node}/qemu/{vmid}/config");
    assert_eq!(p, vec![("node".into(), "pve".into()), ("vmid".into(), "100".into())]);
    // Literal segments win over parameters: `/nodes/{node}/qemu`, not `/nodes/{node}/{x}`.
    assert_eq!(found("POST", "/nodes/pve/qemu").0, "/nodes/{node}/qemu");
    assert_eq!(found("POST", "/nodes/pve/qemu/100/status/start").0, "/nodes/{node}/qemu/{vmid}/status/start");
    // Path parameters are percent-decoded (volume IDs carry `:` and `/`).
    let (t, p) = found("DELETE", "/nodes/pve/storage/local/content/local%3Aiso%2Ftalos.iso");
    assert_eq!(t, "/nodes/{node}/storage/{storage}/content/{volume}");
    assert_eq!(p[2], ("volume".into(), "local:iso/talos.iso".into()));
    assert!(matches!(apidoc().lookup("PATCH", "/version"), Lookup::NoSuchMethod));
    assert!(matches!(apidoc().lookup("GET", "/no/such/thing"), Lookup::NoSuchPath));
}

#[test]
fn valid_parameters_are_typed() {
    let params = check(
        "POST",
        "/nodes/{node}/qemu",
        &[
            ("node", "pve"),
            ("vmid", "100"),
            ("onboot", "1"),
            ("cores", "2"),
            ("ostype", "l26"),
            ("net0", "virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=0,tag=10"),
            ("scsi0", "local-lvm:32,iothread=1,discard=on"),
        ],
    )
    .expect("valid");
    assert_eq!(params["vmid"], 100);
    assert_eq!(params["onboot"], 1);
    assert_eq!(params["net0"], "virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=0,tag=10");
}

#[test]
fn unknown_and_missing_parameters_are_reported_per_parameter() {
    let e = errors("POST", "/nodes/{node}/qemu", &[("node", "pve"), ("bogus", "1")]);
    assert_eq!(e["bogus"], UNKNOWN);
    assert_eq!(e["vmid"], MISSING);
    assert_eq!(e.len(), 2);
    // `net[n]` covers net0..netN, but not an unrelated name with digits.
    let e = errors("POST", "/nodes/{node}/qemu", &[("node", "pve"), ("vmid", "100"), ("foo0", "x")]);
    assert_eq!(e["foo0"], UNKNOWN);
    // The schema documents "(n is 0 to 30)" for scsi[n] and "(n is 0 to 3)" for ide[n].
    let e = errors(
        "POST",
        "/nodes/{node}/qemu",
        &[("node", "pve"), ("vmid", "100"), ("scsi31", "local:1"), ("ide4", "none")],
    );
    assert_eq!((e["scsi31"].as_str(), e["ide4"].as_str()), (UNKNOWN, UNKNOWN));
    check("POST", "/nodes/{node}/qemu", &[("node", "pve"), ("vmid", "100"), ("scsi30", "local:1"), ("ide3", "none")])
        .unwrap();
    // `requires`: the error lands on the required parameter.
    let e = errors("POST", "/access/ticket", &[("username", "root@pam"), ("password", "x"), ("path", "/vms")]);
    assert_eq!(e["privs"], "missing property - 'path' requires this property");
}

#[test]
fn types_enums_ranges_and_patterns_use_pve_messages() {
    let e = errors(
        "POST",
        "/nodes/{node}/qemu",
        &[
            ("node", "pve"),
            ("vmid", "100"),
            ("ostype", "dos"),
            ("cores", "two"),
            ("onboot", "yes"),
            ("bootdisk", "nvme0"),
            ("sockets", "0"),
        ],
    );
    assert_eq!(e["sockets"], "value must have a minimum value of 1");
    assert_eq!(
        e["ostype"],
        "value 'dos' does not have a value in the enumeration \
         'other, wxp, w2k, w2k3, w2k8, wvista, win7, win8, win10, win11, l24, l26, solaris'"
    );
    assert_eq!(e["cores"], "type check ('integer') failed - got 'two'");
    // Top-level booleans must be exactly 0 or 1 (property strings also take yes/no/on/off/true/false).
    assert_eq!(e["onboot"], "type check ('boolean') failed - got 'yes'");
    // `bootdisk` has both a format (`pve-qm-bootdisk`) and a pattern; the format comes first.
    assert_eq!(e["bootdisk"], "invalid format - invalid boot disk 'nvme0'\n");
    let e = errors(
        "PUT",
        "/nodes/{node}/qemu/{vmid}/resize",
        &[("node", "pve"), ("vmid", "100"), ("disk", "scsi0"), ("size", "3X")],
    );
    assert_eq!(e["size"], "value does not match the regex pattern");
    let e = errors("POST", "/access/ticket", &[("username", &"x".repeat(65)), ("password", "p")]);
    assert_eq!(e["username"], "value may only be 64 characters long");
}

#[test]
fn named_formats_are_checked_before_ranges() {
    let e = errors("POST", "/nodes/{node}/qemu", &[("node", "bad_node!"), ("vmid", "100")]);
    assert_eq!(e["node"], "invalid format - value does not look like a valid node name\n");
    // The format is checked before the range, so a small VMID fails on its format, as in PVE.
    let e = errors("POST", "/nodes/{node}/qemu", &[("node", "pve"), ("vmid", "50")]);
    assert_eq!(e["vmid"], "invalid format - value does not look like a valid VM ID\n");
    let e = errors(
        "POST",
        "/nodes/{node}/qemu/{vmid}/clone",
        &[("node", "pve"), ("vmid", "100"), ("newid", "101"), ("storage", "9bad")],
    );
    assert_eq!(e["storage"], "invalid format - storage ID '9bad' contains illegal characters\n");
}

#[test]
fn property_strings_are_parsed_and_checked() {
    let base = [("node", "pve"), ("vmid", "100")];
    let with = |k: &'static str, v: &'static str| {
        let mut p = base.to_vec();
        p.push((k, v));
        check("POST", "/nodes/{node}/qemu", &p).err().and_then(|mut e| e.remove(k))
    };
    let invalid = |msg: &str| Some(format!("invalid format - {msg}"));
    assert_eq!(
        with("net0", "model=virtio,bridge=vmbr0,foo=1"),
        invalid("invalid key in comma-separated list property: foo\n")
    );
    assert_eq!(
        with("net0", "model=virtio,mtu=70000"),
        invalid("format error\nnet0.mtu: value must have a maximum value of 65520\n")
    );
    assert_eq!(
        with("net0", "bridge=vmbr0"),
        invalid("format error\nnet0.model: property is missing and it is not optional\n")
    );
    // A nested format error keeps its own newline, and PVE::Exception adds one more.
    assert_eq!(
        with("net0", "virtio,bridge=vmbr0,macaddr=01:00:00:00:00:00"),
        invalid(
            "format error\nnet0.macaddr: invalid format - value does not look like a valid unicast MAC address\n\n"
        )
    );
    assert_eq!(
        with("net0", "virtio=BC:24:11:00:00:01,model=e1000"),
        invalid("duplicate key in comma-separated list property: model\n")
    );
    assert_eq!(with("net0", "virtio,vmbr0"), invalid("duplicate key in comma-separated list property: model\n"));
    assert_eq!(with("net0", "model=virtio,bridge="), invalid("missing key in comma-separated list property\n"));
    assert_eq!(
        with("net0", "model=virtio,firewall=maybe"),
        invalid("format error\nnet0.firewall: type check ('boolean') failed - got 'maybe'\n")
    );
    assert_eq!(with("net0", "virtio,bridge=vmbr0,firewall=yes,link_down=off"), None);
    assert_eq!(with("scsi0", "local-lvm:32,iothread=1,discard=on,ssd=true"), None);
    assert!(with("scsi0", "local-lvm:32,cache=bogus")
        .unwrap()
        .contains("scsi0.cache: value 'bogus' does not have a value in the enumeration"));
}

#[test]
fn perl_patterns_translate() {
    for (pattern, good, bad) in [
        (r"(?^:\d+(?:-\d+)?(?:;\d+(?:-\d+)?)*)", "1-2;5", "1-"),
        (r"[A-Za-z0-9\-_\s]{,8}", "ab cd", "abcdefghi"),
        (r"(?^i:[a-z0-9_][a-z0-9_\-\+\.]*)", "Foo.bar", "-x"),
        (r"(?^:(?:\w+=[^\x00-\x08\x10-\x1F\x7F]*)(?:\0\w+=[^\x00-\x08\x10-\x1F\x7F]*)*)", "a=b\0c=d", "=b"),
    ] {
        let re = perl_regex(pattern).unwrap_or_else(|| panic!("{pattern} compiles"));
        assert!(re.is_match(good), "{pattern} matches {good:?}");
        assert!(!re.is_match(bad), "{pattern} rejects {bad:?}");
    }
}

#[test]
fn every_schema_pattern_compiles() {
    fn patterns(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(p)) = m.get("pattern") {
                    out.push(p.clone());
                }
                m.values().for_each(|v| patterns(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| patterns(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    for e in apidoc().endpoints() {
        patterns(e.parameters(), &mut all);
    }
    assert!(all.len() > 100);
    let bad = validate::untranslatable_patterns(all.iter().map(String::as_str));
    assert!(bad.is_empty(), "untranslatable patterns: {bad:?}");
}
