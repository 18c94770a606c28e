//! `imagefactory:Schematic`: a Talos Image Factory schematic (system
//! extensions, kernel arguments, META values, overlay) and its ID.
//!
//! The ID is computed locally from the canonical form of the schematic, so it
//! is known at preview; Create registers the schematic with the configured
//! factory (`POST /schematics`) and fails if the factory's ID differs. Check
//! normalises the YAML to that canonical form, so only changes that change the
//! ID show as a diff, and any such change replaces the resource. Refresh
//! recomputes the ID locally; import takes a schematic ID and reads the
//! schematic back from the factory. Delete does nothing: schematics are
//! content-addressed and immutable, the factory keeps every one it has seen
//! and other stacks may use the same ID.

use serde::{Deserialize, Serialize};

use crate::framework::{
    CheckFailure, CheckRequest, Context, CreateRequest, CreateResponse, CustomResource, ReadRequest, ReadResponse,
    ResourceError,
};
use crate::schema::PulumiType;
use crate::talos::factory_client::FactoryClient;
use crate::talos::schematic as model;

/// Inputs of `imagefactory:Schematic`.
#[derive(Debug, Clone, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchematicArgs {
    /// The schematic as YAML (or JSON), as the Image Factory takes it, e.g.
    /// `customization: {systemExtensions: {officialExtensions: [siderolabs/qemu-guest-agent]}}`.
    /// Unset or empty: the vanilla schematic. Unknown fields are rejected. It is
    /// normalised to the factory's canonical YAML; changing it replaces the resource.
    #[pulumi(replace_on_changes)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schematic: Option<String>,
}

/// A Talos Image Factory schematic, registered with the configured factory, and its ID
/// (computed locally, so known at preview). Deleting it does nothing: schematics are
/// content-addressed and the factory keeps them.
#[derive(Debug, Clone, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase")]
pub struct SchematicState {
    #[serde(flatten)]
    pub args: SchematicArgs,
    /// The schematic ID (64 hexadecimal characters): the SHA-256 of the canonical schematic,
    /// as the factory computes it. Known at preview.
    #[pulumi(always)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schematic_id: Option<String>,
}

/// The `imagefactory:Schematic` resource.
pub struct Schematic;

/// The parsed schematic, its canonical YAML and its ID.
struct Prepared {
    canonical: String,
    id: String,
}

fn prepare(args: &SchematicArgs) -> Result<Prepared, CheckFailure> {
    let parsed = model::Schematic::parse(args.schematic.as_deref().unwrap_or(""))
        .map_err(|e| CheckFailure::new("schematic", e.to_string()))?;
    Ok(Prepared { canonical: parsed.canonical_yaml(), id: parsed.id() })
}

fn state(p: &Prepared) -> SchematicState {
    SchematicState { args: SchematicArgs { schematic: Some(p.canonical.clone()) }, schematic_id: Some(p.id.clone()) }
}

fn is_schematic_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Runs a factory request unless the engine cancels first.
async fn until_cancelled<T>(
    ctx: &Context,
    request: impl std::future::Future<Output = Result<T, crate::talos::factory_client::FactoryError>>,
) -> Result<T, ResourceError> {
    tokio::select! {
        r = request => r.map_err(|e| ResourceError::Failed(e.to_string())),
        () = ctx.cancelled() => Err(ResourceError::Cancelled),
    }
}

impl CustomResource for Schematic {
    const TOKEN: &'static str = "proxmox-talos:imagefactory:Schematic";
    type Args = SchematicArgs;
    type State = SchematicState;

    fn check(&self, _ctx: &Context, req: CheckRequest<'_, SchematicArgs>) -> Result<SchematicArgs, Vec<CheckFailure>> {
        if req.inputs.schematic.is_none() {
            return Ok(req.inputs);
        }
        let prepared = prepare(&req.inputs).map_err(|f| vec![f])?;
        Ok(SchematicArgs { schematic: Some(prepared.canonical) })
    }

    async fn create(
        &self,
        ctx: &Context,
        req: CreateRequest<SchematicArgs>,
    ) -> Result<CreateResponse<SchematicState>, ResourceError> {
        let prepared = prepare(&req.inputs).map_err(|f| ResourceError::Invalid(vec![f]))?;
        if req.preview {
            return Ok(CreateResponse { id: String::new(), state: state(&prepared) });
        }
        let client =
            FactoryClient::new(&ctx.config().image_factory_url()).map_err(|e| ResourceError::Failed(e.to_string()))?;
        ctx.status(&format!("registering schematic {} with the Image Factory at {}", prepared.id, client.base_url()));
        let created = until_cancelled(ctx, client.create_schematic(&prepared.canonical)).await?;
        if created.id != prepared.id {
            return Err(ResourceError::Failed(format!(
                "the Image Factory at {} registered this schematic as {}, but proxmox-talos computes {} for it: \
                 the two disagree on its canonical form, so the ID would not match the factory's images. \
                 Please report this with the schematic YAML",
                client.base_url(),
                created.id,
                prepared.id
            )));
        }
        Ok(CreateResponse { id: prepared.id.clone(), state: state(&prepared) })
    }

    async fn read(
        &self,
        ctx: &Context,
        req: ReadRequest<SchematicArgs, SchematicState>,
    ) -> Result<Option<ReadResponse<SchematicArgs, SchematicState>>, ResourceError> {
        let known = req.inputs.or_else(|| req.state.map(|s| s.args));
        if let Some(inputs) = known {
            // Refresh: the schematic is content-addressed, its ID follows from the inputs.
            let prepared = prepare(&inputs).map_err(|f| ResourceError::Invalid(vec![f]))?;
            return Ok(Some(ReadResponse { id: prepared.id.clone(), inputs, state: state(&prepared) }));
        }
        // Import: the id is a schematic ID the factory knows.
        if !is_schematic_id(&req.id) {
            return Err(ResourceError::Failed(format!(
                "import expects a schematic ID (64 lowercase hexadecimal characters), got {:?}",
                req.id
            )));
        }
        let client =
            FactoryClient::new(&ctx.config().image_factory_url()).map_err(|e| ResourceError::Failed(e.to_string()))?;
        let Some(yaml) = until_cancelled(ctx, client.schematic(&req.id)).await? else { return Ok(None) };
        let inputs = SchematicArgs { schematic: Some(yaml) };
        let prepared = prepare(&inputs).map_err(|f| {
            ResourceError::Failed(format!("the Image Factory's schematic {} cannot be read: {f}", req.id))
        })?;
        if prepared.id != req.id {
            return Err(ResourceError::Failed(format!(
                "the Image Factory at {} returned a schematic for {} whose canonical form proxmox-talos hashes to {}",
                client.base_url(),
                req.id,
                prepared.id
            )));
        }
        let inputs = SchematicArgs { schematic: Some(prepared.canonical.clone()) };
        Ok(Some(ReadResponse { id: prepared.id.clone(), inputs, state: state(&prepared) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn ctx() -> Context {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        Context::new(Arc::default(), Arc::new(crate::framework::context::NullSink), "", rx, None)
    }

    fn args(yaml: Option<&str>) -> SchematicArgs {
        SchematicArgs { schematic: yaml.map(str::to_string) }
    }

    #[test]
    fn check_normalises_and_rejects_unknown_fields_with_their_path() {
        let check = |a| Schematic.check(&ctx(), CheckRequest { name: "s", inputs: a, olds: None, random_seed: &[] });
        let ok = check(args(Some("customization:\n  extraKernelArgs: [a]  # comment\n"))).unwrap();
        assert_eq!(ok.schematic.as_deref(), Some("customization:\n    extraKernelArgs:\n        - a\n"));
        assert_eq!(check(args(None)).unwrap().schematic, None);
        let failures = check(args(Some("customization:\n  systemExtension: {}\n"))).unwrap_err();
        assert_eq!(failures[0].property, "schematic");
        assert!(
            failures[0].reason.starts_with("customization.systemExtension: unknown field"),
            "{}",
            failures[0].reason
        );
    }

    #[tokio::test]
    async fn preview_knows_the_id_without_calling_the_factory() {
        let req = CreateRequest { name: "s".into(), inputs: args(None), preview: true };
        let created = Schematic.create(&ctx(), req).await.unwrap();
        assert_eq!(created.state.schematic_id.as_deref(), Some(model::VANILLA_SCHEMATIC_ID));
        assert_eq!(created.state.args.schematic.as_deref(), Some("customization: {}\n"));
    }

    #[tokio::test]
    async fn a_factory_that_computes_another_id_fails_create_naming_both() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let theirs = "f".repeat(64);
        let body = format!(r#"{{"id":"{theirs}","schematic":"customization: {{}}\n"}}"#);
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 8192];
            let _ = socket.read(&mut request).await;
            let response = format!(
                "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
        });
        let config =
            crate::config::ProviderConfig { image_factory_url: Some(format!("http://{addr}")), ..Default::default() };
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let ctx = Context::new(Arc::new(config), Arc::new(crate::framework::context::NullSink), "", rx, None);
        let req = CreateRequest { name: "s".into(), inputs: args(None), preview: false };
        let e = Schematic.create(&ctx, req).await.err().unwrap();
        let message = e.to_string();
        assert!(matches!(e, ResourceError::Failed(_)), "{message}");
        assert!(message.contains(&theirs) && message.contains(model::VANILLA_SCHEMATIC_ID), "{message}");
    }

    #[tokio::test]
    async fn refresh_recomputes_the_id_and_import_checks_the_id() {
        let inputs = args(Some("customization: {}\n"));
        let req = ReadRequest { id: model::VANILLA_SCHEMATIC_ID.into(), inputs: Some(inputs), state: None };
        let read = Schematic.read(&ctx(), req).await.unwrap().unwrap();
        assert_eq!(read.id, model::VANILLA_SCHEMATIC_ID);
        let req = ReadRequest { id: "not-an-id".into(), inputs: None, state: None };
        let e = Schematic.read(&ctx(), req).await.err().unwrap();
        assert!(e.to_string().contains("64 lowercase hexadecimal"), "{e}");
    }
}
