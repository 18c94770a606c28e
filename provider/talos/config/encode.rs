//! Encoding typed values for printing, as go-yaml's `Marshal` walks
//! machinery's structs.
//!
//! Owns: field order (declaration order, inline structs spliced in place,
//! inline maps last with sorted keys), `omitempty` (yaml's `isZero`), nil
//! collections (`[]`, `{}`, `null`), sorted map keys, and the text each custom
//! type marshals to (enum names, durations, octal file modes, base64).
//! Must not: decide quoting or layout (that is `yaml_write`).

use super::goscalar::{format_duration, format_float, yaml_key_order};
use super::schema::{TypeExpr, TypeSpec};
use super::value::{is_zero, shape, Dyn, Shape, Value};
use super::yaml_write::Out;

/// The printable form of `v`, a value of `ty`.
pub fn encode(v: &Value, ty: &TypeExpr) -> Out {
    let sh = shape(ty);
    match (sh, v) {
        (Shape::Ptr(elem), Value::Ptr(inner)) => encode(inner, elem),
        (Shape::Ptr(_) | Shape::Any, Value::Nil) => Out::Plain("null".to_owned()),
        (Shape::Slice { .. } | Shape::InlineManifests { .. }, Value::Nil) => Out::Seq(Vec::new()),
        (Shape::Map(_), Value::Nil) => Out::Map(Vec::new()),
        (Shape::Base64 | Shape::Text { .. }, Value::Nil) => Out::Str(String::new()),
        (Shape::Slice { elem, .. } | Shape::InlineManifests { elem }, Value::Slice(items)) => {
            Out::Seq(items.iter().map(|i| encode(i, elem)).collect())
        }
        (Shape::Map(elem), Value::Map(entries)) => {
            let mut out: Vec<(String, Out)> = entries.iter().map(|(k, v)| (k.clone(), encode(v, elem))).collect();
            out.sort_by(|a, b| yaml_key_order(&a.0, &b.0));
            Out::Map(out)
        }
        (Shape::Struct { spec, .. }, Value::Struct(fields)) => {
            let mut out = Vec::new();
            struct_entries(spec, fields, &mut out);
            Out::Map(out)
        }
        (Shape::Pem { fields: names }, Value::Struct(fields)) => Out::Map(
            names
                .iter()
                .zip(fields)
                .map(|(n, f)| ((*n).to_owned(), Out::Str(f.as_str().unwrap_or_default().to_owned())))
                .collect(),
        ),
        (_, Value::Dyn(d)) => dynamic(d),
        (Shape::Duration, Value::Int(ns)) => Out::Str(format_duration(*ns)),
        (Shape::Enum { names, .. }, Value::Int(i)) => Out::Str(names[*i as usize].clone()),
        (Shape::Enum { names, .. }, Value::Uint(i)) => Out::Str(names[*i as usize].clone()),
        (Shape::FileMode, Value::Uint(mode)) => Out::Plain(format!("0o{mode:o}")),
        (Shape::PortRange, Value::Str(s)) if !s.contains('-') => {
            Out::Plain(if s.is_empty() { "0" } else { s }.to_owned())
        }
        (_, Value::Str(s)) => Out::Str(s.clone()),
        (_, Value::Bool(b)) => Out::Plain(b.to_string()),
        (_, Value::Int(i)) => Out::Plain(i.to_string()),
        (_, Value::Uint(u)) => Out::Plain(u.to_string()),
        (sh, v) => panic!("value {v:?} does not fit {sh:?}"),
    }
}

/// The entries of a struct, inline structs and maps included.
fn struct_entries(spec: &TypeSpec, fields: &[Value], out: &mut Vec<(String, Out)>) {
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
        let mut extra: Vec<(String, Out)> = entries
            .iter()
            .filter(|(k, _)| !out.iter().any(|(known, _)| known == k))
            .map(|(k, v)| (k.clone(), encode(v, elem)))
            .collect();
        extra.sort_by(|a, b| yaml_key_order(&a.0, &b.0));
        out.extend(extra);
    }
}

/// A value in an `any`.
pub fn dynamic(d: &Dyn) -> Out {
    match d {
        Dyn::Null => Out::Plain("null".to_owned()),
        Dyn::Bool(b) => Out::Plain(b.to_string()),
        Dyn::Int(i) => Out::Plain(i.to_string()),
        Dyn::Uint(u) => Out::Plain(u.to_string()),
        Dyn::Float(f) => Out::Plain(format_float(*f)),
        Dyn::Str(s) => Out::Str(s.clone()),
        Dyn::Seq(items) => Out::Seq(items.iter().map(dynamic).collect()),
        Dyn::Map(entries) => {
            let mut out: Vec<(String, Out)> = entries.iter().map(|(k, v)| (k.clone(), dynamic(v))).collect();
            out.sort_by(|a, b| yaml_key_order(&a.0, &b.0));
            Out::Map(out)
        }
    }
}
