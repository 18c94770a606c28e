//! The compact PVE API schema the lab commits and embeds
//! (`lab/apidoc/pve-apidoc.compact.json`): it is what `apidoc compact`
//! makes of the official `pve-apidoc.json` (byte for byte), and the validator
//! answers every sampled request the same with either form.
//!
//! The official file is optional: `$PVE_APIDOC_OFFICIAL`, else
//! `../shared/pve-apidoc.json` beside the repository. Without it the tests
//! that need it print a note and pass.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use proxmox_talos_lab::pve::apidoc::{compact, ApiDoc, Endpoint, COMPACT_FILE, EMBEDDED};
use proxmox_talos_lab::pve::validate::{self, Raw};
use serde_json::Value;

fn official() -> Option<PathBuf> {
    let path = match std::env::var_os("PVE_APIDOC_OFFICIAL") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/pve-apidoc.json"),
    };
    if path.is_file() {
        Some(path)
    } else {
        eprintln!("note: skipped: no official PVE API schema at {} (set PVE_APIDOC_OFFICIAL)", path.display());
        None
    }
}

fn committed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(COMPACT_FILE)
}

#[test]
fn the_embedded_schema_is_the_committed_file_and_indexes_pve_9_1() {
    assert_eq!(EMBEDDED, std::fs::read_to_string(committed()).unwrap());
    let doc = ApiDoc::embedded();
    assert!(doc.endpoint_count() > 600, "PVE 9.1 has ~650 endpoints, got {}", doc.endpoint_count());
    let create = doc.endpoint("POST", "/nodes/{node}/qemu").expect("POST /nodes/{node}/qemu");
    assert_eq!(create.parameters()["properties"]["scsi[n]"]["description"], "(n is 0 to 30)");
    assert!(create.info["permissions"].is_object(), "permissions are kept");
    assert!(!EMBEDDED.contains("verbose_description"), "no prose");
}

#[test]
fn the_committed_compact_schema_is_what_apidoc_compact_makes_of_the_official_one() {
    let Some(official) = official() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("compact.json");
    let run = proxmox_talos_lab::deadline::output_or_panic(
        Command::new(env!("CARGO_BIN_EXE_proxmox-talos-lab")).args([
            "apidoc",
            "compact",
            "--from",
            official.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]),
        Duration::from_secs(120),
    );
    assert!(
        run.status.success(),
        "apidoc compact: {}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let fresh = std::fs::read(&out).unwrap();
    let committed_bytes = std::fs::read(committed()).unwrap();
    assert!(
        fresh == committed_bytes,
        "{} is stale: regenerate it with `cargo run -p proxmox-talos-lab -- apidoc compact --from {} --out lab/{COMPACT_FILE}`",
        committed().display(),
        official.display()
    );
}

/// Values that exercise types, formats, patterns, enums and ranges.
const PROBES: [&str; 9] = ["", "0", "1", "-1", "4096", "abc", "a=b,c", "99999999999999", "local:iso/x.iso"];

/// Sample requests for an endpoint: no parameters, each parameter alone with
/// each probe (plus its enum values and default), and the `name[n]` indexes
/// around the documented range.
fn samples(endpoint: &Endpoint) -> Vec<Vec<(String, Raw)>> {
    let mut out = vec![Vec::new()];
    let props = endpoint.parameters()["properties"].as_object().cloned().unwrap_or_default();
    for (name, schema) in &props {
        let mut names = vec![name.clone()];
        if let Some(prefix) = name.strip_suffix("[n]") {
            names = ["0", "1", "7", "8", "15", "16", "29", "30", "31", "32", "255", "256", "01"]
                .iter()
                .map(|i| format!("{prefix}{i}"))
                .collect();
        }
        let mut values: Vec<String> = PROBES.iter().map(|s| s.to_string()).collect();
        for v in schema["enum"].as_array().into_iter().flatten().chain(schema.get("default")) {
            values.push(v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
        }
        for n in &names {
            for v in &values {
                out.push(vec![(n.clone(), Raw::Text(v.clone()))]);
            }
        }
    }
    out
}

#[test]
fn the_compact_and_the_official_schema_validate_alike() {
    let Some(official) = official() else { return };
    let full = ApiDoc::load(&official).unwrap();
    let compact_doc = ApiDoc::embedded();
    let full_endpoints: Vec<(String, String)> =
        full.endpoints().map(|e| (e.method.clone(), e.template.clone())).collect();
    let compact_endpoints: Vec<(String, String)> =
        compact_doc.endpoints().map(|e| (e.method.clone(), e.template.clone())).collect();
    assert_eq!(full_endpoints, compact_endpoints, "the same endpoints in the same order");
    let mut compared = 0usize;
    let mut differences = Vec::new();
    for e in full.endpoints() {
        let c = compact_doc.endpoint(&e.method, &e.template).unwrap();
        for key in ["permissions", "allowtoken", "protected", "proxyto", "download_allowed", "expose_credentials"] {
            if e.info.get(key) != c.info.get(key) {
                differences.push(format!("{} {}: {key} differs", e.method, e.template));
            }
        }
        for input in samples(e) {
            let a = validate::validate(e.parameters(), input.clone());
            let b = validate::validate(c.parameters(), input.clone());
            if a != b {
                differences.push(format!("{} {} {:?}: official {a:?}, compact {b:?}", e.method, e.template, input));
            }
            compared += 1;
        }
    }
    assert!(differences.is_empty(), "{differences:#?}");
    assert!(compared > 20_000, "compared only {compared} requests");
    eprintln!("compared {compared} requests");

    // And compacting the official schema in-process gives the committed one.
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&official).unwrap()).unwrap();
    assert_eq!(compact::to_text(&compact::compact(&json).unwrap()), EMBEDDED);
}
