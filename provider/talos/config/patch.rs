//! Machine configuration patches, read and applied as machinery's
//! `configpatcher.LoadPatches` and `configpatcher.Apply` do.
//!
//! Owns: [`Patch`] (strategic merge documents, or RFC 6902 operations),
//! telling them apart the way Talos does (a Talos config document first, then
//! a JSON array of operations, then a YAML list of operations), grouping
//! consecutive JSON patches, applying patches in order (documents matched by
//! `apiVersion`/`kind`/`name` and merged, new documents appended, deletes
//! applied; JSON patches only on single-document configurations), and errors
//! that name the patch by its index.
//! Must not: read files: Talos reads a patch without spaces or line breaks
//! (or `@path`) as a file name; here that is an error asking for the contents.

use serde_json::Value as Json;

use super::container::{load_documents, Config, Loaded};
use super::delete::Applied;
use super::jsonpatch::{self, JsonPatchOp};
use super::merge::merge;
use super::yaml_read::{parse_documents, Raw};

/// One patch.
#[derive(Debug, Clone, PartialEq)]
pub enum Patch {
    /// Documents to merge (or add), and `$patch: delete` selectors, in order.
    StrategicMerge(Vec<Loaded>),
    /// RFC 6902 operations.
    JsonPatch(Vec<JsonPatchOp>),
}

/// Why a patch could not be read or applied. `first..=last` are the indexes
/// of the patches involved (consecutive JSON patches are applied as one, as Talos does).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", describe(*first, *last, kind))]
pub struct PatchError {
    /// First patch index.
    pub first: usize,
    /// Last patch index.
    pub last: usize,
    /// `strategic merge patch`, `JSON patch` or `patch`.
    pub kind: &'static str,
    /// What went wrong.
    pub message: String,
}

fn describe(first: usize, last: usize, kind: &str) -> String {
    if first == last {
        format!("config patch {first} ({kind})")
    } else {
        format!("config patches {first}-{last} ({kind}, applied together as Talos does)")
    }
}

impl Patch {
    /// Reads a patch as `configpatcher.LoadPatch` (after `LoadPatches`' file-name rule).
    pub fn parse(text: &str) -> Result<Patch, String> {
        if text.starts_with('@') || (!text.contains(['\n', ' ']) && !text.starts_with('[') && !text.starts_with('{')) {
            return Err(format!(
                "{text:?} is not a patch: Talos reads a patch without spaces or line breaks (or starting with @) as \
                 the name of a file to read, and this provider does not read files; pass the patch contents (YAML or JSON)"
            ));
        }
        let strategic_err = match load_documents(text, true) {
            Ok(docs) if !docs.is_empty() => return Ok(Patch::StrategicMerge(docs)),
            Ok(_) => "config not found".to_owned(),
            Err(e) => e,
        };
        let json_err = match serde_json::from_str::<Option<Vec<serde_json::Map<String, Json>>>>(text) {
            Ok(ops) => {
                return Ok(Patch::JsonPatch(ops.unwrap_or_default().iter().map(JsonPatchOp::from_object).collect()))
            }
            Err(e) => e.to_string(),
        };
        if let Some(ops) = yaml_operations(text) {
            return Ok(Patch::JsonPatch(ops));
        }
        if text.trim().starts_with('[') {
            Err(json_err)
        } else {
            Err(strategic_err)
        }
    }
}

/// A YAML list of operations (go-yaml into `[]map[string]any`), if the text is one.
fn yaml_operations(text: &str) -> Option<Vec<JsonPatchOp>> {
    let docs = parse_documents(text).ok()?;
    let Some(first) = docs.into_iter().next() else { return Some(Vec::new()) };
    match first.root {
        None => Some(Vec::new()),
        Some(Raw::Seq(items)) => items
            .iter()
            .map(|item| match raw_to_json(item)? {
                Json::Object(obj) => Some(JsonPatchOp::from_object(&obj)),
                Json::Null => Some(JsonPatchOp::from_object(&serde_json::Map::new())),
                _ => None,
            })
            .collect(),
        Some(_) => None,
    }
}

/// A YAML node as go-yaml decodes it into `any` and `encoding/json` writes it.
fn raw_to_json(raw: &Raw) -> Option<Json> {
    use super::value::Dyn;
    fn conv(d: &Dyn) -> Option<Json> {
        Some(match d {
            Dyn::Null => Json::Null,
            Dyn::Bool(b) => Json::Bool(*b),
            Dyn::Int(i) => Json::from(*i),
            Dyn::Uint(u) => Json::from(*u),
            Dyn::Float(f) => Json::from(serde_json::Number::from_f64(*f)?),
            Dyn::Str(s) => Json::String(s.clone()),
            Dyn::Seq(items) => Json::Array(items.iter().map(conv).collect::<Option<_>>()?),
            Dyn::Map(entries) => {
                let mut sorted = entries.clone();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                Json::Object(sorted.iter().map(|(k, v)| Some((k.clone(), conv(v)?))).collect::<Option<_>>()?)
            }
        })
    }
    conv(&super::decode::to_dyn(raw))
}

/// Reads every patch, grouping consecutive JSON patches as `LoadPatches` does.
pub fn parse_patches(patches: &[String]) -> Result<Vec<(usize, usize, Patch)>, PatchError> {
    let mut out: Vec<(usize, usize, Patch)> = Vec::new();
    for (i, text) in patches.iter().enumerate() {
        let patch = Patch::parse(text).map_err(|message| PatchError { first: i, last: i, kind: "patch", message })?;
        match (out.last_mut(), patch) {
            (Some((_, last, Patch::JsonPatch(ops))), Patch::JsonPatch(more)) => {
                ops.extend(more);
                *last = i;
            }
            (_, patch) => out.push((i, i, patch)),
        }
    }
    Ok(out)
}

/// Applies `patches` (patch strings, in order) to `config`.
pub fn apply_patches(config: Config, patches: &[String]) -> Result<Config, PatchError> {
    let mut config = config;
    for (first, last, patch) in parse_patches(patches)? {
        let kind = match patch {
            Patch::StrategicMerge(_) => "strategic merge patch",
            Patch::JsonPatch(_) => "JSON patch",
        };
        config = apply(config, &patch).map_err(|message| PatchError { first, last, kind, message })?;
    }
    Ok(config)
}

/// Applies one patch.
pub fn apply(config: Config, patch: &Patch) -> Result<Config, String> {
    match patch {
        Patch::StrategicMerge(docs) => strategic_merge(config, docs),
        Patch::JsonPatch(ops) => json6902(&config, ops),
    }
}

/// `configpatcher.StrategicMerge`.
fn strategic_merge(config: Config, patch: &[Loaded]) -> Result<Config, String> {
    let mut left = config.docs;
    // machinery indexes the documents once, before applying this patch.
    let mut index: Vec<String> = left.iter().map(|d| d.id()).collect();
    for right in patch {
        let id = match right {
            Loaded::Doc(d) => d.id(),
            Loaded::Delete(s) => s.id(),
        };
        match (index.iter().position(|i| *i == id), right) {
            (Some(pos), Loaded::Doc(r)) => {
                let ty = r.ty();
                merge(&mut left[pos].value, &r.value, &ty)?;
            }
            (Some(pos), Loaded::Delete(sel)) => {
                if sel.apply(&mut left[pos])? == Applied::DocumentDeleted {
                    left.remove(pos);
                    index.remove(pos);
                }
            }
            (None, Loaded::Doc(r)) => left.push(r.clone()),
            (None, Loaded::Delete(sel)) => {
                // machinery would append the selector and print it as an empty `{}` document.
                return Err(format!(
                    "$patch: delete targets document {} (path '{}'), which is not in the configuration",
                    sel.id(),
                    sel.path.join(".")
                ));
            }
        }
    }
    Config::new(left)
}

/// `configpatcher.JSON6902` followed by reloading the configuration.
fn json6902(config: &Config, ops: &[JsonPatchOp]) -> Result<Config, String> {
    if config.docs.len() != 1 {
        let hint = if ops.is_empty() {
            " (this patch has no operations: Talos reads an empty list as a JSON patch)"
        } else {
            ""
        };
        return Err(format!("JSON6902 patches are not supported for multi-document machine configuration{hint}"));
    }
    let text = config.to_yaml();
    let root = parse_documents(&text)
        .ok()
        .and_then(|d| d.into_iter().next())
        .and_then(|d| d.root)
        .ok_or("failure converting talos machine config to json")?;
    let mut json = raw_to_json(&root).ok_or("failure converting talos machine config to json")?;
    jsonpatch::apply(&mut json, ops)
        .map_err(|e| format!("failure applying rfc6902 patches to talos machine config: {e}"))?;
    Config::from_yaml(&json_to_yaml(&json))
}

/// JSON as YAML text (strings stay strings).
fn json_to_yaml(json: &Json) -> String {
    use crate::talos::goyaml::{emit, Flavour, Node};
    fn conv(j: &Json) -> Node {
        match j {
            Json::Null => Node::Plain("null".into()),
            Json::Bool(b) => Node::Plain(b.to_string()),
            Json::Number(n) => Node::Plain(n.to_string()),
            Json::String(s) => Node::Str(s.clone()),
            Json::Array(items) => Node::Seq(items.iter().map(conv).collect()),
            Json::Object(map) => Node::Map(map.iter().map(|(k, v)| (k.clone(), conv(v))).collect()),
        }
    }
    emit(&conv(json), Flavour::YamlV4)
}
