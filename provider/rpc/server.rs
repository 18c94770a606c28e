//! The `pulumirpc.ResourceProvider` service: translates gRPC messages to the
//! framework's property maps and back, and dispatches by token to the registry.
//! Resource modules never see anything from this file.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use tonic::{Request, Response, Status};

use super::engine_log::EngineLog;
use super::proto::pulumirpc::{self as rpc, property_diff::Kind, resource_provider_server::ResourceProvider};
use super::status::{error_status, failure_status};
use crate::config::ProviderConfig;
use crate::framework::adapter::{DiffInputs, DynResource};
use crate::framework::diff::{self, DiffKind, DiffOptions, DiffResult};
use crate::framework::{CheckFailure, Context, Registry};
use crate::schema::package;
use crate::value::{json as vjson, wire, PropertyMap};

/// The provider as the engine talks to it.
pub struct ProviderService {
    registry: Registry,
    config: RwLock<Arc<ProviderConfig>>,
    log: Arc<EngineLog>,
    cancel: watch::Sender<bool>,
    schema: OnceLock<String>,
}

impl ProviderService {
    /// A provider serving `registry`, logging through `log`.
    pub fn new(registry: Registry, log: Arc<EngineLog>) -> Self {
        let (cancel, _) = watch::channel(false);
        ProviderService { registry, config: RwLock::new(Arc::default()), log, cancel, schema: OnceLock::new() }
    }

    fn context(&self, urn: &str, timeout: f64) -> Context {
        let timeout = (timeout > 0.0).then(|| Duration::from_secs_f64(timeout));
        let config = self.config.read().expect("config lock").clone();
        Context::new(config, self.log.clone(), urn, self.cancel.subscribe(), timeout)
    }

    fn resource(&self, ty: &str, urn: &str) -> Result<&Arc<dyn DynResource>, Status> {
        let token = if ty.is_empty() { type_from_urn(urn) } else { ty };
        self.registry
            .get_resource(token)
            .ok_or_else(|| Status::unimplemented(format!("proxmox-talos has no resource type {token:?}")))
    }
}

/// The type token inside a URN: `urn:pulumi:stack::project::parent$type::name`.
pub fn type_from_urn(urn: &str) -> &str {
    let qualified = urn.split("::").nth(2).unwrap_or("");
    qualified.rsplit('$').next().unwrap_or(qualified)
}

/// The name inside a URN (last `::` segment).
pub fn name_from_urn(urn: &str) -> &str {
    urn.rsplit("::").next().unwrap_or(urn)
}

fn decode(s: Option<prost_types::Struct>) -> Result<PropertyMap, Status> {
    match s {
        Some(s) => wire::from_struct(&s).map_err(|e| Status::invalid_argument(format!("undecodable properties: {e}"))),
        None => Ok(PropertyMap::new()),
    }
}

fn failures(fs: Vec<CheckFailure>) -> Vec<rpc::CheckFailure> {
    fs.into_iter().map(|f| rpc::CheckFailure { property: f.property, reason: f.reason }).collect()
}

fn diff_response(result: &DiffResult) -> rpc::DiffResponse {
    let detailed: HashMap<String, rpc::PropertyDiff> = result
        .diffs
        .iter()
        .map(|d| {
            let kind = match (d.kind, d.replace) {
                (DiffKind::Add, false) => Kind::Add,
                (DiffKind::Add, true) => Kind::AddReplace,
                (DiffKind::Delete, false) => Kind::Delete,
                (DiffKind::Delete, true) => Kind::DeleteReplace,
                (DiffKind::Update, false) => Kind::Update,
                (DiffKind::Update, true) => Kind::UpdateReplace,
            };
            (d.path.to_string(), rpc::PropertyDiff { kind: kind as i32, input_diff: d.input })
        })
        .collect();
    let changes = if result.has_changes() {
        rpc::diff_response::DiffChanges::DiffSome
    } else {
        rpc::diff_response::DiffChanges::DiffNone
    };
    rpc::DiffResponse {
        replaces: result.replace_keys(),
        stables: Vec::new(),
        delete_before_replace: result.delete_before_replace,
        changes: changes as i32,
        diffs: result.changed_keys(),
        detailed_diff: detailed,
        has_detailed_diff: true,
    }
}

/// Config keys as the engine's deprecated `variables` map names them.
fn config_from_variables(vars: &HashMap<String, String>) -> serde_json::Value {
    let prefix = format!("{}:config:", crate::schema::PACKAGE);
    serde_json::Value::Object(
        vars.iter()
            .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|k| (k.to_string(), serde_json::Value::String(v.clone()))))
            .collect(),
    )
}

#[tonic::async_trait]
impl ResourceProvider for ProviderService {
    async fn handshake(
        &self,
        req: Request<rpc::ProviderHandshakeRequest>,
    ) -> Result<Response<rpc::ProviderHandshakeResponse>, Status> {
        let req = req.into_inner();
        if !req.engine_address.is_empty() {
            self.log.connect(&req.engine_address);
        }
        Ok(Response::new(rpc::ProviderHandshakeResponse {
            accept_secrets: true,
            accept_resources: true,
            accept_outputs: false,
            supports_autonaming_configuration: false,
            accepts_byte_string: false,
        }))
    }

    async fn get_schema(
        &self,
        req: Request<rpc::GetSchemaRequest>,
    ) -> Result<Response<rpc::GetSchemaResponse>, Status> {
        let req = req.into_inner();
        if !req.subpackage_name.is_empty() {
            return Err(Status::not_found(format!("proxmox-talos has no subpackage {:?}", req.subpackage_name)));
        }
        let schema = self.schema.get_or_init(|| package::to_json_text(&self.registry)).clone();
        Ok(Response::new(rpc::GetSchemaResponse { schema }))
    }

    async fn check_config(&self, req: Request<rpc::CheckRequest>) -> Result<Response<rpc::CheckResponse>, Status> {
        let req = req.into_inner();
        let news = decode(req.news)?;
        let proj = vjson::to_json(&news);
        // Unknown values cannot be validated yet; the engine will not Configure with them.
        let mut known = proj.value.clone();
        if let serde_json::Value::Object(m) = &mut known {
            m.retain(|k, _| {
                !proj.unknowns.iter().any(|u| u.to_string() == *k || u.to_string().starts_with(&format!("{k}.")))
            });
        }
        let failures = match ProviderConfig::from_inputs(&known) {
            Ok(_) => Vec::new(),
            Err(fs) => failures(fs),
        };
        Ok(Response::new(rpc::CheckResponse { inputs: Some(wire::to_struct(&news)), failures }))
    }

    async fn diff_config(&self, req: Request<rpc::DiffRequest>) -> Result<Response<rpc::DiffResponse>, Status> {
        let req = req.into_inner();
        let olds = decode(req.old_inputs).and_then(|o| if o.is_empty() { decode(req.olds) } else { Ok(o) })?;
        let news = decode(req.news)?;
        let strip = |m: &PropertyMap| {
            let mut v = vjson::to_json(m).value;
            if let serde_json::Value::Object(o) = &mut v {
                o.remove("version");
            }
            v
        };
        // Provider settings never replace resources: a new endpoint or token is an update.
        let result = diff::structural(&strip(&olds), &strip(&news), &DiffOptions::default());
        Ok(Response::new(diff_response(&result)))
    }

    async fn configure(&self, req: Request<rpc::ConfigureRequest>) -> Result<Response<rpc::ConfigureResponse>, Status> {
        let req = req.into_inner();
        let inputs = match req.args {
            Some(args) => vjson::to_json(&decode(Some(args))?).value,
            None => config_from_variables(&req.variables),
        };
        let config = ProviderConfig::from_inputs(&inputs).map_err(|fs| {
            let text: Vec<String> = fs.iter().map(|f| f.to_string()).collect();
            Status::invalid_argument(format!("invalid proxmox-talos configuration: {}", text.join("; ")))
        })?;
        let config = config.with_environment(|k| std::env::var(k).ok());
        *self.config.write().expect("config lock") = Arc::new(config);
        Ok(Response::new(rpc::ConfigureResponse {
            accept_secrets: true,
            supports_preview: true,
            accept_resources: true,
            accept_outputs: false,
            supports_autonaming_configuration: false,
        }))
    }

    async fn invoke(&self, req: Request<rpc::InvokeRequest>) -> Result<Response<rpc::InvokeResponse>, Status> {
        let req = req.into_inner();
        let function = self
            .registry
            .get_function(&req.tok)
            .ok_or_else(|| Status::unimplemented(format!("proxmox-talos has no function {:?}", req.tok)))?;
        let args = decode(req.args)?;
        let ctx = self.context("", 0.0);
        match function.invoke(&ctx, &args).await {
            Ok(Ok(result)) => {
                Ok(Response::new(rpc::InvokeResponse { r#return: Some(wire::to_struct(&result)), failures: vec![] }))
            }
            Ok(Err(fs)) => Ok(Response::new(rpc::InvokeResponse { r#return: None, failures: failures(fs) })),
            Err(e) => Err(error_status(&format!("{} failed", req.tok), &e)),
        }
    }

    async fn check(&self, req: Request<rpc::CheckRequest>) -> Result<Response<rpc::CheckResponse>, Status> {
        let req = req.into_inner();
        let resource = self.resource(&req.r#type, &req.urn)?;
        let olds = decode(req.olds)?;
        let news = decode(req.news)?;
        let name = if req.name.is_empty() { name_from_urn(&req.urn) } else { &req.name };
        let outcome = resource.check(&self.context(&req.urn, 0.0), name, &olds, &news, &req.random_seed);
        Ok(Response::new(rpc::CheckResponse {
            inputs: Some(wire::to_struct(&outcome.inputs)),
            failures: failures(outcome.failures),
        }))
    }

    async fn diff(&self, req: Request<rpc::DiffRequest>) -> Result<Response<rpc::DiffResponse>, Status> {
        let req = req.into_inner();
        let resource = self.resource(&req.r#type, &req.urn)?;
        let (old_state, old_inputs, news) = (decode(req.olds)?, decode(req.old_inputs)?, decode(req.news)?);
        let result = resource
            .diff(DiffInputs {
                old_inputs: &old_inputs,
                old_state: &old_state,
                news: &news,
                ignore_changes: &req.ignore_changes,
            })
            .map_err(|e| error_status(&format!("unable to diff {}", req.urn), &e))?;
        Ok(Response::new(diff_response(&result)))
    }

    async fn create(&self, req: Request<rpc::CreateRequest>) -> Result<Response<rpc::CreateResponse>, Status> {
        let req = req.into_inner();
        let resource = self.resource(&req.r#type, &req.urn)?;
        let inputs = decode(req.properties)?;
        let name = if req.name.is_empty() { name_from_urn(&req.urn).to_string() } else { req.name.clone() };
        let ctx = self.context(&req.urn, req.timeout);
        let created = resource
            .create(&ctx, name.clone(), &inputs, req.preview)
            .await
            .map_err(|f| failure_status(&format!("unable to create {} {name}", resource.token()), f))?;
        Ok(Response::new(rpc::CreateResponse {
            id: created.id,
            properties: Some(wire::to_struct(&created.state)),
            refresh_before_update: false,
        }))
    }

    async fn read(&self, req: Request<rpc::ReadRequest>) -> Result<Response<rpc::ReadResponse>, Status> {
        let req = req.into_inner();
        let resource = self.resource(&req.r#type, &req.urn)?;
        let (state, inputs) = (decode(req.properties)?, decode(req.inputs)?);
        let ctx = self.context(&req.urn, req.timeout);
        let found = resource
            .read(&ctx, req.id.clone(), &inputs, &state)
            .await
            .map_err(|f| failure_status(&format!("unable to read {} {}", resource.token(), req.id), f))?;
        Ok(Response::new(match found {
            Some(o) => rpc::ReadResponse {
                id: o.id,
                properties: Some(wire::to_struct(&o.state)),
                inputs: o.inputs.as_ref().map(wire::to_struct),
                refresh_before_update: false,
            },
            None => rpc::ReadResponse::default(),
        }))
    }

    async fn update(&self, req: Request<rpc::UpdateRequest>) -> Result<Response<rpc::UpdateResponse>, Status> {
        let req = req.into_inner();
        let resource = self.resource(&req.r#type, &req.urn)?;
        let (olds, old_inputs, news) = (decode(req.olds)?, decode(req.old_inputs)?, decode(req.news)?);
        let ctx = self.context(&req.urn, req.timeout);
        let state = resource
            .update(&ctx, req.id.clone(), &old_inputs, &olds, &news, req.preview)
            .await
            .map_err(|f| failure_status(&format!("unable to update {} {}", resource.token(), req.id), f))?;
        Ok(Response::new(rpc::UpdateResponse {
            properties: Some(wire::to_struct(&state)),
            refresh_before_update: false,
        }))
    }

    async fn delete(&self, req: Request<rpc::DeleteRequest>) -> Result<Response<()>, Status> {
        let req = req.into_inner();
        let resource = self.resource(&req.r#type, &req.urn)?;
        let state = decode(req.properties)?;
        let ctx = self.context(&req.urn, req.timeout);
        resource
            .delete(&ctx, req.id.clone(), &state)
            .await
            .map_err(|f| failure_status(&format!("unable to delete {} {}", resource.token(), req.id), f))?;
        Ok(Response::new(()))
    }

    async fn cancel(&self, _: Request<()>) -> Result<Response<()>, Status> {
        let _ = self.cancel.send(true);
        Ok(Response::new(()))
    }

    async fn get_plugin_info(&self, _: Request<()>) -> Result<Response<rpc::PluginInfo>, Status> {
        Ok(Response::new(rpc::PluginInfo { version: package::VERSION.to_string() }))
    }

    async fn attach(&self, req: Request<rpc::PluginAttach>) -> Result<Response<()>, Status> {
        self.log.connect(&req.into_inner().address);
        Ok(Response::new(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urn_parts() {
        let urn = "urn:pulumi:dev::homelab::proxmox-talos:machine:Secrets::talos";
        assert_eq!(type_from_urn(urn), "proxmox-talos:machine:Secrets");
        assert_eq!(name_from_urn(urn), "talos");
        let nested = "urn:pulumi:dev::homelab::my:Component$proxmox-talos:vm:VirtualMachine::cp1";
        assert_eq!(type_from_urn(nested), "proxmox-talos:vm:VirtualMachine");
    }
}
