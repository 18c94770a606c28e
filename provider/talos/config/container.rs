//! A multi-document machine configuration, as machinery's `config/container`
//! and `configloader` handle it.
//!
//! Owns: [`Document`] and [`Config`]; loading YAML text into documents (kind
//! detection, duplicate detection, strict decoding, machinery's error
//! wording), the container rules (one v1alpha1 document, first when printed;
//! no duplicate or conflicting documents) and printing (`---` between
//! documents).
//! Must not: apply patches (see `patch`) or generate configurations.

use super::decode::{decode, DecodeError};
use super::encode::encode;
use super::schema::{DocumentSpec, Schema, TypeExpr};
use super::value::{field_index, shape, Shape, Value};
use super::yaml_read::{parse_documents, Raw, RawDocument};
use crate::talos::goyaml::{emit, Flavour};

/// One typed document.
#[derive(Debug, Clone)]
pub struct Document {
    /// Its registered kind.
    pub spec: &'static DocumentSpec,
    /// Its value (a struct of the kind's Go type).
    pub value: Value,
}

/// A configuration: the v1alpha1 document (if any) first, then the others in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The documents.
    pub docs: Vec<Document>,
}

impl PartialEq for Document {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.spec, other.spec) && self.value == other.value
    }
}

impl Document {
    /// An empty document of `kind` (its `apiVersion`/`kind` set as machinery's constructors do).
    pub fn new(kind: &str) -> Self {
        let spec = Schema::get().document(kind).unwrap_or_else(|| panic!("unknown document kind {kind}"));
        let mut value = super::value::zero(&TypeExpr::named(&spec.type_name));
        if spec.kind != "v1alpha1" {
            let meta = vec![Value::Str(spec.api_version.clone()), Value::Str(spec.kind.clone())];
            *value.field_mut(&[0]) = Value::Struct(meta);
        }
        Document { spec, value }
    }

    /// The document's Go type.
    pub fn ty(&self) -> TypeExpr {
        TypeExpr::named(&self.spec.type_name)
    }

    /// The `name` of a named document.
    pub fn name(&self) -> Option<&str> {
        if !self.spec.named {
            return None;
        }
        let ty = self.ty();
        let Shape::Struct { spec, .. } = shape(&ty) else { return None };
        let i = field_index(spec, "name")?;
        self.value.field(&[i]).as_str()
    }

    /// `apiVersion/kind[/name]`, the identity strategic merge matches on.
    pub fn id(&self) -> String {
        let mut id = format!("{}/{}", self.spec.api_version, self.spec.kind);
        if let Some(name) = self.name() {
            id.push('/');
            id.push_str(name);
        }
        id
    }

    /// The document printed alone.
    pub fn to_yaml(&self) -> String {
        emit(&encode(&self.value, &self.ty()), Flavour::YamlV4)
    }
}

impl Config {
    /// Builds a container, checking machinery's rules.
    pub fn new(docs: Vec<Document>) -> Result<Config, String> {
        let mut v1alpha1 = None;
        let mut others: Vec<Document> = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        let mut conflicting: Vec<(String, String)> = Vec::new();
        for doc in docs {
            if doc.spec.kind == "v1alpha1" {
                if v1alpha1.is_some() {
                    return Err("duplicate v1alpha1.Config".into());
                }
                v1alpha1 = Some(doc);
                continue;
            }
            let name = doc.name().unwrap_or_default().to_owned();
            let id = format!("{}/{name}", doc.spec.kind);
            if seen.contains(&id) {
                return Err(format!("duplicate document: {id}"));
            }
            seen.push(id.clone());
            if let Some((_, owner)) = conflicting.iter().rev().find(|(c, _)| *c == id) {
                return Err(format!("conflicting documents: {owner} and {id}"));
            }
            for kind in &doc.spec.conflicts {
                let cid = format!("{kind}/{name}");
                if seen.contains(&cid) {
                    return Err(format!("conflicting documents: {cid} and {id}"));
                }
                conflicting.push((cid, id.clone()));
            }
            others.push(doc);
        }
        Ok(Config { docs: v1alpha1.into_iter().chain(others).collect() })
    }

    /// Loads a configuration the way `configloader.NewFromBytes` does (strict).
    pub fn from_yaml(text: &str) -> Result<Config, String> {
        let docs = load_documents(text, false)?.into_iter().map(|d| match d {
            Loaded::Doc(d) => d,
            Loaded::Delete(_) => unreachable!("deletes are off"),
        });
        let docs: Vec<Document> = docs.collect();
        if docs.is_empty() {
            return Err("config not found".into());
        }
        Config::new(docs)
    }

    /// Prints the configuration as machinery's encoder does with comments off.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        for doc in &self.docs {
            if !out.is_empty() {
                out.push_str("---\n");
            }
            out.push_str(&doc.to_yaml());
        }
        out
    }

    /// The document of `kind` (and `name`).
    pub fn find(&self, kind: &str, name: Option<&str>) -> Option<&Document> {
        self.docs.iter().find(|d| d.spec.kind == kind && d.name() == name)
    }
}

/// A document from a patch: a document to merge, or a `$patch: delete`.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded {
    /// A document.
    Doc(Document),
    /// A delete selector.
    Delete(super::delete::Selector),
}

/// Parses documents as machinery's decoder does; with `allow_delete`,
/// `$patch: delete` entries become selectors (listed before the rest of their document).
pub fn load_documents(text: &str, allow_delete: bool) -> Result<Vec<Loaded>, String> {
    let raw_docs = parse_documents(text).map_err(|e| format!("decode error: {e}"))?;
    let mut out = Vec::new();
    let mut ids: Vec<(String, String, String)> = Vec::new();
    for (i, RawDocument { line, root }) in raw_docs.into_iter().enumerate() {
        let Some(mut root) = root else { continue };
        if allow_delete {
            let (selectors, keep) = super::delete::extract(&mut root, i)
                .map_err(|e| format!("error processing patch delete statements at line {line}: {e}"))?;
            out.extend(selectors.into_iter().map(Loaded::Delete));
            if !keep {
                continue;
            }
        }
        let Raw::Map(_) = &root else {
            return Err(format!("expected a YAML document at line {line}"));
        };
        let text_of = |k: &str| root.get(k).and_then(Raw::as_text).unwrap_or_default().to_owned();
        let api_version = text_of("apiVersion");
        let kind = text_of("kind");
        let id_kind = if kind.is_empty() { "v1alpha1".to_owned() } else { kind.clone() };
        let id = (api_version.clone(), id_kind.clone(), text_of("name"));
        if ids.contains(&id) {
            return Err(format!("duplicate document {}/{}/{} is not allowed (line {line})", id.0, id.1, id.2));
        }
        ids.push(id.clone());
        let doc = decode_document(&root, &api_version, &kind)
            .map_err(|e| format!("error decoding document {}/{}/{} (line {line}): {e}", id.0, id.1, id.2))?;
        out.push(Loaded::Doc(doc));
    }
    Ok(out)
}

fn decode_document(root: &Raw, api_version: &str, kind: &str) -> Result<Document, String> {
    // machinery reads the keys in order: a legacy key means v1alpha1 unless an
    // apiVersion follows it.
    let mut version = String::new();
    if let Raw::Map(entries) = root {
        for (k, v) in entries {
            match k.as_str() {
                "apiVersion" => version = v.as_text().unwrap_or_default().to_owned(),
                "machine" | "cluster" | "debug" | "persist" => version = "v1alpha1".to_owned(),
                _ => {}
            }
        }
    }
    let _ = api_version;
    let spec = match (version.as_str(), kind) {
        ("v1alpha1", "") => Schema::get().v1alpha1(),
        (_, "") => return Err("missing kind".into()),
        (v, k) => Schema::get()
            .document(k)
            .filter(|d| d.kind != "v1alpha1" && d.api_version == v)
            .ok_or_else(|| format!("{k:?} {v:?}: not registered"))?,
    };
    let value = decode(root, &TypeExpr::named(&spec.type_name)).map_err(|DecodeError(e)| {
        if e.starts_with("yaml:") {
            format!("error decoding {kind} to *{}: {e}", spec.type_name)
        } else {
            e
        }
    })?;
    Ok(Document { spec, value })
}
