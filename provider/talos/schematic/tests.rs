//! Schematic IDs pinned to the factory's, and the canonical writer checked
//! against `gopkg.in/yaml.v3` itself: `golden.jsonl` holds what yaml.v3 writes
//! for the factory's type for 400+ inputs (regenerate with
//! `cd tools/schematic-golden && go run . > ../../provider/talos/schematic/golden.jsonl`).

use super::*;

fn id_of(yaml: &str) -> String {
    Schematic::parse(yaml).unwrap_or_else(|e| panic!("{yaml:?}: {e}")).id()
}

#[test]
fn the_vanilla_schematic_has_the_well_known_id() {
    for empty in
        ["", "{}", "customization: {}", "customization:", "# only a comment\n", "customization: {extraKernelArgs: []}"]
    {
        assert_eq!(id_of(empty), VANILLA_SCHEMATIC_ID, "{empty:?}");
    }
    assert_eq!(Schematic::default().canonical_yaml(), "customization: {}\n");
    assert_eq!(schematic_id(&Schematic::default()), VANILLA_SCHEMATIC_ID);
}

#[test]
fn official_extensions_give_the_widely_used_id_and_order_matters() {
    let seed = "customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/iscsi-tools\n      - siderolabs/qemu-guest-agent\n      - siderolabs/util-linux-tools\n";
    assert_eq!(id_of(seed), "88d1f7a5c4f1d3aba7df787c448c1d3d008ed29cfb34af53fa0df4336a56040b");
    let json = r#"{"customization":{"systemExtensions":{"officialExtensions":["siderolabs/iscsi-tools","siderolabs/qemu-guest-agent","siderolabs/util-linux-tools"]}}}"#;
    assert_eq!(id_of(json), "88d1f7a5c4f1d3aba7df787c448c1d3d008ed29cfb34af53fa0df4336a56040b", "JSON is YAML");
    let reordered = "customization: {systemExtensions: {officialExtensions: [siderolabs/iscsi-tools, siderolabs/util-linux-tools, siderolabs/qemu-guest-agent]}}";
    assert_eq!(id_of(reordered), "e187c9b90f773cd8c84e5a3265c5554ee787b2fe67b508d9f955e90e7ae8c96c");
    assert_eq!(
        Schematic::parse(seed).unwrap().canonical_yaml(),
        "customization:\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/iscsi-tools\n            - siderolabs/qemu-guest-agent\n            - siderolabs/util-linux-tools\n"
    );
}

#[test]
fn the_factorys_own_test_ids() {
    // Vectors from siderolabs/image-factory pkg/schematic tests and public usage.
    let cases = [
        (
            "customization: {extraKernelArgs: [noapic, nolapic]}",
            "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c",
        ),
        (
            r#"{"customization": {"meta": [{"key": 10, "value": "foo"}], "extraKernelArgs": [], "systemExtensions": {}}}"#,
            "d308a2a5ee2277bed5fbaa104fcbc8d59122abfa737df987a95b4ca763459a7f",
        ),
        (
            "customization: {meta: [{key: 0xa, value: foo}]}",
            "d308a2a5ee2277bed5fbaa104fcbc8d59122abfa737df987a95b4ca763459a7f",
        ),
        (
            r#"{"overlay": {"name": "rpi_generic", "image": "siderolabs/sbc-raspberrypi"},"customization":{}}"#,
            "ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9",
        ),
        (
            r#"{"customization":{"secureboot": {"includeWellKnownCertificates": true}}}"#,
            "fa8e05f142a851d3ee568eb0a8e5841eaf6b0ebc8df9a63df16ac5ed2c04f3e6",
        ),
        ("customization:\n  bootloader: sd-boot\n", "9ed5fecdacb36b5c5427b87d409f1065cfb2df69b0f71c58b868d9d466d8dab3"),
        ("customization:\n  bootloader: SD-BOOT\n", "9ed5fecdacb36b5c5427b87d409f1065cfb2df69b0f71c58b868d9d466d8dab3"),
        ("customization:\n  bootloader: none\n", VANILLA_SCHEMATIC_ID),
    ];
    for (yaml, id) in cases {
        assert_eq!(id_of(yaml), id, "{yaml}");
    }
}

#[test]
fn extra_kernel_args_and_meta_keep_their_order_and_quote_lookalikes() {
    let s = Schematic::parse("customization:\n  extraKernelArgs: [console=ttyS0, 'on', '1.20', net.ifnames=0]\n  meta:\n    - {key: 12, value: '{\"a\":1}'}\n    - {key: 10, value: \"off\"}\n").unwrap();
    assert_eq!(
        s.canonical_yaml(),
        "customization:\n    extraKernelArgs:\n        - console=ttyS0\n        - \"on\"\n        - \"1.20\"\n        - net.ifnames=0\n    meta:\n        - key: 12\n          value: '{\"a\":1}'\n        - key: 10\n          value: \"off\"\n"
    );
    let swapped = Schematic::parse("customization:\n  extraKernelArgs: [net.ifnames=0, console=ttyS0]\n").unwrap();
    let original = Schematic::parse("customization:\n  extraKernelArgs: [console=ttyS0, net.ifnames=0]\n").unwrap();
    assert_ne!(swapped.id(), original.id());
}

#[test]
fn a_multi_line_meta_value_is_a_literal_block() {
    let s = Schematic::parse("customization:\n  meta:\n    - key: 0xa\n      value: |\n        addresses:\n          - address: 192.168.1.50/24\n").unwrap();
    assert_eq!(
        s.canonical_yaml(),
        "customization:\n    meta:\n        - key: 10\n          value: |\n            addresses:\n              - address: 192.168.1.50/24\n"
    );
}

#[test]
fn unknown_fields_are_rejected_with_their_path() {
    let e = Schematic::parse("customization:\n  systemExtension:\n    officialExtensions: [a]\n").unwrap_err();
    assert_eq!(e.path, "customization.systemExtension");
    assert_eq!(e.unknown_field.as_deref(), Some("systemExtension"));
    assert!(e.reason.contains("`systemExtensions`"), "lists the valid names: {}", e.reason);
    assert_eq!(e.line, Some(2));
    assert!(e.to_string().starts_with("customization.systemExtension: unknown field"), "{e}");

    let e = Schematic::parse("customization: {meta: [{key: 1, value: a, vaule: b}]}").unwrap_err();
    assert_eq!(e.path, "customization.meta[0].vaule");
    let e = Schematic::parse("overlays: {}").unwrap_err();
    assert_eq!((e.path.as_str(), e.unknown_field.as_deref()), ("overlays", Some("overlays")));
}

#[test]
fn bad_values_name_their_path() {
    let e = Schematic::parse("customization: {meta: [{key: 256, value: a}]}").unwrap_err();
    assert_eq!(e.path, "customization.meta[0].key");
    assert_eq!(e.unknown_field, None);
    let e = Schematic::parse("customization: {bootloader: lilo}").unwrap_err();
    assert_eq!(e.path, "customization.bootloader");
    assert!(e.reason.contains("sd-boot"), "{}", e.reason);
    let e = Schematic::parse("customization: {secureboot: {enrollKeys: always}}").unwrap_err();
    assert_eq!(e.path, "customization.secureboot.enrollKeys");
    let e = Schematic::parse("overlay: {image: i, name: n, options: {1: x}}").unwrap_err();
    assert_eq!(e.path, "overlay.options");
    assert!(Schematic::parse("- a\n- b\n").is_err());
    assert!(Schematic::parse("customization: {extraKernelArgs: [[a]]}").is_err());
}

#[test]
fn the_canonical_writer_matches_yaml_v3_on_every_golden_vector() {
    #[derive(serde::Deserialize)]
    struct Vector {
        input: String,
        canonical: Option<String>,
        id: Option<String>,
        error: Option<String>,
    }
    let mut checked = 0;
    for line in include_str!("golden.jsonl").lines() {
        let v: Vector = serde_json::from_str(line).unwrap();
        match (Schematic::parse(&v.input), v.error) {
            (Err(_), Some(_)) => {}
            (Ok(s), None) => {
                assert_eq!(s.canonical_yaml(), v.canonical.unwrap(), "input {:?}", v.input);
                assert_eq!(s.id(), v.id.unwrap(), "input {:?}", v.input);
            }
            (Ok(s), Some(e)) => panic!("yaml.v3 rejects {:?} ({e}) but we read {s:?}", v.input),
            (Err(e), None) => panic!("yaml.v3 reads {:?} but we reject it: {e}", v.input),
        }
        checked += 1;
    }
    assert!(checked > 400, "{checked}");
}

#[test]
fn floats_are_written_as_go_writes_them() {
    let cases = [
        (1.0, "1"),
        (0.5, "0.5"),
        (-2.5, "-2.5"),
        (1e6, "1e+06"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (1e-5, "1e-05"),
        (0.0001, "0.0001"),
        (1e21, "1e+21"),
        (1.5e300, "1.5e+300"),
        (f64::INFINITY, ".inf"),
        (f64::NEG_INFINITY, "-.inf"),
        (-0.0, "-0"),
    ];
    for (f, go) in cases {
        assert_eq!(go_float(f), go, "{f}");
    }
}

#[test]
fn option_keys_sort_as_go_sorts_them() {
    let mut keys = vec!["z10", "Z", "a01b", "_a", "1", "x-y", "a", "z9", "a1b", "b"];
    keys.sort_by(|a, b| emit::go_key_order(a, b));
    assert_eq!(keys, vec!["_a", "1", "Z", "a", "a1b", "a01b", "b", "x-y", "z9", "z10"]);
}
