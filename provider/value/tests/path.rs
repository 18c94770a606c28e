//! `PropertyPath`: display, parse, wildcard matching, lookups.

use super::super::{PathSegment, PropertyPath, PropertyValue};
use super::{map, path, pstr};

fn key(k: &str) -> PathSegment {
    PathSegment::Key(k.to_string())
}

#[test]
fn display_uses_dots_brackets_and_quotes() {
    let p = PropertyPath::root().key("disks").index(1).key("size");
    assert_eq!(p.to_string(), "disks[1].size");
    assert_eq!(PropertyPath::root().key("tags").key("a.b").to_string(), "tags[\"a.b\"]");
    assert_eq!(PropertyPath::root().key("a.b").key("c").to_string(), "[\"a.b\"].c");
    assert_eq!(PropertyPath::root().key("say \"hi\"").to_string(), "[\"say \\\"hi\\\"\"]");
    assert_eq!(PropertyPath::root().key("$ref_1").to_string(), "$ref_1");
    assert_eq!(PropertyPath::root().key("1abc").to_string(), "[\"1abc\"]");
    assert_eq!(PropertyPath::root().key("").to_string(), "[\"\"]");
    assert_eq!(PropertyPath::root().index(0).index(2).to_string(), "[0][2]");
    assert_eq!(PropertyPath::root().to_string(), "");
    let wild = PropertyPath::from_segments(vec![key("items"), PathSegment::Wildcard, key("name")]);
    assert_eq!(wild.to_string(), "items[*].name");
    assert_eq!(PropertyPath::from_segments(vec![PathSegment::Wildcard]).to_string(), "*");
}

#[test]
fn parse_accepts_the_engine_forms() {
    let cases: &[(&str, Vec<PathSegment>)] = &[
        ("root", vec![key("root")]),
        ("root.nested", vec![key("root"), key("nested")]),
        ("root[\"nested\"]", vec![key("root"), key("nested")]),
        (
            "root.array[0][1].nested",
            vec![key("root"), key("array"), PathSegment::Index(0), PathSegment::Index(1), key("nested")],
        ),
        ("root[\"key with \\\"escaped\\\" quotes\"]", vec![key("root"), key("key with \"escaped\" quotes")]),
        ("[\"root key with a .\"][100]", vec![key("root key with a ."), PathSegment::Index(100)]),
        ("root.array[*].field", vec![key("root"), key("array"), PathSegment::Wildcard, key("field")]),
        ("root.array[\"*\"].field", vec![key("root"), key("array"), PathSegment::Wildcard, key("field")]),
        ("root.*.field", vec![key("root"), PathSegment::Wildcard, key("field")]),
        ("*", vec![PathSegment::Wildcard]),
        ("tags.[\"x\"]", vec![key("tags"), key("x")]), // '.' before '[' tolerated
        ("tags[\"ünï\"]", vec![key("tags"), key("ünï")]),
        ("kebab-case.x", vec![key("kebab-case"), key("x")]),
        ("", vec![]),
    ];
    for (text, segments) in cases {
        assert_eq!(path(text).segments(), segments.as_slice(), "{text}");
    }
}

#[test]
fn parse_rejects_malformed_paths() {
    for bad in
        [".a", "a.", "a..b", "a[", "a[1", "a[x]", "a[-1]", "a[]", "a[\"x", "a[\"x\"", "]", "a[99999999999999999999999]"]
    {
        let err = bad.parse::<PropertyPath>();
        assert!(err.is_err(), "{bad:?} parsed as {:?}", err.unwrap());
    }
    let err = "a[x]".parse::<PropertyPath>().unwrap_err();
    assert_eq!(err.position, 2);
    assert!(err.to_string().contains("\"a[x]\""), "{err}");
}

#[test]
fn display_then_parse_is_identity() {
    let tricky = [
        PropertyPath::root().key("disks").index(1).key("size"),
        PropertyPath::root().key("tags").key("kubernetes.io/role"),
        PropertyPath::root().key("q\"uote").index(0).key("[x]"),
        PropertyPath::root().key("a b").key("").key("ok"),
        PropertyPath::from_segments(vec![PathSegment::Wildcard, key("a"), PathSegment::Wildcard]),
        PropertyPath::root().index(3),
    ];
    for p in tricky {
        let text = p.to_string();
        assert_eq!(path(&text), p, "{text}");
    }
}

#[test]
fn wildcard_matching() {
    let pattern = path("disks[*].size");
    assert!(pattern.matches(&path("disks[0].size")));
    assert!(pattern.matches(&path("disks[7].size")));
    assert!(!pattern.matches(&path("disks[0].pool")));
    assert!(!pattern.matches(&path("disks[0].size.x")));
    assert!(!pattern.matches(&path("disks")));
    assert!(pattern.matches_prefix(&path("disks[0].size.x")));
    assert!(!pattern.matches_prefix(&path("disks[0]")));

    assert!(path("tags.*").matches(&path("tags[\"a.b\"]")));
    assert!(path("*").matches_prefix(&path("anything[1].at.all")));
    assert!(path("").matches_prefix(&path("x")));
    // Keys never match indices.
    assert!(!path("a.0").matches(&path("a[0]")));
    assert!(!path("a[0]").matches(&path("a[\"0\"]")));
    // Literal prefix test does not treat wildcards specially.
    assert!(path("a").is_prefix_of(&path("a.b")));
    assert!(!path("*").is_prefix_of(&path("a")));
}

#[test]
fn parent_and_accessors() {
    let p = path("a.b[2]");
    assert_eq!(p.len(), 3);
    assert_eq!(p.parent(), Some(path("a.b")));
    assert_eq!(PropertyPath::root().parent(), None);
    assert!(p.parent().unwrap().parent().unwrap().parent().unwrap().is_empty());
    assert!(!p.has_wildcard() && path("a[*]").has_wildcard());
}

#[test]
fn get_looks_through_secrets() {
    let m = map(vec![(
        "disks",
        PropertyValue::secret(PropertyValue::Array(vec![
            PropertyValue::Object(map(vec![("size", PropertyValue::Number(1.0))])),
            PropertyValue::Object(map(vec![("size", PropertyValue::secret(pstr("2")))])),
        ])),
    )]);
    assert_eq!(path("disks[0].size").get(&m), Some(&PropertyValue::Number(1.0)));
    assert_eq!(path("disks[1].size").get(&m), Some(&PropertyValue::secret(pstr("2"))));
    assert_eq!(path("disks[2].size").get(&m), None);
    assert_eq!(path("disks.size").get(&m), None);
    assert_eq!(path("disks[*]").get(&m), None);
    assert_eq!(PropertyPath::root().get(&m), None);
}
