//! `secrets`: propagation from inputs to outputs, discovery, unknown detection, redaction.

use serde_json::json;

use super::super::secrets::{
    contains_unknowns, mark_secret_paths, propagate_input_secrets, secret_paths_in, strip_secrets, REDACTED,
};
use super::super::{from_json, to_json, OutputValue, PropertyValue, ResourceReference};
use super::{map, paths, pstr};

#[test]
fn secret_input_stays_secret_in_output_of_same_path() {
    // Inputs: the machine secrets' key and a disk size are secret.
    let inputs = to_json(&map(vec![
        ("machineSecrets", PropertyValue::Object(map(vec![("key", PropertyValue::secret(pstr("K")))]))),
        ("disks", PropertyValue::Array(vec![pstr("d0"), PropertyValue::secret(pstr("d1"))])),
        ("name", pstr("cp")),
    ]));
    assert_eq!(inputs.secrets, paths(&["disks[1]", "machineSecrets.key"]));

    // The resource computed outputs as plain JSON, marking one unrelated path secret itself.
    let output_json = json!({
        "machineSecrets": {"key": "K", "crt": "C"},
        "disks": ["d0", "d1"],
        "name": "cp",
        "talosconfig": "TC",
    });
    let mut out_secrets = paths(&["talosconfig"]);
    propagate_input_secrets(&inputs, &mut out_secrets);
    assert_eq!(out_secrets, paths(&["talosconfig", "disks[1]", "machineSecrets.key"]));

    let outputs = from_json(&output_json, &out_secrets);
    assert_eq!(outputs["talosconfig"], PropertyValue::secret(pstr("TC")));
    assert_eq!(outputs["disks"], PropertyValue::Array(vec![pstr("d0"), PropertyValue::secret(pstr("d1"))]));
    let ms = outputs["machineSecrets"].as_object().unwrap();
    assert_eq!(ms["key"], PropertyValue::secret(pstr("K")));
    assert_eq!(ms["crt"], pstr("C"));
    assert_eq!(outputs["name"], pstr("cp"));
}

#[test]
fn propagation_skips_covered_paths_and_drops_redundant_ones() {
    let inputs = to_json(&map(vec![
        ("a", PropertyValue::Object(map(vec![("b", PropertyValue::secret(pstr("x")))]))),
        ("c", PropertyValue::secret(PropertyValue::Object(map(vec![("d", pstr("y"))])))),
    ]));
    // "a" already covers "a.b"; "c.d" is made redundant by the input secret "c".
    let mut outputs = paths(&["a", "c.d", "e"]);
    propagate_input_secrets(&inputs, &mut outputs);
    assert_eq!(outputs, paths(&["a", "e", "c"]));
    // Idempotent.
    propagate_input_secrets(&inputs, &mut outputs);
    assert_eq!(outputs, paths(&["a", "e", "c"]));
}

#[test]
fn propagated_path_missing_from_outputs_is_harmless() {
    let inputs = to_json(&map(vec![("gone", PropertyValue::secret(pstr("x")))]));
    let mut out = Vec::new();
    propagate_input_secrets(&inputs, &mut out);
    let outputs = from_json(&json!({"other": 1}), &out);
    assert_eq!(outputs, map(vec![("other", PropertyValue::Number(1.0))]));
}

#[test]
fn secret_paths_in_matches_projection() {
    let m = map(vec![
        ("plain", pstr("p")),
        ("s", PropertyValue::secret(PropertyValue::Object(map(vec![("inner", PropertyValue::secret(pstr("i")))])))),
        (
            "out",
            PropertyValue::Output(OutputValue { value: Some(Box::new(pstr("o"))), secret: true, dependencies: vec![] }),
        ),
        (
            "list",
            PropertyValue::Array(vec![
                PropertyValue::Null,
                PropertyValue::Object(map(vec![("k", PropertyValue::secret(PropertyValue::Computed))])),
            ]),
        ),
    ]);
    let found = secret_paths_in(&m);
    assert_eq!(found, paths(&["list[1].k", "out", "s"]));
    assert_eq!(found, to_json(&m).secrets);
}

#[test]
fn mark_secret_paths_handles_outputs() {
    let mut m = map(vec![
        (
            "o",
            PropertyValue::Output(OutputValue {
                value: Some(Box::new(PropertyValue::Object(map(vec![("x", pstr("1"))])))),
                secret: false,
                dependencies: vec!["urn:d".into()],
            }),
        ),
        ("u", PropertyValue::Output(OutputValue::default())),
    ]);
    mark_secret_paths(&mut m, &paths(&["o.x", "u"]));
    let PropertyValue::Output(o) = &m["o"] else { panic!() };
    assert!(!o.secret);
    assert_eq!(o.dependencies, vec!["urn:d".to_string()]);
    assert_eq!(**o.value.as_ref().unwrap(), PropertyValue::Object(map(vec![("x", PropertyValue::secret(pstr("1")))])));
    // An output value is marked through its flag, keeping its dependencies.
    assert_eq!(m["u"], PropertyValue::Output(OutputValue { value: None, secret: true, dependencies: vec![] }));
}

#[test]
fn contains_unknowns_finds_every_kind() {
    let plain = map(vec![(
        "a",
        PropertyValue::Array(vec![pstr("x"), PropertyValue::Object(map(vec![("b", PropertyValue::Null)]))]),
    )]);
    assert!(!contains_unknowns(&plain));

    let deep =
        map(vec![("a", PropertyValue::Array(vec![PropertyValue::Object(map(vec![("b", PropertyValue::Computed)]))]))]);
    assert!(contains_unknowns(&deep));
    let in_secret = map(vec![("s", PropertyValue::secret(PropertyValue::Computed))]);
    assert!(contains_unknowns(&in_secret));
    let output = map(vec![("o", PropertyValue::Output(OutputValue::default()))]);
    assert!(contains_unknowns(&output));
    let known_output =
        map(vec![("o", PropertyValue::Output(OutputValue { value: Some(Box::new(pstr("v"))), ..Default::default() }))]);
    assert!(!contains_unknowns(&known_output));
    let reference = |id: PropertyValue| {
        map(vec![(
            "r",
            PropertyValue::ResourceReference(ResourceReference {
                urn: "u".into(),
                id: Some(Box::new(id)),
                package_version: String::new(),
            }),
        )])
    };
    assert!(contains_unknowns(&reference(PropertyValue::Computed)));
    assert!(contains_unknowns(&reference(pstr(""))));
    assert!(!contains_unknowns(&reference(pstr("id-1"))));
}

#[test]
fn strip_secrets_redacts_for_logging() {
    let m = map(vec![
        ("name", pstr("cp")),
        ("key", PropertyValue::secret(pstr("PRIVATE"))),
        (
            "nested",
            PropertyValue::Array(vec![PropertyValue::Object(map(vec![("pw", PropertyValue::secret(pstr("x")))]))]),
        ),
        (
            "out",
            PropertyValue::Output(OutputValue {
                value: Some(Box::new(pstr("hidden"))),
                secret: true,
                dependencies: vec![],
            }),
        ),
        ("u", PropertyValue::Computed),
    ]);
    let stripped = strip_secrets(&m);
    assert_eq!(
        stripped,
        map(vec![
            ("name", pstr("cp")),
            ("key", pstr(REDACTED)),
            ("nested", PropertyValue::Array(vec![PropertyValue::Object(map(vec![("pw", pstr(REDACTED))]))])),
            ("out", pstr(REDACTED)),
            ("u", PropertyValue::Computed),
        ])
    );
    assert!(secret_paths_in(&stripped).is_empty());
    let debug = format!("{stripped:?}");
    assert!(!debug.contains("PRIVATE") && !debug.contains("hidden"), "{debug}");
}
