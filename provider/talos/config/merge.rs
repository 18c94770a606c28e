//! Strategic merge of two typed values, as machinery's `config/merge.Merge`.
//!
//! Owns: the merge rules: scalars overwrite unless the right side is zero
//! (a `bool` always overwrites; through a pointer anything does), pointers
//! and interfaces fill or recurse, slices append (replace for fields tagged
//! `merge:"replace"` and for byte slices), maps merge key by key, structs
//! field by field, and the list types with their own merge:
//! `machine.network.interfaces` by `interface` or equal `deviceSelector`,
//! VLANs by `vlanId`, admission plugins by `name`, extension config files by
//! `mountPath`; sizes and CEL expressions are replaced.
//! Must not: know about documents (see `container`).

use super::schema::{Schema, TypeExpr};
use super::value::{shape, Dyn, Shape, Value};

/// Merges `right` into `left` (both values of `ty`).
pub fn merge(left: &mut Value, right: &Value, ty: &TypeExpr) -> Result<(), String> {
    merge_value(left, right, ty, false, false)
}

fn merge_value(left: &mut Value, right: &Value, ty: &TypeExpr, replace: bool, overwrite: bool) -> Result<(), String> {
    match shape(ty) {
        Shape::Ptr(elem) => match (&mut *left, right) {
            (_, Value::Nil) => Ok(()),
            (Value::Nil, r) => {
                *left = r.clone();
                Ok(())
            }
            (Value::Ptr(l), Value::Ptr(r)) => merge_value(l, r, elem, replace, true),
            (l, r) => Err(format!("merge type mismatch left {l:?} right {r:?}")),
        },
        Shape::Any => match (&mut *left, right) {
            (_, Value::Nil) => Ok(()),
            (Value::Nil, r) => {
                *left = r.clone();
                Ok(())
            }
            (Value::Dyn(l), Value::Dyn(r)) => merge_dyn(l, r, replace, true),
            (l, r) => Err(format!("merge type mismatch left {l:?} right {r:?}")),
        },
        Shape::Slice { elem, merger: Some(list) } => match right {
            Value::Nil => Ok(()),
            Value::Slice(items) => merge_list(list, left, items, elem),
            r => Err(format!("merge type mismatch right {r:?}")),
        },
        Shape::Slice { .. } | Shape::InlineManifests { .. } => {
            match (&mut *left, right) {
                (_, Value::Nil) => {}
                (l, r) if replace => *l = r.clone(),
                (Value::Nil, r) => *left = r.clone(),
                (Value::Slice(l), Value::Slice(r)) => l.extend(r.iter().cloned()),
                (l, r) => return Err(format!("merge type mismatch left {l:?} right {r:?}")),
            }
            Ok(())
        }
        Shape::Base64 => {
            if !matches!(right, Value::Nil) {
                *left = right.clone();
            }
            Ok(())
        }
        Shape::Map(elem) => {
            let Value::Map(entries) = right else { return Ok(()) };
            if replace {
                *left = right.clone();
                return Ok(());
            }
            if matches!(left, Value::Nil) {
                *left = Value::Map(Vec::new());
            }
            let Value::Map(left_entries) = left else { return Err("merge type mismatch on a map".into()) };
            for (k, rv) in entries {
                match left_entries.iter_mut().find(|(lk, _)| lk == k) {
                    Some((_, lv)) if !nil_or_zero(lv) => {
                        merge_value(lv, rv, elem, false, false).map_err(|e| format!("merge map key [{k}]: {e}"))?;
                    }
                    Some((_, lv)) => *lv = rv.clone(),
                    None => left_entries.push((k.clone(), rv.clone())),
                }
            }
            Ok(())
        }
        Shape::Struct { name, spec } => {
            if replace {
                if !reflect_is_zero(right, ty) {
                    *left = right.clone();
                }
                return Ok(());
            }
            let (Value::Struct(l), Value::Struct(r)) = (&mut *left, right) else {
                return Err(format!("merge type mismatch on {name}"));
            };
            for ((f, lv), rv) in spec.fields.iter().zip(l.iter_mut()).zip(r) {
                merge_value(lv, rv, &f.ty, f.replace, false)
                    .map_err(|e| format!("merge field {name}.{}: {e}", f.yaml))?;
            }
            Ok(())
        }
        Shape::Pem { .. } => {
            // A struct of byte slices: each replaced when set on the right.
            let (Value::Struct(l), Value::Struct(r)) = (&mut *left, right) else {
                if !matches!(right, Value::Nil) {
                    *left = right.clone();
                }
                return Ok(());
            };
            for (lv, rv) in l.iter_mut().zip(r) {
                if !matches!(rv, Value::Nil) {
                    *lv = rv.clone();
                }
            }
            Ok(())
        }
        Shape::Text { name } => {
            let spec = Schema::get().named(name);
            if spec.merger {
                // ByteSize and cel.Expression replace themselves unconditionally.
                *left = right.clone();
            } else if replace || !is_netip(name) {
                if !is_empty_text(right) {
                    *left = right.clone();
                }
            } else {
                return Err(format!(
                    "merge not possible: {name} holds unexported fields (machinery's merge cannot set them)"
                ));
            }
            Ok(())
        }
        Shape::Url | Shape::PortRange | Shape::Unsupported { .. } => {
            if !is_empty_text(right) {
                *left = right.clone();
            }
            Ok(())
        }
        Shape::Str
        | Shape::Bool
        | Shape::Int { .. }
        | Shape::Uint { .. }
        | Shape::Duration
        | Shape::Enum { .. }
        | Shape::FileMode => {
            let is_bool = matches!(shape(ty), Shape::Bool);
            if !is_bool && scalar_is_zero(right) && !overwrite {
                return Ok(());
            }
            *left = right.clone();
            Ok(())
        }
    }
}

/// The address types backed by `net/netip` (private fields all the way down).
fn is_netip(name: &str) -> bool {
    name.starts_with("netip.") || matches!(name, "network.Addr" | "network.AddrPort" | "network.Prefix")
}

fn is_empty_text(v: &Value) -> bool {
    matches!(v, Value::Nil) || matches!(v, Value::Str(s) if s.is_empty())
}

fn scalar_is_zero(v: &Value) -> bool {
    match v {
        Value::Str(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Int(i) => *i == 0,
        Value::Uint(u) => *u == 0,
        Value::Nil => true,
        _ => false,
    }
}

/// machinery's `isNilOrZero` for a map value: nil pointers, slices, maps, interfaces.
fn nil_or_zero(v: &Value) -> bool {
    matches!(v, Value::Nil)
}

/// Go's `reflect.Value.IsZero` (nil slices and maps only; structs field by field).
fn reflect_is_zero(v: &Value, ty: &TypeExpr) -> bool {
    match (shape(ty), v) {
        (_, Value::Nil) => true,
        (Shape::Struct { spec, .. }, Value::Struct(fields)) => {
            spec.fields.iter().zip(fields).all(|(f, v)| reflect_is_zero(v, &f.ty))
        }
        (Shape::Pem { .. }, Value::Struct(fields)) => fields.iter().all(|f| matches!(f, Value::Nil)),
        (_, v) => scalar_is_zero(v),
    }
}

/// A list type with its own merge: match an existing element or append.
fn merge_list(list: &str, left: &mut Value, right: &[Value], elem: &TypeExpr) -> Result<(), String> {
    if matches!(left, Value::Nil) {
        *left = Value::Slice(Vec::new());
    }
    let Value::Slice(items) = left else { return Err(format!("unexpected type for {list} merge")) };
    let (struct_ty, key): (&TypeExpr, &str) = match (list, elem) {
        ("v1alpha1.NetworkDeviceList", TypeExpr::Ptr { e }) => (e, "interface"),
        ("v1alpha1.VlanList", TypeExpr::Ptr { e }) => (e, "vlanId"),
        ("v1alpha1.AdmissionPluginConfigList", TypeExpr::Ptr { e }) => (e, "name"),
        ("extensions.ConfigFileList", e) => (e, "mountPath"),
        _ => return Err(format!("no merge rule for {list}")),
    };
    let Shape::Struct { spec, .. } = shape(struct_ty) else { return Err(format!("{list} holds non-structs")) };
    let key_index = spec.fields.iter().position(|f| f.yaml == key).expect("merge key in schema");
    let selector_index = spec.fields.iter().position(|f| f.yaml == "deviceSelector");
    for device in right {
        let r = device.deref();
        let Value::Struct(rf) = r else { continue };
        let existing = if list == "v1alpha1.NetworkDeviceList" {
            let name = rf[key_index].as_str().unwrap_or_default();
            let selector = selector_index.map(|i| &rf[i]);
            if !name.is_empty() {
                items.iter_mut().find(|d| field_of(d, key_index).as_str() == Some(name))
            } else if let Some(sel) = selector.filter(|s| !matches!(s, Value::Nil)) {
                let i = selector_index.expect("selector present");
                items.iter_mut().find(|d| selectors_equal(field_of(d, i), sel))
            } else {
                None
            }
        } else {
            items.iter_mut().find(|d| field_of(d, key_index) == &rf[key_index])
        };
        match existing {
            Some(target) => merge_value(target, device, elem, false, false)?,
            None => items.push(device.clone()),
        }
    }
    Ok(())
}

fn field_of(v: &Value, i: usize) -> &Value {
    match v.deref() {
        Value::Struct(fields) => &fields[i],
        _ => &Value::Nil,
    }
}

/// Go's `*a == *b` on `NetworkDeviceSelector`: strings compare by value, the
/// `physical` pointer by address, so a set `physical` never matches another.
fn selectors_equal(a: &Value, b: &Value) -> bool {
    match (a.deref(), b.deref()) {
        (Value::Struct(x), Value::Struct(y)) => x.iter().zip(y).all(|(l, r)| match (l, r) {
            (Value::Ptr(_), _) | (_, Value::Ptr(_)) => false,
            (l, r) => l == r,
        }),
        _ => false,
    }
}

/// Merges two values held in `any` (the inner step of map[string]any merges).
fn merge_dyn(left: &mut Dyn, right: &Dyn, replace: bool, overwrite: bool) -> Result<(), String> {
    match (&mut *left, right) {
        (_, Dyn::Null) => Ok(()),
        (Dyn::Map(l), Dyn::Map(r)) => {
            if replace {
                *l = r.clone();
                return Ok(());
            }
            for (k, rv) in r {
                match l.iter_mut().find(|(lk, _)| lk == k) {
                    Some((_, lv)) if !matches!(lv, Dyn::Null) => {
                        if std::mem::discriminant(lv) != std::mem::discriminant(rv) {
                            return Err(format!("merge type mismatch left {} right {}", dyn_type(lv), dyn_type(rv)));
                        }
                        merge_dyn(lv, rv, false, false).map_err(|e| format!("merge map key [{k}]: {e}"))?;
                    }
                    Some((_, lv)) => *lv = rv.clone(),
                    None => l.push((k.clone(), rv.clone())),
                }
            }
            Ok(())
        }
        (Dyn::Seq(l), Dyn::Seq(r)) => {
            if replace {
                *l = r.clone();
            } else {
                l.extend(r.iter().cloned());
            }
            Ok(())
        }
        (l, r) if std::mem::discriminant(&*l) == std::mem::discriminant(r) => {
            let zero = matches!(r, Dyn::Int(0) | Dyn::Uint(0))
                || matches!(r, Dyn::Str(s) if s.is_empty())
                || matches!(r, Dyn::Float(f) if *f == 0.0);
            if !zero || overwrite || matches!(r, Dyn::Bool(_)) {
                *l = r.clone();
            }
            Ok(())
        }
        (l, r) => Err(format!("merge type mismatch left {} right {}", dyn_type(l), dyn_type(r))),
    }
}

fn dyn_type(d: &Dyn) -> &'static str {
    match d {
        Dyn::Null => "<nil>",
        Dyn::Bool(_) => "bool",
        Dyn::Int(_) => "int",
        Dyn::Uint(_) => "uint64",
        Dyn::Float(_) => "float64",
        Dyn::Str(_) => "string",
        Dyn::Seq(_) => "[]interface {}",
        Dyn::Map(_) => "map[string]interface {}",
    }
}
