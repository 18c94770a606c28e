//! `json`: the projection, its inverse with secret re-wrapping, and typed decode/encode.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::super::json::try_encode;
use super::super::{
    decode, encode, from_json, from_struct, to_json, to_struct, Archive, Asset, AssetSource, OutputValue,
    PropertyValue, ResourceReference,
};
use super::{map, path, paths, pstr, s, sig_obj, strct};

const UNKNOWN: &str = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

#[test]
fn integral_numbers_project_to_integers() {
    let m = map(vec![
        ("cores", PropertyValue::Number(4.0)),
        ("negative", PropertyValue::Number(-12.0)),
        ("half", PropertyValue::Number(2.5)),
        ("huge", PropertyValue::Number(1e20)),
        ("nan", PropertyValue::Number(f64::NAN)),
    ]);
    let v = to_json(&m).value;
    assert!(v["cores"].is_i64() && v["cores"] == json!(4));
    assert!(v["negative"].is_i64() && v["negative"] == json!(-12));
    assert!(v["half"].is_f64() && v["half"] == json!(2.5));
    // Outside i64: stays a float rather than saturating to a wrong integer.
    assert!(v["huge"].is_f64());
    assert_eq!(v["nan"], json!(null));

    #[derive(Deserialize)]
    struct Vm {
        cores: u32,
        negative: i64,
    }
    let vm: Vm = decode(&v).unwrap();
    assert_eq!((vm.cores, vm.negative), (4, -12));
}

#[test]
fn secrets_are_unwrapped_and_recorded_outermost() {
    let m = map(vec![
        ("password", PropertyValue::secret(pstr("pw"))),
        (
            "machineSecrets",
            PropertyValue::Object(map(vec![(
                "certs",
                PropertyValue::Object(map(vec![(
                    "os",
                    PropertyValue::Object(map(vec![
                        ("key", PropertyValue::secret(pstr("PRIVATE"))),
                        ("crt", pstr("PUBLIC")),
                    ])),
                )])),
            )])),
        ),
        // A secret holding another secret: only the outer path is recorded.
        (
            "nested",
            PropertyValue::secret(PropertyValue::Object(map(vec![("inner", PropertyValue::secret(pstr("x")))]))),
        ),
    ]);
    let p = to_json(&m);
    assert_eq!(
        p.value,
        json!({
            "machineSecrets": {"certs": {"os": {"crt": "PUBLIC", "key": "PRIVATE"}}},
            "nested": {"inner": "x"},
            "password": "pw",
        })
    );
    assert_eq!(p.secrets, paths(&["machineSecrets.certs.os.key", "nested", "password"]));
    assert!(p.unknowns.is_empty());
    assert!(p.is_secret(&path("nested.inner")));
    assert!(!p.is_secret(&path("machineSecrets.certs.os.crt")));
}

#[test]
fn unknowns_become_the_sentinel_and_are_recorded() {
    let m = map(vec![
        ("id", PropertyValue::Computed),
        ("disks", PropertyValue::Array(vec![pstr("a"), PropertyValue::secret(PropertyValue::Computed)])),
    ]);
    let p = to_json(&m);
    assert_eq!(p.value, json!({"disks": ["a", UNKNOWN], "id": UNKNOWN}));
    assert_eq!(p.unknowns, paths(&["disks[1]", "id"]));
    assert_eq!(p.secrets, paths(&["disks[1]"]));
    assert!(p.has_unknowns());
}

#[test]
fn output_values_are_unwrapped() {
    let m = map(vec![
        (
            "known",
            PropertyValue::Output(OutputValue {
                value: Some(Box::new(pstr("v"))),
                secret: false,
                dependencies: vec!["urn:x".into()],
            }),
        ),
        (
            "secret",
            PropertyValue::Output(OutputValue {
                value: Some(Box::new(PropertyValue::Number(1.0))),
                secret: true,
                dependencies: vec![],
            }),
        ),
        ("unknown", PropertyValue::Output(OutputValue { value: None, secret: true, dependencies: vec![] })),
    ]);
    let p = to_json(&m);
    assert_eq!(p.value, json!({"known": "v", "secret": 1, "unknown": UNKNOWN}));
    assert_eq!(p.secrets, paths(&["secret", "unknown"]));
    assert_eq!(p.unknowns, paths(&["unknown"]));
}

#[test]
fn resource_references_become_id_or_urn() {
    let reference = |id: Option<PropertyValue>| {
        PropertyValue::ResourceReference(ResourceReference {
            urn: "urn:pulumi:s::p::t::n".into(),
            id: id.map(Box::new),
            package_version: String::new(),
        })
    };
    let m = map(vec![
        ("custom", reference(Some(pstr("vm-100")))),
        ("component", reference(None)),
        ("pending", reference(Some(PropertyValue::Computed))),
        ("pendingEmpty", reference(Some(pstr("")))),
    ]);
    let p = to_json(&m);
    assert_eq!(
        p.value,
        json!({"component": "urn:pulumi:s::p::t::n", "custom": "vm-100", "pending": UNKNOWN, "pendingEmpty": UNKNOWN})
    );
    // An unknown id is unknown, exactly as the engine projects it for providers without
    // reference support; it is not silently replaced by the URN.
    assert_eq!(p.unknowns, paths(&["pending", "pendingEmpty"]));
}

#[test]
fn assets_and_archives_keep_their_signature_objects_and_read_into_typed_fields() {
    let wire = strct(vec![
        ("script", sig_obj("c44067f5952c0a294b673a41bacd8c17", vec![("hash", s("h1")), ("text", s("echo hi"))])),
        ("bundle", sig_obj("0def7320c3a5731c473e5ecbe6d01bc7", vec![("path", s("./dist"))])),
    ]);
    let m = from_struct(&wire).unwrap();
    let p = to_json(&m);
    assert_eq!(
        p.value,
        json!({
            "bundle": {"4dabf18193072939515e22adb298388d": "0def7320c3a5731c473e5ecbe6d01bc7", "path": "./dist"},
            "script": {"4dabf18193072939515e22adb298388d": "c44067f5952c0a294b673a41bacd8c17", "hash": "h1", "text": "echo hi"},
        })
    );

    #[derive(Deserialize, Serialize, PartialEq, Debug)]
    struct Inputs {
        script: Asset,
        bundle: Archive,
    }
    let typed: Inputs = decode(&p.value).unwrap();
    assert_eq!(typed.script, Asset { hash: Some("h1".into()), source: Some(AssetSource::Text("echo hi".into())) });
    assert_eq!(typed.bundle, Archive::path("./dist"));
    // And back: encode -> from_json -> to_struct reproduces the wire form.
    let back = from_json(&encode(&typed), &[]);
    assert_eq!(back, m);
    assert_eq!(to_struct(&back), wire);
}

#[test]
fn asset_serde_rejects_the_wrong_signature() {
    let as_asset = serde_json::from_value::<Asset>(json!({
        "4dabf18193072939515e22adb298388d": "0def7320c3a5731c473e5ecbe6d01bc7", "path": "x"
    }));
    assert!(as_asset.is_err());
    // Wrong signature in from_json: left as a plain object rather than guessed at.
    let m = from_json(
        &json!({"a": {"4dabf18193072939515e22adb298388d": "c44067f5952c0a294b673a41bacd8c17", "text": 5}}),
        &[],
    );
    assert!(matches!(&m["a"], PropertyValue::Object(_)), "{:?}", m["a"]);
}

#[test]
fn from_json_restores_unknowns_and_numbers() {
    let m = from_json(
        &json!({"id": UNKNOWN, "typed": "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2", "n": 3, "f": 0.5, "list": [null, true]}),
        &[],
    );
    assert_eq!(
        m,
        map(vec![
            ("f", PropertyValue::Number(0.5)),
            ("id", PropertyValue::Computed),
            ("list", PropertyValue::Array(vec![PropertyValue::Null, PropertyValue::Bool(true)])),
            ("n", PropertyValue::Number(3.0)),
            ("typed", PropertyValue::Computed),
        ])
    );
    assert!(from_json(&json!([1, 2]), &[]).is_empty());
}

#[test]
fn from_json_rewraps_secrets_at_nested_paths() {
    let value = json!({
        "machineSecrets": {"certs": {"os": {"key": "PRIVATE", "crt": "PUBLIC"}}},
        "disks": [{"size": 10}, {"size": 20}],
    });
    let m = from_json(&value, &paths(&["machineSecrets.certs.os.key", "disks[1].size"]));
    let os = &m["machineSecrets"].as_object().unwrap()["certs"].as_object().unwrap()["os"];
    let os = os.as_object().unwrap();
    assert_eq!(os["key"], PropertyValue::secret(pstr("PRIVATE")));
    assert_eq!(os["crt"], pstr("PUBLIC"));
    let PropertyValue::Array(disks) = &m["disks"] else { panic!() };
    assert_eq!(disks[0], PropertyValue::Object(map(vec![("size", PropertyValue::Number(10.0))])));
    assert_eq!(
        disks[1],
        PropertyValue::Object(map(vec![("size", PropertyValue::secret(PropertyValue::Number(20.0)))]))
    );

    // Round trip: projecting again yields the same secret paths.
    assert_eq!(to_json(&m).secrets, paths(&["disks[1].size", "machineSecrets.certs.os.key"]));
}

#[test]
fn from_json_secret_paths_edge_cases() {
    let value = json!({"a": {"b": 1}, "u": UNKNOWN, "list": [1, 2]});
    let m = from_json(
        &value,
        &paths(&[
            "a.b",       // inner first in the list, but applied after "a"
            "a",         // outer
            "missing.x", // does not exist: ignored
            "u.deeper",  // through an unknown: stays unknown
            "list[5]",   // out of range: ignored
            "list[*]",   // wildcard
            "",          // root: ignored
        ]),
    );
    // "a" wrapped once, with no secret nested inside it.
    assert_eq!(m["a"], PropertyValue::secret(PropertyValue::Object(map(vec![("b", PropertyValue::Number(1.0))]))));
    assert_eq!(m["u"], PropertyValue::Computed);
    assert_eq!(
        m["list"],
        PropertyValue::Array(vec![
            PropertyValue::secret(PropertyValue::Number(1.0)),
            PropertyValue::secret(PropertyValue::Number(2.0))
        ])
    );
    assert!(!m.contains_key("missing"));
    // A secret path that ends on an unknown makes a secret unknown.
    let m = from_json(&value, &paths(&["u"]));
    assert_eq!(m["u"], PropertyValue::secret(PropertyValue::Computed));
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Disk {
    size: u32,
    storage_pool: String,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Vm {
    name: String,
    disks: Vec<Disk>,
}

#[test]
fn decode_error_carries_the_property_path() {
    let v = json!({
        "name": "cp-1",
        "disks": [{"size": 10, "storagePool": "local"}, {"size": "big", "storagePool": "local"}],
    });
    let err = decode::<Vm>(&v).unwrap_err();
    assert_eq!(err.path, path("disks[1].size"));
    assert!(err.message.contains("invalid type: string \"big\""), "{}", err.message);
    assert!(err.to_string().starts_with("disks[1].size: invalid type"), "{err}");
}

#[test]
fn decode_error_for_missing_field_and_odd_keys() {
    let err = decode::<Vm>(&json!({"name": "x", "disks": [{"size": 1}]})).unwrap_err();
    assert_eq!(err.path, path("disks[0]"));
    assert!(err.message.contains("missing field `storagePool`"), "{}", err.message);

    let err = decode::<std::collections::BTreeMap<String, u8>>(&json!({"a.b": 300})).unwrap_err();
    assert_eq!(err.path.to_string(), "[\"a.b\"]");

    let err = decode::<u8>(&json!("x")).unwrap_err();
    assert!(err.path.is_empty());
    assert!(!err.to_string().starts_with(':'), "{err}");
}

#[test]
fn encode_and_try_encode() {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Out {
        vm_id: u32,
        ip: Option<String>,
    }
    assert_eq!(encode(&Out { vm_id: 100, ip: None }), json!({"vmId": 100, "ip": null}));
    let bad = std::collections::BTreeMap::from([((1, 2), 3)]);
    assert!(try_encode(&bad).is_err());
}
