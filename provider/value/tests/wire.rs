//! `wire`: sentinels, every signature kind, round trips through `prost_types::Struct`, errors.

use std::collections::BTreeMap;

use prost_types::value::Kind;
use prost_types::Value;

use super::super::wire::{decode_base64, from_struct, from_value, to_struct, to_value, ValueError};
use super::super::{
    Archive, ArchiveSource, Asset, AssetOrArchive, AssetSource, OutputValue, PropertyValue, ResourceReference,
    UNKNOWN_SENTINELS,
};
use super::{b, list, map, n, null, obj, path, pstr, s, sig_obj, strct, SIG};

const SENTINELS: [&str; 7] = [
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9",
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",
    "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
    "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
    "030794c1-ac77-496b-92df-f27374a8bd58",
    "e48ece36-62e2-4504-bad9-02848725956a",
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",
];

fn decode_one(v: Value) -> Result<PropertyValue, ValueError> {
    from_value(&v)
}

/// Decodes `v`, re-encodes, decodes again: the model must survive the trip unchanged.
fn round_trip(v: Value) -> PropertyValue {
    let decoded = decode_one(v).expect("decodes");
    let again = decode_one(to_value(&decoded)).expect("re-decodes");
    assert_eq!(again, decoded, "round trip changed the value");
    decoded
}

#[test]
fn constants_are_the_engine_sentinels() {
    assert_eq!(UNKNOWN_SENTINELS, SENTINELS);
}

#[test]
fn every_unknown_sentinel_decodes_to_computed() {
    for sentinel in SENTINELS {
        assert_eq!(decode_one(s(sentinel)).unwrap(), PropertyValue::Computed, "{sentinel}");
    }
    // A near-miss is just a string.
    let near = "04da6b54-80e4-46f7-96ec-b56ff0331ba8";
    assert_eq!(decode_one(s(near)).unwrap(), pstr(near));
}

#[test]
fn computed_encodes_as_generic_sentinel() {
    assert_eq!(to_value(&PropertyValue::Computed), s("04da6b54-80e4-46f7-96ec-b56ff0331ba9"));
    // Even one decoded from a typed sentinel.
    let typed = decode_one(s("3eeb2bf0-c639-47a8-9e75-3b44932eb421")).unwrap();
    assert_eq!(to_value(&typed), s("04da6b54-80e4-46f7-96ec-b56ff0331ba9"));
}

#[test]
fn primitives_and_nesting_round_trip() {
    let input = strct(vec![
        ("nothing", null()),
        ("flag", b(true)),
        ("count", n(3.0)),
        ("ratio", n(0.25)),
        ("name", s("talos-cp-1")),
        ("disks", list(vec![obj(vec![("size", n(32.0))]), obj(vec![("size", n(64.0))])])),
        ("unset", Value { kind: None }),
    ]);
    let decoded = from_struct(&input).unwrap();
    let disk = |size: f64| PropertyValue::Object(map(vec![("size", PropertyValue::Number(size))]));
    let expected = map(vec![
        ("nothing", PropertyValue::Null),
        ("flag", PropertyValue::Bool(true)),
        ("count", PropertyValue::Number(3.0)),
        ("ratio", PropertyValue::Number(0.25)),
        ("name", pstr("talos-cp-1")),
        ("disks", PropertyValue::Array(vec![disk(32.0), disk(64.0)])),
        ("unset", PropertyValue::Null),
    ]);
    assert_eq!(decoded, expected);
    let mut reencoded = input.clone();
    reencoded.fields.insert("unset".into(), null());
    assert_eq!(to_struct(&decoded), reencoded);
}

#[test]
fn secret_round_trips() {
    let wire = sig_obj("1b47061264138c4ac30d75fd1eb44270", vec![("value", s("hunter2"))]);
    let v = round_trip(wire.clone());
    assert_eq!(v, PropertyValue::secret(pstr("hunter2")));
    assert_eq!(to_value(&v), wire);
}

#[test]
fn secret_of_unknown_and_of_object() {
    let wire = sig_obj(
        "1b47061264138c4ac30d75fd1eb44270",
        vec![("value", obj(vec![("key", s("1c4a061d-8072-4f0a-a4cb-0ff528b18fe7"))]))],
    );
    let v = round_trip(wire);
    assert_eq!(v, PropertyValue::secret(PropertyValue::Object(map(vec![("key", PropertyValue::Computed)]))));
}

#[test]
fn resource_reference_with_id_round_trips() {
    let wire = sig_obj(
        "5cf8f73096256a8f31e491e813e4eb8e",
        vec![("urn", s("urn:pulumi:dev::p::t:m:T::vm")), ("id", s("100")), ("packageVersion", s("1.2.3"))],
    );
    let v = round_trip(wire.clone());
    assert_eq!(
        v,
        PropertyValue::ResourceReference(ResourceReference {
            urn: "urn:pulumi:dev::p::t:m:T::vm".into(),
            id: Some(Box::new(pstr("100"))),
            package_version: "1.2.3".into(),
        })
    );
    assert_eq!(to_value(&v), wire);
}

#[test]
fn resource_reference_empty_id_is_unknown_and_absent_id_is_none() {
    let unknown = sig_obj("5cf8f73096256a8f31e491e813e4eb8e", vec![("urn", s("urn:a")), ("id", s(""))]);
    let v = round_trip(unknown.clone());
    let PropertyValue::ResourceReference(r) = &v else { panic!("not a reference: {v:?}") };
    assert_eq!(r.id.as_deref(), Some(&PropertyValue::Computed));
    assert_eq!(r.package_version, "");
    // Encoded back with the engine's spelling of an unknown id: "".
    assert_eq!(to_value(&v), unknown);

    let component = sig_obj("5cf8f73096256a8f31e491e813e4eb8e", vec![("urn", s("urn:c"))]);
    let v = round_trip(component.clone());
    let PropertyValue::ResourceReference(r) = &v else { panic!("not a reference: {v:?}") };
    assert_eq!(r.id, None);
    assert_eq!(to_value(&v), component);
}

#[test]
fn output_value_round_trips() {
    let wire = sig_obj(
        "d0e6a833031e9bbcd3f4e8bde6ca49a4",
        vec![("value", n(7.0)), ("secret", b(true)), ("dependencies", list(vec![s("urn:a"), s("urn:b")]))],
    );
    let v = round_trip(wire.clone());
    assert_eq!(
        v,
        PropertyValue::Output(OutputValue {
            value: Some(Box::new(PropertyValue::Number(7.0))),
            secret: true,
            dependencies: vec!["urn:a".into(), "urn:b".into()],
        })
    );
    assert_eq!(to_value(&v), wire);
}

#[test]
fn output_value_without_value_is_unknown() {
    let v = round_trip(sig_obj("d0e6a833031e9bbcd3f4e8bde6ca49a4", vec![]));
    assert_eq!(v, PropertyValue::Output(OutputValue::default()));
    assert!(v.is_computed());
    // A sentinel in the value slot means the same thing.
    let v = decode_one(sig_obj(
        "d0e6a833031e9bbcd3f4e8bde6ca49a4",
        vec![("value", s("04da6b54-80e4-46f7-96ec-b56ff0331ba9"))],
    ))
    .unwrap();
    assert_eq!(v, PropertyValue::Output(OutputValue::default()));
}

#[test]
fn assets_of_each_source_round_trip() {
    let cases = [
        ("text", AssetSource::Text("hello".into())),
        ("path", AssetSource::Path("./cfg.yaml".into())),
        ("uri", AssetSource::Uri("https://example.com/a".into())),
    ];
    for (field, source) in cases {
        let value = match &source {
            AssetSource::Text(x) | AssetSource::Path(x) | AssetSource::Uri(x) => x.clone(),
        };
        let wire = sig_obj("c44067f5952c0a294b673a41bacd8c17", vec![("hash", s("abc123")), (field, s(&value))]);
        let v = round_trip(wire.clone());
        assert_eq!(v, PropertyValue::Asset(Asset { hash: Some("abc123".into()), source: Some(source) }));
        assert_eq!(to_value(&v), wire, "{field}");
    }
}

#[test]
fn hash_only_asset_keeps_no_source() {
    let v = round_trip(sig_obj("c44067f5952c0a294b673a41bacd8c17", vec![("hash", s("ff"))]));
    assert_eq!(v, PropertyValue::Asset(Asset { hash: Some("ff".into()), source: None }));
}

#[test]
fn archives_of_each_source_round_trip() {
    let asset = sig_obj("c44067f5952c0a294b673a41bacd8c17", vec![("text", s("x"))]);
    let nested = sig_obj("0def7320c3a5731c473e5ecbe6d01bc7", vec![("path", s("dir"))]);
    let wire = sig_obj(
        "0def7320c3a5731c473e5ecbe6d01bc7",
        vec![("hash", s("aa")), ("assets", obj(vec![("a.txt", asset), ("sub", nested)]))],
    );
    let v = round_trip(wire.clone());
    let members = BTreeMap::from([
        ("a.txt".to_string(), AssetOrArchive::Asset(Asset::text("x"))),
        ("sub".to_string(), AssetOrArchive::Archive(Archive::path("dir"))),
    ]);
    assert_eq!(
        v,
        PropertyValue::Archive(Archive { hash: Some("aa".into()), source: Some(ArchiveSource::Assets(members)) })
    );
    assert_eq!(to_value(&v), wire);

    for (field, source) in
        [("path", ArchiveSource::Path("b.tgz".into())), ("uri", ArchiveSource::Uri("https://e/b.zip".into()))]
    {
        let value = match &source {
            ArchiveSource::Path(x) | ArchiveSource::Uri(x) => x.clone(),
            ArchiveSource::Assets(_) => unreachable!(),
        };
        let wire = sig_obj("0def7320c3a5731c473e5ecbe6d01bc7", vec![(field, s(&value))]);
        let v = round_trip(wire.clone());
        assert_eq!(v, PropertyValue::Archive(Archive { hash: None, source: Some(source) }));
        assert_eq!(to_value(&v), wire);
    }
}

#[test]
fn archive_member_that_is_not_an_asset_is_an_error() {
    let wire = sig_obj("0def7320c3a5731c473e5ecbe6d01bc7", vec![("assets", obj(vec![("x", s("plain"))]))]);
    let err = from_struct(&strct(vec![("bundle", wire)])).unwrap_err();
    assert!(matches!(&err, ValueError::Malformed { kind: "archive", .. }), "{err:?}");
    assert_eq!(err.path(), &path("bundle"));
}

#[test]
fn byte_string_decodes_to_utf8_string() {
    // "héllo" in UTF-8, base64.
    let v = decode_one(sig_obj("803fd3297a5875dc03ca845dda5d2a98", vec![("value", s("aMOpbGxv"))])).unwrap();
    assert_eq!(v, pstr("héllo"));
}

#[test]
fn byte_string_that_is_not_utf8_is_an_error() {
    // 0xff 0xfe
    let wire =
        strct(vec![("blob", list(vec![sig_obj("803fd3297a5875dc03ca845dda5d2a98", vec![("value", s("//4="))])]))]);
    let err = from_struct(&wire).unwrap_err();
    assert_eq!(err, ValueError::NonUtf8Bytes { path: path("blob[0]") });
    assert_eq!(err.to_string(), "blob[0]: byte string is not valid UTF-8");
}

#[test]
fn base64_decoder() {
    assert_eq!(decode_base64("").unwrap(), b"");
    assert_eq!(decode_base64("Zg==").unwrap(), b"f");
    assert_eq!(decode_base64("Zm8=").unwrap(), b"fo");
    assert_eq!(decode_base64("Zm9v").unwrap(), b"foo");
    assert_eq!(decode_base64("Zm9vYg").unwrap(), b"foob");
    assert_eq!(decode_base64("+/+/").unwrap(), vec![0xfb, 0xff, 0xbf]);
    assert!(decode_base64("Z").is_none());
    assert!(decode_base64("Zm9v!").is_none());
    assert!(decode_base64("Zg===").is_none());
}

#[test]
fn unknown_signature_is_an_error_naming_it_and_where() {
    let wire = strct(vec![(
        "machine",
        obj(vec![("cfg", sig_obj("00000000000000000000000000000bad", vec![("value", s("x"))]))]),
    )]);
    let err = from_struct(&wire).unwrap_err();
    assert_eq!(
        err,
        ValueError::UnknownSignature {
            path: path("machine.cfg"),
            signature: "00000000000000000000000000000bad".into()
        }
    );
    let msg = err.to_string();
    assert!(msg.contains("00000000000000000000000000000bad") && msg.starts_with("machine.cfg:"), "{msg}");
}

#[test]
fn non_string_signature_is_an_error() {
    let err = decode_one(obj(vec![(SIG, n(1.0))])).unwrap_err();
    assert!(matches!(err, ValueError::UnknownSignature { .. }), "{err:?}");
}

#[test]
fn malformed_signature_objects_are_errors() {
    let cases = [
        (sig_obj("1b47061264138c4ac30d75fd1eb44270", vec![]), "secret"),
        (sig_obj("5cf8f73096256a8f31e491e813e4eb8e", vec![("id", s("1"))]), "resource reference"),
        (sig_obj("5cf8f73096256a8f31e491e813e4eb8e", vec![("urn", s("u")), ("id", n(1.0))]), "resource reference"),
        (sig_obj("d0e6a833031e9bbcd3f4e8bde6ca49a4", vec![("secret", s("yes"))]), "output value"),
        (sig_obj("d0e6a833031e9bbcd3f4e8bde6ca49a4", vec![("dependencies", list(vec![n(1.0)]))]), "output value"),
        (sig_obj("c44067f5952c0a294b673a41bacd8c17", vec![("text", n(1.0))]), "asset"),
        (sig_obj("803fd3297a5875dc03ca845dda5d2a98", vec![("value", s("!!"))]), "byte string"),
    ];
    for (wire, expected_kind) in cases {
        match decode_one(wire) {
            Err(ValueError::Malformed { kind, .. }) => assert_eq!(kind, expected_kind),
            other => panic!("expected a malformed {expected_kind}, got {other:?}"),
        }
    }
}

#[test]
fn signature_key_inside_plain_object_is_encoded_as_is() {
    // Objects we build never carry the signature key, but the encoder must not invent one.
    let m = map(vec![("a", PropertyValue::Object(map(vec![("b", pstr("c"))])))]);
    let st = to_struct(&m);
    let Some(Kind::StructValue(inner)) = &st.fields["a"].kind else { panic!("not a struct") };
    assert!(!inner.fields.contains_key(SIG));
    assert_eq!(from_struct(&st).unwrap(), m);
}
