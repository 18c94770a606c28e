//! Encoding typed values for printing, as go-yaml's `Marshal` walks
//! machinery's structs.
//!
//! Owns: field order (declaration order, inline structs spliced in place,
//! inline maps last with sorted keys), `omitempty` (yaml's `isZero`), nil
//! collections (`[]`, `{}`, `null`), sorted map keys, and the text each custom
//! type marshals to (enum names, durations, octal file modes, base64).
//! Must not: decide quoting or layout (that is [`goyaml`](crate::talos::goyaml)).

use super::goscalar::format_duration;
use super::schema::{TypeExpr, TypeSpec};
use super::value::{is_zero, shape, Dyn, Shape, Value};
use crate::talos::goyaml::{format_float, go_key_order, Node};

/// The printable form of `v`, a value of `ty`.
pub fn encode(v: &Value, ty: &TypeExpr) -> Node {
    let sh = shape(ty);
    match (sh, v) {
        (Shape::Ptr(elem), Value::Ptr(inner)) => encode(inner, elem),
        (Shape::Ptr(_) | Shape::Any, Value::Nil) => Node::Plain("null".to_owned()),
        (Shape::Slice { .. } | Shape::InlineManifests { .. }, Value::Nil) => Node::Seq(Vec::new()),
        (Shape::Map(_), Value::Nil) => Node::Map(Vec::new()),
        (Shape::Base64 | Shape::Text { .. }, Value::Nil) => Node::Str(String::new()),
        (Shape::Slice { elem, .. } | Shape::InlineManifests { elem }, Value::Slice(items)) => {
            Node::Seq(items.iter().map(|i| encode(i, elem)).collect())
        }
        (Shape::Map(elem), Value::Map(entries)) => {
            let mut out: Vec<(String, Node)> = entries.iter().map(|(k, v)| (k.clone(), encode(v, elem))).collect();
            out.sort_by(|a, b| go_key_order(&a.0, &b.0));
            Node::Map(out)
        }
        (Shape::Struct { spec, .. }, Value::Struct(fields)) => {
            let mut out = Vec::new();
            struct_entries(spec, fields, &mut out);
            Node::Map(out)
        }
        (Shape::Pem { fields: names }, Value::Struct(fields)) => Node::Map(
            names
                .iter()
                .zip(fields)
                .map(|(n, f)| ((*n).to_owned(), Node::Str(f.as_str().unwrap_or_default().to_owned())))
                .collect(),
        ),
        (_, Value::Dyn(d)) => dynamic(d),
        (Shape::Duration, Value::Int(ns)) => Node::Str(format_duration(*ns)),
        (Shape::Enum { names, .. }, Value::Int(i)) => Node::Str(names[*i as usize].clone()),
        (Shape::Enum { names, .. }, Value::Uint(i)) => Node::Str(names[*i as usize].clone()),
        (Shape::FileMode, Value::Uint(mode)) => Node::Plain(format!("0o{mode:o}")),
        (Shape::PortRange, Value::Str(s)) if !s.contains('-') => {
            Node::Plain(if s.is_empty() { "0" } else { s }.to_owned())
        }
        (_, Value::Str(s)) => Node::Str(s.clone()),
        (_, Value::Bool(b)) => Node::Plain(b.to_string()),
        (_, Value::Int(i)) => Node::Plain(i.to_string()),
        (_, Value::Uint(u)) => Node::Plain(u.to_string()),
        (sh, v) => panic!("value {v:?} does not fit {sh:?}"),
    }
}

/// The entries of a struct, inline structs and maps included.
fn struct_entries(spec: &TypeSpec, fields: &[Value], out: &mut Vec<(String, Node)>) {
    let mut inline_map = None;
    for (f, v) in spec.fields.iter().zip(fields) {
        if f.inline {
            match (shape(&f.ty), v) {
                (Shape::Struct { spec: inner, .. }, Value::Struct(inner_fields)) => {
                    struct_entries(inner, inner_fields, out);
                }
                (Shape::Map(elem), v) => inline_map = Some((elem, v)),
                (sh, _) => panic!("unsupported inline field {sh:?}"),
            }
            continue;
        }
        if f.omitempty && is_zero(v, &f.ty) {
            continue;
        }
        out.push((f.yaml.clone(), encode(v, &f.ty)));
    }
    if let Some((elem, Value::Map(entries))) = inline_map {
        let mut extra: Vec<(String, Node)> = entries
            .iter()
            .filter(|(k, _)| !out.iter().any(|(known, _)| known == k))
            .map(|(k, v)| (k.clone(), encode(v, elem)))
            .collect();
        extra.sort_by(|a, b| go_key_order(&a.0, &b.0));
        out.extend(extra);
    }
}

/// A value in an `any`.
pub fn dynamic(d: &Dyn) -> Node {
    match d {
        Dyn::Null => Node::Plain("null".to_owned()),
        Dyn::Bool(b) => Node::Plain(b.to_string()),
        Dyn::Int(i) => Node::Plain(i.to_string()),
        Dyn::Uint(u) => Node::Plain(u.to_string()),
        Dyn::Float(f) => Node::Plain(format_float(*f)),
        Dyn::Str(s) => Node::Str(s.clone()),
        Dyn::Seq(items) => Node::Seq(items.iter().map(dynamic).collect()),
        Dyn::Map(entries) => {
            let mut out: Vec<(String, Node)> = entries.iter().map(|(k, v)| (k.clone(), dynamic(v))).collect();
            out.sort_by(|a, b| go_key_order(&a.0, &b.0));
            Node::Map(out)
        }
    }
}
