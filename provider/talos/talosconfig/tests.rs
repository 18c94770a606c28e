//! Tests for talosconfig rendering and the address rules.
//!
//! Owns: exact-output checks against the layout Talos's client config
//! marshals (verified against machinery itself in `tests/talos_roundtrip.rs`).
//! Must not: do IO.

use super::*;

fn pem_b64(tag: &str) -> String {
    STANDARD.encode(format!("-----BEGIN {tag}-----\nAAECAw==\n-----END {tag}-----\n"))
}

fn client() -> ClientConfiguration {
    ClientConfiguration {
        ca_certificate: pem_b64("CERTIFICATE"),
        client_certificate: pem_b64("CERTIFICATE"),
        client_key: pem_b64("ED25519 PRIVATE KEY"),
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn renders_the_machinery_layout() {
    let client = client();
    let endpoints = strings(&["192.168.1.210", "[fd00::10]:50000"]);
    let nodes = strings(&["192.168.1.211"]);
    let cfg = Talosconfig { context: "talos-cluster", client: &client, endpoints: &endpoints, nodes: &nodes };
    let yaml = cfg.render().unwrap();
    let expected = format!(
        "context: talos-cluster\ncontexts:\n    talos-cluster:\n        endpoints:\n            - 192.168.1.210\n            \
         - '[fd00::10]:50000'\n        nodes:\n            - 192.168.1.211\n        ca: {ca}\n        crt: {ca}\n        \
         key: {key}\n",
        ca = pem_b64("CERTIFICATE"),
        key = pem_b64("ED25519 PRIVATE KEY"),
    );
    assert_eq!(yaml, expected);

    // No nodes: the key is left out, as Go's `omitempty` does.
    let cfg = Talosconfig { nodes: &[], ..cfg };
    assert!(!cfg.render().unwrap().contains("nodes"));
}

#[test]
fn quotes_names_go_would_quote_and_canonicalises_base64() {
    let mut client = client();
    let wrapped = client.ca_certificate.clone();
    client.ca_certificate = format!("{}\n{}", &wrapped[..20], &wrapped[20..]);
    let endpoints = strings(&["talos.example.com"]);
    let cfg = Talosconfig { context: "2024", client: &client, endpoints: &endpoints, nodes: &[] };
    let yaml = cfg.render().unwrap();
    assert!(yaml.starts_with("context: \"2024\"\ncontexts:\n    \"2024\":\n"), "{yaml}");
    assert!(yaml.contains(&format!("ca: {wrapped}\n")), "{yaml}");
}

#[test]
fn endpoints_are_addresses_not_urls() {
    for ok in ["192.168.1.210", "192.168.1.210:50000", "talos.example.com", "cp-1", "fd00::10", "[fd00::10]:50000"] {
        assert_eq!(check_endpoint(ok), Ok(()), "{ok}");
    }
    let err = check_endpoint("https://192.168.1.210:6443").unwrap_err();
    assert!(err.contains("is a https URL (did you mean 192.168.1.210?)"), "{err}");
    assert!(err.contains("it is not a URL"), "{err}");
    for bad in [
        "",
        "[fd00::10]",
        "192.168.1.210:0",
        "192.168.1.210:99999",
        "192.168.1.210:",
        "host:port",
        "192.168.1.300",
        "a b",
        "-cp",
        "cp/1",
        "1.2.3.4:5:6",
    ] {
        assert!(check_endpoint(bad).is_err(), "{bad:?} should be rejected");
    }
}

#[test]
fn nodes_have_no_port() {
    for ok in ["192.168.1.211", "fd00::11", "worker-1.lan"] {
        assert_eq!(check_node(ok), Ok(()), "{ok}");
    }
    for bad in ["192.168.1.211:50000", "[fd00::11]:50000", "https://worker", ""] {
        assert!(check_node(bad).is_err(), "{bad:?} should be rejected");
    }
}

#[test]
fn problems_name_every_bad_argument() {
    let mut client = client();
    client.client_key = pem_b64("CERTIFICATE");
    client.ca_certificate = "not base64!".into();
    let endpoints = strings(&["ok.example", "https://x"]);
    let nodes = strings(&["n:1"]);
    let cfg = Talosconfig { context: "", client: &client, endpoints: &endpoints, nodes: &nodes };
    let fields: Vec<String> = cfg.problems().into_iter().map(|p| p.field).collect();
    assert_eq!(
        fields,
        [
            "clusterName",
            "endpoints[1]",
            "nodes[0]",
            "clientConfiguration.caCertificate",
            "clientConfiguration.clientKey"
        ]
    );
    let err = cfg.render().unwrap_err();
    assert_eq!(err.field, "clusterName");
    let cfg = Talosconfig { context: "x", client: &client, endpoints: &[], nodes: &[] };
    assert!(cfg.problems().iter().any(|p| p.field == "endpoints" && p.reason.contains("at least one")));
    assert!(check_context_name("two\nlines").is_err());
    assert!(check_context_name(&"n".repeat(129)).is_err());
    assert!(check_context_name("my cluster ü").is_ok());
}
