//! Type erasure: turns a typed [`CustomResource`] or [`Function`] into objects
//! the RPC layer can call with property maps. This is the one place that
//! decodes inputs (with property paths in errors), handles unknowns in preview,
//! and decides which outputs are secret: schema-secret properties, and any
//! output at the path of a secret input or of a previously secret output.

use std::future::Future;
use std::pin::Pin;

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value as Json;

use super::diff::{self, DiffOptions, DiffResult};
use super::resource::*;
use super::{CheckFailure, Context, CustomResource, Function, ResourceError};
use crate::schema::{self, paths, spec, PulumiObject, TypeRegistry};
use crate::value::{self, json as vjson, PropertyMap, PropertyPath};

/// A boxed future, as the erased interface returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What Check returns: the inputs to record and any failures.
pub struct CheckOutcome {
    /// Checked inputs (the news unchanged when they could not be decoded).
    pub inputs: PropertyMap,
    /// Problems, each naming a property path.
    pub failures: Vec<CheckFailure>,
}

/// A created or read resource.
pub struct Outcome {
    /// Its id.
    pub id: String,
    /// Its state.
    pub state: PropertyMap,
    /// Its inputs (Read only).
    pub inputs: Option<PropertyMap>,
}

/// A failed operation, with the partial state to record when something exists.
pub struct Failure {
    /// What went wrong.
    pub error: ResourceError,
    /// For `InitFailed`: the state, already encoded with secrets.
    pub partial: Option<Box<Outcome>>,
}

impl From<ResourceError> for Failure {
    fn from(error: ResourceError) -> Self {
        Failure { error, partial: None }
    }
}

/// Old and new values a Diff compares.
pub struct DiffInputs<'a> {
    /// Inputs last applied (may be empty for old states).
    pub old_inputs: &'a PropertyMap,
    /// State last recorded.
    pub old_state: &'a PropertyMap,
    /// New checked inputs.
    pub news: &'a PropertyMap,
    /// `ignoreChanges` paths as the user wrote them.
    pub ignore_changes: &'a [String],
}

/// A resource as the RPC layer sees it.
pub trait DynResource: Send + Sync {
    /// Its token.
    fn token(&self) -> &'static str;
    /// Its schema entry (registering named types in `reg`).
    fn describe(&self, reg: &mut TypeRegistry) -> spec::ResourceSpec;
    /// Check.
    fn check(&self, ctx: &Context, name: &str, olds: &PropertyMap, news: &PropertyMap, seed: &[u8]) -> CheckOutcome;
    /// Diff.
    fn diff(&self, req: DiffInputs<'_>) -> Result<DiffResult, ResourceError>;
    /// Create (or predict, in preview).
    fn create<'a>(
        &'a self,
        ctx: &'a Context,
        name: String,
        inputs: &'a PropertyMap,
        preview: bool,
    ) -> BoxFuture<'a, Result<Outcome, Failure>>;
    /// Read (refresh when `inputs`/`state` are non-empty, import otherwise); `None` = gone.
    fn read<'a>(
        &'a self,
        ctx: &'a Context,
        id: String,
        inputs: &'a PropertyMap,
        state: &'a PropertyMap,
    ) -> BoxFuture<'a, Result<Option<Outcome>, Failure>>;
    /// Update.
    fn update<'a>(
        &'a self,
        ctx: &'a Context,
        id: String,
        old_inputs: &'a PropertyMap,
        old_state: &'a PropertyMap,
        news: &'a PropertyMap,
        preview: bool,
    ) -> BoxFuture<'a, Result<PropertyMap, Failure>>;
    /// Delete.
    fn delete<'a>(&'a self, ctx: &'a Context, id: String, state: &'a PropertyMap)
        -> BoxFuture<'a, Result<(), Failure>>;
}

/// A function as the RPC layer sees it.
pub trait DynFunction: Send + Sync {
    /// Its token.
    fn token(&self) -> &'static str;
    /// Its schema entry.
    fn describe(&self, reg: &mut TypeRegistry) -> spec::FunctionSpec;
    /// Invoke: the result, or failures naming argument paths.
    fn invoke<'a>(
        &'a self,
        ctx: &'a Context,
        args: &'a PropertyMap,
    ) -> BoxFuture<'a, Result<Result<PropertyMap, Vec<CheckFailure>>, ResourceError>>;
}

/// Wraps a typed resource.
pub struct ResourceAdapter<R>(pub R);

/// Wraps a typed function.
pub struct FunctionAdapter<F>(pub F);

/// Schema knowledge a resource needs at run time, computed once per call (cheap).
struct Shape {
    input_props: Vec<crate::schema::Property>,
    input_secrets: Vec<PropertyPath>,
    state_secrets: Vec<PropertyPath>,
    replace: Vec<PropertyPath>,
}

fn shape<A: PulumiObject, S: PulumiObject>() -> Shape {
    let mut reg = TypeRegistry::default();
    let input_props = A::properties(&mut reg);
    let state_props = S::properties(&mut reg);
    Shape {
        input_secrets: paths::secret_patterns(&input_props, &reg),
        state_secrets: paths::secret_patterns(&state_props, &reg),
        replace: paths::replace_patterns(&input_props, &reg),
        input_props,
    }
}

/// Decodes a fully known JSON value, turning a serde error into a check failure at its path.
pub fn decode<T: DeserializeOwned>(value: &Json) -> Result<T, CheckFailure> {
    vjson::decode(value).map_err(|e| CheckFailure::new(e.path.to_string(), e.message))
}

/// Encodes `value` and wraps in secrets: every concrete path matched by `patterns`
/// and every path in `inherited` that exists in the value.
pub fn encode<T: Serialize>(value: &T, patterns: &[PropertyPath], inherited: &[PropertyPath]) -> PropertyMap {
    let json = vjson::encode(value);
    let mut secret: Vec<PropertyPath> = patterns.iter().flat_map(|p| paths::expand(p, &json)).collect();
    secret.extend(inherited.iter().flat_map(|p| paths::expand(p, &json)));
    vjson::from_json(&json, &secret)
}

fn unknown_property_failures(props: &[crate::schema::Property], news: &Json) -> Vec<CheckFailure> {
    let Json::Object(m) = news else { return vec![CheckFailure::new("", "inputs must be an object")] };
    let valid: Vec<&str> = props.iter().map(|p| p.name).collect();
    m.keys()
        .filter(|k| !valid.contains(&k.as_str()))
        .map(|k| CheckFailure::new(k.clone(), format!("unknown property; valid properties are: {}", valid.join(", "))))
        .collect()
}

impl<R: CustomResource> ResourceAdapter<R> {
    // Failures are the cold path; boxing them would only move the allocation.
    #[allow(clippy::result_large_err)]
    fn decode_state(&self, state: &PropertyMap) -> Result<R::State, Failure> {
        let proj = vjson::to_json(state);
        decode(&proj.value).map_err(|f| {
            ResourceError::Failed(format!(
                "the recorded state of this {} cannot be read ({f}); run `pulumi refresh`",
                R::TOKEN
            ))
            .into()
        })
    }

    fn encode_state(&self, shape: &Shape, state: &R::State, inherited: &[PropertyPath]) -> PropertyMap {
        encode(state, &shape.state_secrets, inherited)
    }

    fn partial(&self, shape: &Shape, err: ResourceError, inherited: &[PropertyPath]) -> Failure {
        match err {
            ResourceError::InitFailed { id, state, reasons } => {
                let mut secret: Vec<PropertyPath> =
                    shape.state_secrets.iter().flat_map(|p| paths::expand(p, &state)).collect();
                secret.extend(inherited.iter().flat_map(|p| paths::expand(p, &state)));
                let partial = Outcome { id: id.clone(), state: vjson::from_json(&state, &secret), inputs: None };
                Failure { error: ResourceError::InitFailed { id, state, reasons }, partial: Some(Box::new(partial)) }
            }
            other => other.into(),
        }
    }
}

impl<R: CustomResource> DynResource for ResourceAdapter<R> {
    fn token(&self) -> &'static str {
        R::TOKEN
    }

    fn describe(&self, reg: &mut TypeRegistry) -> spec::ResourceSpec {
        let known_before = reg.tokens();
        let inputs = R::Args::properties(reg);
        let outputs = R::State::properties(reg);
        let mut spec = spec::ResourceSpec {
            description: R::State::description().to_string(),
            required: schema::required_names(&outputs),
            properties: schema::property_specs(&outputs),
            required_inputs: schema::required_names(&inputs),
            input_properties: schema::property_specs(&inputs),
        };
        if R::REPLACEMENTS_BY_VALUE {
            spec.input_properties
                .values_mut()
                .chain(spec.properties.values_mut())
                .for_each(|p| p.replace_on_changes = false);
            reg.clear_replace_marks_except(&known_before);
        }
        spec
    }

    fn check(&self, ctx: &Context, name: &str, olds: &PropertyMap, news: &PropertyMap, seed: &[u8]) -> CheckOutcome {
        let shape = shape::<R::Args, R::State>();
        let proj = vjson::to_json(news);
        let mut failures = unknown_property_failures(&shape.input_props, &proj.value);
        let unchanged = |failures| CheckOutcome { inputs: news.clone(), failures };
        if !proj.unknowns.is_empty() {
            // Preview with values not yet known: report only what is certainly wrong.
            // The engine checks again with every value known before Create.
            if let Err(f) = decode::<R::Args>(&null_unknowns(&proj.value)) {
                let at_unknown = proj.unknowns.iter().any(|u| f.property.starts_with(&u.to_string()));
                if !at_unknown {
                    failures.push(f);
                }
            }
            return unchanged(failures);
        }
        if !failures.is_empty() {
            return unchanged(failures);
        }
        let args = match decode::<R::Args>(&proj.value) {
            Ok(a) => a,
            Err(f) => return unchanged(vec![f]),
        };
        let old_args = if olds.is_empty() { None } else { decode::<R::Args>(&vjson::to_json(olds).value).ok() };
        let req = CheckRequest { name, inputs: args, olds: old_args, random_seed: seed };
        match self.0.check(ctx, req) {
            Ok(args) => CheckOutcome { inputs: encode(&args, &shape.input_secrets, &proj.secrets), failures: vec![] },
            Err(failures) => unchanged(failures),
        }
    }

    fn diff(&self, req: DiffInputs<'_>) -> Result<DiffResult, ResourceError> {
        let shape = shape::<R::Args, R::State>();
        let old = if req.old_inputs.is_empty() { req.old_state } else { req.old_inputs };
        let ignore = req
            .ignore_changes
            .iter()
            .map(|s| {
                PropertyPath::parse(s).map_err(|e| ResourceError::Failed(format!("ignoreChanges path {s:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let old_proj = vjson::to_json(old);
        let new_proj = vjson::to_json(req.news);
        let mut result = diff::structural(
            &old_proj.value,
            &new_proj.value,
            &DiffOptions { replace: &shape.replace, ignore: &ignore },
        );
        // A resource that decides replacements from values overrides the schema's marks.
        let known = old_proj.unknowns.is_empty() && new_proj.unknowns.is_empty();
        let typed = (decode::<R::Args>(&old_proj.value).ok(), decode::<R::Args>(&new_proj.value).ok());
        if let (true, (Some(o), Some(n))) = (known, typed) {
            if let Some(paths) = self.0.replacements(&o, &n) {
                let paths = paths
                    .iter()
                    .map(|p| {
                        PropertyPath::parse(p)
                            .map_err(|e| ResourceError::Failed(format!("replacement path {p:?}: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                for d in &mut result.diffs {
                    d.replace = paths.iter().any(|p| p.matches_prefix(&d.path) || d.path.matches_prefix(p));
                }
            }
            // Asked even when this diff replaces nothing: the engine also replaces for the
            // schema's `replaceOnChanges` marks, which SDKs and YAML pass as resource options.
            result.delete_before_replace = self.0.delete_before_replace(&o, &n);
            // Outputs due to change with no input changed (renewals): updates of those outputs,
            // unless the user ignores them.
            if let Ok(state) = decode::<R::State>(&vjson::to_json(req.old_state).value) {
                for p in self.0.due_changes(&state, &n) {
                    let path = PropertyPath::parse(&p)
                        .map_err(|e| ResourceError::Failed(format!("due change path {p:?}: {e}")))?;
                    let ignored = ignore.iter().any(|i| i.matches_prefix(&path));
                    if !ignored && !result.diffs.iter().any(|d| d.path == path) {
                        result.diffs.push(diff::PropertyDiff {
                            path,
                            kind: diff::DiffKind::Update,
                            replace: false,
                            input: false,
                        });
                    }
                }
            }
        }
        Ok(result)
    }

    fn create<'a>(
        &'a self,
        ctx: &'a Context,
        name: String,
        inputs: &'a PropertyMap,
        preview: bool,
    ) -> BoxFuture<'a, Result<Outcome, Failure>> {
        Box::pin(async move {
            let shape = shape::<R::Args, R::State>();
            let proj = vjson::to_json(inputs);
            if preview && !proj.unknowns.is_empty() {
                // Inputs echo as they are (unknowns stay unknown); every computed output is unknown.
                return Ok(Outcome { id: String::new(), state: inputs.clone(), inputs: None });
            }
            let args: R::Args = decode(&proj.value).map_err(|f| Failure::from(ResourceError::Invalid(vec![f])))?;
            let resp = self
                .0
                .create(ctx, CreateRequest { name, inputs: args, preview })
                .await
                .map_err(|e| self.partial(&shape, e, &proj.secrets))?;
            Ok(Outcome { id: resp.id, state: self.encode_state(&shape, &resp.state, &proj.secrets), inputs: None })
        })
    }

    fn read<'a>(
        &'a self,
        ctx: &'a Context,
        id: String,
        inputs: &'a PropertyMap,
        state: &'a PropertyMap,
    ) -> BoxFuture<'a, Result<Option<Outcome>, Failure>> {
        Box::pin(async move {
            let shape = shape::<R::Args, R::State>();
            let in_proj = vjson::to_json(inputs);
            let st_proj = vjson::to_json(state);
            let old_inputs = if inputs.is_empty() {
                None
            } else {
                Some(decode::<R::Args>(&in_proj.value).map_err(|f| Failure::from(ResourceError::Invalid(vec![f])))?)
            };
            let old_state = if state.is_empty() { None } else { Some(self.decode_state(state)?) };
            let found = self
                .0
                .read(ctx, ReadRequest { id, inputs: old_inputs, state: old_state })
                .await
                .map_err(|e| self.partial(&shape, e, &st_proj.secrets))?;
            Ok(found.map(|r| {
                let mut inherited = st_proj.secrets.clone();
                inherited.extend(in_proj.secrets.iter().cloned());
                Outcome {
                    id: r.id,
                    state: self.encode_state(&shape, &r.state, &inherited),
                    inputs: Some(encode(&r.inputs, &shape.input_secrets, &in_proj.secrets)),
                }
            }))
        })
    }

    fn update<'a>(
        &'a self,
        ctx: &'a Context,
        id: String,
        old_inputs: &'a PropertyMap,
        old_state: &'a PropertyMap,
        news: &'a PropertyMap,
        preview: bool,
    ) -> BoxFuture<'a, Result<PropertyMap, Failure>> {
        Box::pin(async move {
            let shape = shape::<R::Args, R::State>();
            let proj = vjson::to_json(news);
            let old_proj = vjson::to_json(old_state);
            if preview && !proj.unknowns.is_empty() {
                // Old state with the new (partly unknown) inputs laid over it.
                let mut state = old_state.clone();
                state.extend(news.iter().map(|(k, v)| (k.clone(), v.clone())));
                return Ok(state);
            }
            let inputs: R::Args = decode(&proj.value).map_err(|f| Failure::from(ResourceError::Invalid(vec![f])))?;
            let old_args: R::Args =
                decode(&vjson::to_json(old_inputs).value).or_else(|_| decode(&old_proj.value)).map_err(|f| {
                    Failure::from(ResourceError::Failed(format!("the recorded inputs cannot be read: {f}")))
                })?;
            let old = self.decode_state(old_state)?;
            // Computed outputs keep the secretness they had; for inputs the new inputs decide.
            let mut inherited = proj.secrets.clone();
            inherited.extend(old_proj.secrets.iter().filter(|p| !is_input_path(p, news)).cloned());
            let state = self
                .0
                .update(ctx, UpdateRequest { id, old_inputs: old_args, old_state: old, inputs, preview })
                .await
                .map_err(|e| self.partial(&shape, e, &inherited))?;
            Ok(self.encode_state(&shape, &state, &inherited))
        })
    }

    fn delete<'a>(
        &'a self,
        ctx: &'a Context,
        id: String,
        state: &'a PropertyMap,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let state = self.decode_state(state)?;
            self.0.delete(ctx, DeleteRequest { id, state }).await.map_err(Failure::from)
        })
    }
}

impl<F: Function> DynFunction for FunctionAdapter<F> {
    fn token(&self) -> &'static str {
        F::TOKEN
    }

    fn describe(&self, reg: &mut TypeRegistry) -> spec::FunctionSpec {
        let object = |props: Vec<crate::schema::Property>| spec::ObjectSpec {
            kind: "object",
            required: schema::required_names(&props),
            properties: schema::property_specs(&props),
        };
        spec::FunctionSpec {
            description: F::Args::description().to_string(),
            inputs: object(F::Args::properties(reg)),
            outputs: object(F::Result::properties(reg)),
        }
    }

    fn invoke<'a>(
        &'a self,
        ctx: &'a Context,
        args: &'a PropertyMap,
    ) -> BoxFuture<'a, Result<Result<PropertyMap, Vec<CheckFailure>>, ResourceError>> {
        Box::pin(async move {
            let mut reg = TypeRegistry::default();
            let arg_props = F::Args::properties(&mut reg);
            let result_props = F::Result::properties(&mut reg);
            let mut proj = vjson::to_json(args);
            // Python programs pass object outputs with Python key names (docs/adr/0011).
            let mut failures = schema::python_names::accept_python_names(&arg_props, &reg, &mut proj.value);
            failures.extend(unknown_property_failures(&arg_props, &proj.value));
            if let Some(u) = proj.unknowns.first() {
                failures
                    .push(CheckFailure::new(u.to_string(), "value is not known yet; functions need known arguments"));
            }
            if !failures.is_empty() {
                return Ok(Err(failures));
            }
            let parsed: F::Args = match decode(&proj.value) {
                Ok(a) => a,
                Err(f) => return Ok(Err(vec![f])),
            };
            let failures = self.0.check(ctx, &parsed);
            if !failures.is_empty() {
                return Ok(Err(failures));
            }
            let result = self.0.invoke(ctx, parsed).await?;
            let secrets = paths::secret_patterns(&result_props, &reg);
            Ok(Ok(encode(&result, &secrets, &proj.secrets)))
        })
    }
}

/// The projection with every unknown sentinel replaced by `null`, for a
/// best-effort decode in preview.
fn null_unknowns(value: &Json) -> Json {
    match value {
        Json::String(s) if value::is_unknown_sentinel(s) => Json::Null,
        Json::Array(a) => Json::Array(a.iter().map(null_unknowns).collect()),
        Json::Object(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), null_unknowns(v))).collect()),
        other => other.clone(),
    }
}

/// Whether `path` lies under a top-level property given in `inputs`.
fn is_input_path(path: &PropertyPath, inputs: &PropertyMap) -> bool {
    matches!(path.segments().first(), Some(value::PathSegment::Key(k)) if inputs.contains_key(k))
}

/// Whether any value in `map` is unknown.
pub fn has_unknowns(map: &PropertyMap) -> bool {
    !vjson::to_json(map).unknowns.is_empty() || map.values().any(value::PropertyValue::is_computed)
}
