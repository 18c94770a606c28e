//! `$patch: delete` in strategic merge patches, as machinery's config
//! decoder handles it (`configloader/internal/decoder/delete.go`, `selector.go`).
//!
//! Owns: finding delete markers in a patch document (removing them, and any
//! mapping or list they leave empty), the [`Selector`]s they become (a whole
//! document, a key, a map entry, or a list element matched by one
//! `key: value`), and applying a selector to a typed document.
//! Must not: merge documents.

use super::container::Document;
use super::value::{shape, zero, Shape, Value};
use super::yaml_read::Raw;

/// What a `$patch: delete` removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// Keys from the document root; a list element is `[i]`.
    pub path: Vec<String>,
    /// `apiVersion` of the target document (empty for v1alpha1).
    pub api_version: String,
    /// `kind` of the target document (`v1alpha1` for the legacy document).
    pub kind: String,
    /// `name` of the target document, for named documents.
    pub name: Option<String>,
    /// For a list element: the key and value it is matched by.
    pub key: String,
    /// See `key`.
    pub value: String,
}

/// What applying a selector did.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// A key or element was removed.
    Removed,
    /// The whole document goes.
    DocumentDeleted,
}

impl Selector {
    /// `apiVersion/kind[/name]` of the document it targets.
    pub fn id(&self) -> String {
        match &self.name {
            Some(n) => format!("{}/{}/{n}", self.api_version, self.kind),
            None => format!("{}/{}", self.api_version, self.kind),
        }
    }

    /// Applies the delete to `doc` (which has the same id).
    pub fn apply(&self, doc: &mut Document) -> Result<Applied, String> {
        let path = self.path.join(".");
        let wrap = |e: String| match &self.name {
            Some(_) => format!("named patch delete: document {}/{}: {e}", doc.spec.api_version, doc.spec.kind),
            None => {
                format!("patch delete: path '{path}' in document '{}/{}': {e}", doc.spec.api_version, doc.spec.kind)
            }
        };
        if self.path.is_empty() {
            return Ok(Applied::DocumentDeleted);
        }
        let ty = doc.ty();
        delete_at(&mut doc.value, &ty, &self.path, &self.key, &self.value)
            .map_err(|e| wrap(format!("failed to delete path '{path}': {e}")))?;
        Ok(Applied::Removed)
    }
}

const LOOKUP_FAILED: &str = "lookup failed";

fn delete_at(
    v: &mut Value,
    ty: &super::schema::TypeExpr,
    path: &[String],
    key: &str,
    value: &str,
) -> Result<(), String> {
    let Some((search, rest)) = path.split_first() else { return Err("path is empty".into()) };
    match (shape(ty), v) {
        (Shape::Ptr(elem), Value::Ptr(inner)) => delete_at(inner, elem, path, key, value),
        (Shape::Ptr(_) | Shape::Any, _) => Err(LOOKUP_FAILED.into()),
        (Shape::Struct { spec, .. }, Value::Struct(fields)) => {
            // Only fields with a yaml name (inline structs are not searched).
            let Some(i) = spec.fields.iter().position(|f| !f.inline && f.yaml == *search) else {
                return Err(LOOKUP_FAILED.into());
            };
            if rest.is_empty() {
                fields[i] = zero(&spec.fields[i].ty);
                return Ok(());
            }
            delete_at(&mut fields[i], &spec.fields[i].ty, rest, key, value)
        }
        (Shape::Map(elem), Value::Map(entries)) => {
            let Some(pos) = entries.iter().position(|(k, _)| k == search) else { return Err(LOOKUP_FAILED.into()) };
            if rest.is_empty() {
                entries.remove(pos);
                return Ok(());
            }
            delete_at(&mut entries[pos].1, elem, rest, key, value)
        }
        (Shape::Slice { elem, .. } | Shape::InlineManifests { elem }, v) => {
            if !rest.is_empty() {
                return Err("searching for complex paths in slices is not supported".into());
            }
            if !search.starts_with('[') {
                return Err("searching for non-integer keys in slices is not supported".into());
            }
            let Value::Slice(items) = v else { return Err(LOOKUP_FAILED.into()) };
            let target = match shape(elem) {
                Shape::Ptr(inner) => inner,
                _ => elem,
            };
            let Shape::Struct { spec, .. } = shape(target) else { return Err(LOOKUP_FAILED.into()) };
            let Some(fi) = spec.fields.iter().position(|f| !f.inline && f.yaml == key) else {
                return Err(LOOKUP_FAILED.into());
            };
            let pos = items.iter().position(|item| match item.deref() {
                Value::Struct(fields) => matches!(&fields[fi], Value::Str(s) if s == value),
                _ => false,
            });
            match pos {
                Some(p) => {
                    items.remove(p);
                    Ok(())
                }
                None => Err(LOOKUP_FAILED.into()),
            }
        }
        _ => Err(LOOKUP_FAILED.into()),
    }
}

/// Finds and removes the `$patch: delete` entries of document `root`;
/// returns their selectors and whether anything is left to decode.
pub fn extract(root: &mut Raw, _doc_index: usize) -> Result<(Vec<Selector>, bool), String> {
    let snapshot = root.clone();
    let mut found = Vec::new();
    let mut path = Vec::new();
    let (_, delete_root) = process(Parent::Document, root, &mut path, &mut found)?;
    let mut selectors = Vec::new();
    for (path, parent, node) in found {
        let (key, value) = match parent {
            Parent::Sequence => sequence_key(&node, &path)?,
            _ => (String::new(), String::new()),
        };
        selectors.push(make_selector(&snapshot, path, key, value)?);
    }
    let keep = !delete_root && !is_empty_doc(root);
    Ok((selectors, keep))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Parent {
    Document,
    Mapping,
    Sequence,
}

type Found = (Vec<String>, Parent, Raw);

fn is_delete_marker(key: &str, v: &Raw) -> bool {
    key == "$patch" && matches!(v, Raw::Scalar(s) if s.text == "delete")
}

/// Returns (continue, delete this node).
fn process(
    parent: Parent,
    node: &mut Raw,
    path: &mut Vec<String>,
    found: &mut Vec<Found>,
) -> Result<(bool, bool), String> {
    match node {
        Raw::Map(entries) => {
            if entries.iter().any(|(k, v)| is_delete_marker(k, v)) {
                if parent != Parent::Sequence && path.iter().any(|p| p.starts_with('[')) {
                    return Err(format!("cannot delete an inner key in '{}'", path.join(".")));
                }
                found.push((path.clone(), parent, node.clone()));
                return Ok((true, true));
            }
            let mut i = 0;
            while i < entries.len() {
                path.push(entries[i].0.clone());
                let (_, delete) = process(Parent::Mapping, &mut entries[i].1, path, found)?;
                path.pop();
                if delete {
                    entries.remove(i);
                    if entries.is_empty() {
                        return Ok((true, true));
                    }
                } else {
                    i += 1;
                }
            }
            Ok((true, false))
        }
        Raw::Seq(items) => {
            let mut i = 0;
            while i < items.len() {
                path.push(format!("[{i}]"));
                let (_, delete) = process(Parent::Sequence, &mut items[i], path, found)?;
                path.pop();
                if delete {
                    items.remove(i);
                    if items.is_empty() {
                        return Ok((true, true));
                    }
                } else {
                    i += 1;
                }
            }
            Ok((true, false))
        }
        Raw::Scalar(_) => Ok((true, false)),
    }
}

fn sequence_key(node: &Raw, path: &[String]) -> Result<(String, String), String> {
    let Raw::Map(entries) = node else { return Err("expected a mapping node".into()) };
    entries
        .iter()
        .find(|(k, v)| !is_delete_marker(k, v))
        .map(|(k, v)| (k.clone(), v.as_text().unwrap_or_default().to_owned()))
        .ok_or_else(|| format!("no key:val found in sequence node for path {}", path.join(".")))
}

fn make_selector(root: &Raw, path: Vec<String>, key: String, value: String) -> Result<Selector, String> {
    let required = path.is_empty();
    let find = |k: &str| -> Result<String, String> {
        match root.get(k) {
            Some(v) => Ok(v.as_text().unwrap_or_default().to_owned()),
            None if required => Err(format!("missing {k} in document for which $patch: delete is used")),
            None => Ok(String::new()),
        }
    };
    let api_version = find("apiVersion")?;
    let mut kind = find("kind")?;
    match (kind.is_empty(), api_version.is_empty()) {
        (true, true) => kind = "v1alpha1".into(),
        (false, false) => {}
        _ => return Err(format!("kind and apiVersion must be both set for path {}", path.join("."))),
    }
    let name = root.get("name").and_then(Raw::as_text).filter(|n| !n.is_empty()).map(str::to_owned);
    Ok(Selector { path, api_version, kind, name, key, value })
}

/// machinery's `isEmptyDoc`: only scalar `version`, `kind` or `name` keys left.
fn is_empty_doc(root: &Raw) -> bool {
    let Raw::Map(entries) = root else { return false };
    entries.iter().all(|(k, v)| matches!(v, Raw::Scalar(_)) && matches!(k.as_str(), "version" | "kind" | "name"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::talos::config::yaml_read::parse_documents;

    fn extract_from(text: &str) -> (Vec<Selector>, bool, Raw) {
        let mut root = parse_documents(text).unwrap().remove(0).root.unwrap();
        let (sel, keep) = extract(&mut root, 0).unwrap();
        (sel, keep, root)
    }

    #[test]
    fn deleting_a_whole_document() {
        let (sel, keep, _) = extract_from("apiVersion: v1alpha1\nkind: HostnameConfig\n$patch: delete\n");
        assert!(!keep);
        assert_eq!(sel[0].id(), "v1alpha1/HostnameConfig");
        assert!(sel[0].path.is_empty());
    }

    #[test]
    fn deleting_a_list_element_prunes_emptied_parents() {
        let (sel, keep, _) =
            extract_from("machine:\n  network:\n    interfaces:\n      - interface: eth0\n        $patch: delete\n");
        assert!(!keep);
        assert_eq!(sel[0].path, ["machine", "network", "interfaces", "[0]"]);
        assert_eq!((sel[0].key.as_str(), sel[0].value.as_str()), ("interface", "eth0"));
        assert_eq!(sel[0].id(), "/v1alpha1");
    }

    #[test]
    fn a_delete_next_to_other_keys_keeps_them() {
        let (sel, keep, rest) =
            extract_from("machine:\n  network:\n    $patch: delete\n  install:\n    disk: /dev/vda\n");
        assert!(keep);
        assert_eq!(sel[0].path, ["machine", "network"]);
        assert!(rest.get("machine").unwrap().get("network").is_none());
    }

    #[test]
    fn inner_keys_of_list_elements_cannot_be_deleted() {
        let mut root = parse_documents(
            "machine:\n  kernel:\n    modules:\n      - name: x\n        y:\n          $patch: delete\n",
        )
        .unwrap()
        .remove(0)
        .root
        .unwrap();
        let err = extract(&mut root, 0).unwrap_err();
        assert!(err.contains("cannot delete an inner key in 'machine.kernel.modules.[0].y'"), "{err}");
    }
}
