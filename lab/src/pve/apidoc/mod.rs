//! The official PVE API schema (`pve-apidoc.json`, as shipped in
//! `pve-docs/api-viewer/apidoc.js`), loaded once at startup and indexed by
//! (method, path template).
//!
//! The lab embeds its compact, facts-only form ([`compact`],
//! `lab/apidoc/pve-apidoc.compact.json`, regenerated with
//! `proxmox-talos-lab apidoc compact --from pve-apidoc.json --out ...`) and
//! uses it unless `--api-schema FILE` names another file (the official one or
//! a compact one: both load).
//!
//! Owns: loading the schema (embedded or from a file), the index of every endpoint's
//! method info (`parameters`, `returns`, `permissions`, ...), and matching a
//! concrete request path (`/nodes/pve/qemu/100`) to its template
//! (`/nodes/{node}/qemu/{vmid}`) and path parameters.
//! Must not: validate parameters (see [`super::validate`]) or know handlers.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub mod compact;

/// The committed compact schema, relative to the lab crate (`lab/`).
pub const COMPACT_FILE: &str = "apidoc/pve-apidoc.compact.json";

/// The compact schema, embedded in the binary.
pub const EMBEDDED: &str = include_str!("../../../apidoc/pve-apidoc.compact.json");

/// One method of one path in the schema.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `GET`, `POST`, `PUT` or `DELETE`.
    pub method: String,
    /// The path template, e.g. `/nodes/{node}/qemu/{vmid}`.
    pub template: String,
    /// The method's `info` object (`parameters`, `returns`, `permissions`, `allowtoken`, ...).
    pub info: Value,
}

impl Endpoint {
    /// The method's `parameters` schema (an object schema with `properties`).
    pub fn parameters(&self) -> &Value {
        &self.info["parameters"]
    }
}

/// A concrete path matched to its endpoint.
#[derive(Debug, Clone)]
pub struct Matched<'a> {
    pub endpoint: &'a Endpoint,
    /// The `{param}` segments of the template, percent-decoded, in path order.
    pub path_params: Vec<(String, String)>,
}

/// The result of matching a request against the schema.
#[derive(Debug)]
pub enum Lookup<'a> {
    Found(Matched<'a>),
    /// The path exists, but not with this method.
    NoSuchMethod,
    /// No template matches the path.
    NoSuchPath,
}

/// An error loading the schema.
#[derive(Debug)]
pub struct ApiDocError(pub String);

impl fmt::Display for ApiDocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ApiDocError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

#[derive(Debug)]
struct Template {
    template: String,
    segments: Vec<Segment>,
    /// Endpoints by method.
    methods: BTreeMap<String, Endpoint>,
}

/// The indexed schema.
#[derive(Debug)]
pub struct ApiDoc {
    templates: Vec<Template>,
}

/// The environment variable that overrides where tests look for the schema.
pub const SCHEMA_ENV: &str = "PVE_APIDOC";

impl ApiDoc {
    /// Loads and indexes the schema at `path`.
    pub fn load(path: &Path) -> Result<ApiDoc, ApiDocError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ApiDocError(format!("reading the PVE API schema {}: {e}", path.display())))?;
        let json: Value = serde_json::from_str(&text)
            .map_err(|e| ApiDocError(format!("parsing the PVE API schema {}: {e}", path.display())))?;
        ApiDoc::from_json(&json).map_err(|e| ApiDocError(format!("{}: {}", path.display(), e.0)))
    }

    /// Indexes an already parsed schema (a list of path nodes with `children`).
    pub fn from_json(json: &Value) -> Result<ApiDoc, ApiDocError> {
        let roots = json.as_array().ok_or_else(|| ApiDocError("the schema is not a JSON list of path nodes".into()))?;
        let mut templates = Vec::new();
        for root in roots {
            collect(root, &mut templates)?;
        }
        if templates.is_empty() {
            return Err(ApiDocError("the schema has no paths".into()));
        }
        Ok(ApiDoc { templates })
    }

    /// The embedded compact schema.
    pub fn embedded() -> ApiDoc {
        let json: Value = serde_json::from_str(EMBEDDED).expect("the embedded PVE API schema is JSON");
        ApiDoc::from_json(&json).expect("the embedded PVE API schema indexes")
    }

    /// `path` if given (official or compact), else the embedded schema.
    pub fn load_or_embedded(path: Option<&Path>) -> Result<ApiDoc, ApiDocError> {
        match path {
            Some(path) => ApiDoc::load(path),
            None => Ok(ApiDoc::embedded()),
        }
    }

    /// The schema file for tests and tools: `$PVE_APIDOC` if set, else the
    /// committed compact schema of this source tree (the file [`EMBEDDED`] holds).
    pub fn locate() -> Result<PathBuf, ApiDocError> {
        let path = match std::env::var_os(SCHEMA_ENV) {
            Some(p) => PathBuf::from(p),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join(COMPACT_FILE),
        };
        if path.is_file() {
            Ok(path)
        } else {
            Err(ApiDocError(format!(
                "the PVE API schema {} was not found (from {SCHEMA_ENV} or the source tree)",
                path.display()
            )))
        }
    }

    /// Number of (method, template) endpoints.
    pub fn endpoint_count(&self) -> usize {
        self.templates.iter().map(|t| t.methods.len()).sum()
    }

    /// Every endpoint, in schema order.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.templates.iter().flat_map(|t| t.methods.values())
    }

    /// The endpoint for an exact (method, template) pair.
    pub fn endpoint(&self, method: &str, template: &str) -> Option<&Endpoint> {
        self.templates.iter().find(|t| t.template == template)?.methods.get(method)
    }

    /// Matches `path` (relative to `/api2/json`, raw, still percent-encoded)
    /// for `method`. Literal segments win over `{param}` segments, left to right,
    /// as in PVE's own handler lookup. A storage volume (`.../content/{volume}`)
    /// takes the rest of the path, slashes included (`local:iso/x.iso`): PVE
    /// registers that handler without a fragment delimiter.
    pub fn lookup(&self, method: &str, path: &str) -> Lookup<'_> {
        let mut parts: Vec<String> =
            path.trim_matches('/').split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
        let volume = self.templates.iter().find(|t| {
            t.template.ends_with("/content/{volume}")
                && parts.len() > t.segments.len()
                && t.segments.iter().zip(&parts).all(|(seg, part)| match seg {
                    Segment::Literal(l) => l == part,
                    Segment::Param(_) => true,
                })
        });
        if let Some(t) = volume {
            let rest = parts.split_off(t.segments.len() - 1).join("/");
            parts.push(rest);
        }
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let mut best: Option<(&Template, Vec<bool>)> = None;
        for t in &self.templates {
            if t.segments.len() != parts.len() {
                continue;
            }
            let fits = t.segments.iter().zip(&parts).all(|(seg, part)| match seg {
                Segment::Literal(l) => l == part,
                Segment::Param(_) => true,
            });
            if !fits {
                continue;
            }
            let score: Vec<bool> = t.segments.iter().map(|s| matches!(s, Segment::Literal(_))).collect();
            if best.as_ref().is_none_or(|(_, b)| score > *b) {
                best = Some((t, score));
            }
        }
        let Some((template, _)) = best else { return Lookup::NoSuchPath };
        let Some(endpoint) = template.methods.get(method) else { return Lookup::NoSuchMethod };
        let path_params = template
            .segments
            .iter()
            .zip(&parts)
            .filter_map(|(seg, part)| match seg {
                Segment::Param(name) => Some((name.clone(), percent_decode(part))),
                Segment::Literal(_) => None,
            })
            .collect();
        Lookup::Found(Matched { endpoint, path_params })
    }
}

fn collect(node: &Value, out: &mut Vec<Template>) -> Result<(), ApiDocError> {
    let path = node["path"].as_str().ok_or_else(|| ApiDocError("a path node without \"path\"".into()))?;
    let segments = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => Segment::Param(name.to_string()),
            None => Segment::Literal(s.to_string()),
        })
        .collect();
    let mut methods = BTreeMap::new();
    if let Some(info) = node["info"].as_object() {
        for (method, info) in info {
            methods.insert(
                method.clone(),
                Endpoint { method: method.clone(), template: path.to_string(), info: info.clone() },
            );
        }
    }
    out.push(Template { template: path.to_string(), segments, methods });
    if let Some(children) = node["children"].as_array() {
        for child in children {
            collect(child, out)?;
        }
    }
    Ok(())
}

/// Decodes `%XX` escapes (invalid escapes are kept as they are).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}
