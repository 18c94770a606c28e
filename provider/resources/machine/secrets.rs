//! `machine:Secrets`: the Talos secrets bundle of a cluster (CAs, keys, tokens)
//! and the admin client configuration. Generated once, locally; an update never
//! regenerates it (changing `talosVersion` only records the new contract), and the
//! admin client certificate is renewed from the same CA when under 30 days
//! remain: preview shows it as an update (`due_changes`) and a plain `up` renews it. Import takes the path of a `talosctl gen secrets` YAML file, and the
//! same YAML shape is exported as `talosctlSecretsYaml`.

use serde::{Deserialize, Serialize};

use crate::framework::{
    CheckFailure, CheckRequest, Context, CreateRequest, CreateResponse, CustomResource, ReadRequest, ReadResponse,
    ResourceError, UpdateRequest,
};
use crate::schema::PulumiType;
use crate::talos::secrets::{self as talos, ClientConfiguration, MachineSecrets, SystemClock, VersionContract};

/// Talos version contract used when none is given.
pub const DEFAULT_TALOS_VERSION: &str = "v1.12";

/// Inputs of `machine:Secrets`.
#[derive(Debug, Clone, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretsArgs {
    /// Talos version contract the secrets are generated for, e.g. `v1.12` (default). Changing it
    /// later keeps the secrets.
    #[pulumi(default = "\"v1.12\"")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub talos_version: Option<String>,
}

/// A Talos secrets bundle and the admin client configuration derived from it.
#[derive(Debug, Clone, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase")]
pub struct SecretsState {
    #[serde(flatten)]
    pub args: SecretsArgs,
    /// The secrets bundle: cluster identity, bootstrap tokens and every CA.
    #[pulumi(secret, always)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_secrets: Option<MachineSecrets>,
    /// The admin (`os:admin`) client configuration for talosctl.
    #[pulumi(secret, always)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_configuration: Option<ClientConfiguration>,
    /// The secrets bundle as a `talosctl gen secrets` YAML file, byte for byte as talosctl
    /// writes it. Write it to a file (e.g. `secrets.yaml`) to generate machine configurations
    /// with `talosctl gen config <cluster> <endpoint> --with-secrets secrets.yaml`.
    #[pulumi(secret, always)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub talosctl_secrets_yaml: Option<String>,
}

impl SecretsState {
    /// The state for a known bundle; the talosctl export is derived from it.
    fn known(
        args: SecretsArgs,
        secrets: MachineSecrets,
        client: Option<ClientConfiguration>,
    ) -> Result<Self, ResourceError> {
        let yaml = talos::to_talosctl_yaml(&secrets).map_err(|e| ResourceError::Failed(e.to_string()))?;
        Ok(Self {
            args,
            machine_secrets: Some(secrets),
            client_configuration: client,
            talosctl_secrets_yaml: Some(yaml),
        })
    }
}

/// The `machine:Secrets` resource.
pub struct Secrets;

fn contract(args: &SecretsArgs) -> Result<VersionContract, CheckFailure> {
    let v = args.talos_version.as_deref().unwrap_or(DEFAULT_TALOS_VERSION);
    VersionContract::parse(v).map_err(|e| CheckFailure::new("talosVersion", e.to_string()))
}

/// The resource id: a fingerprint of the bundle. Ids are stored in plain text, so it
/// must not be (or reveal) any secret value such as the cluster id.
fn resource_id(secrets: &MachineSecrets) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(secrets.certs.os.cert.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("talos-secrets-{hex}")
}

/// Generation is CPU-bound (an RSA-4096 key): keep it off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, talos::SecretsError> + Send + 'static,
) -> Result<T, ResourceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ResourceError::Failed(format!("secret generation stopped: {e}")))?
        .map_err(|e| ResourceError::Failed(e.to_string()))
}

/// The client configuration, renewed when it is close to expiry.
async fn renewed(
    ctx: &Context,
    secrets: &MachineSecrets,
    current: Option<ClientConfiguration>,
) -> Result<ClientConfiguration, ResourceError> {
    let now = time::OffsetDateTime::now_utc();
    match current {
        Some(c)
            if !talos::client_certificate_needs_renewal(&c, now, talos::CLIENT_CERTIFICATE_RENEWAL_THRESHOLD_DAYS) =>
        {
            Ok(c)
        }
        current => {
            if current.is_some() {
                ctx.log(
                    crate::framework::Severity::Info,
                    "renewing the Talos admin client certificate (under 30 days left)",
                );
            }
            let secrets = secrets.clone();
            blocking(move || talos::client_configuration(&secrets, &SystemClock)).await
        }
    }
}

impl CustomResource for Secrets {
    const TOKEN: &'static str = "proxmox-talos:machine:Secrets";
    type Args = SecretsArgs;
    type State = SecretsState;

    fn check(&self, _ctx: &Context, req: CheckRequest<'_, SecretsArgs>) -> Result<SecretsArgs, Vec<CheckFailure>> {
        contract(&req.inputs).map_err(|f| vec![f])?;
        Ok(req.inputs)
    }

    /// The admin client certificate inside its renewal window (under 30 days left) shows as an
    /// update in every preview, and a plain `up` renews it (as Kubeconfig does): waiting for a
    /// `refresh` would let it expire.
    fn due_changes(&self, state: &SecretsState, _inputs: &SecretsArgs) -> Vec<String> {
        let now = time::OffsetDateTime::now_utc();
        match &state.client_configuration {
            Some(c)
                if talos::client_certificate_needs_renewal(
                    c,
                    now,
                    talos::CLIENT_CERTIFICATE_RENEWAL_THRESHOLD_DAYS,
                ) =>
            {
                vec!["clientConfiguration".into()]
            }
            _ => Vec::new(),
        }
    }

    async fn create(
        &self,
        ctx: &Context,
        req: CreateRequest<SecretsArgs>,
    ) -> Result<CreateResponse<SecretsState>, ResourceError> {
        let contract = contract(&req.inputs).map_err(|f| ResourceError::Invalid(vec![f]))?;
        if req.preview {
            return Ok(CreateResponse {
                id: String::new(),
                state: SecretsState {
                    args: req.inputs,
                    machine_secrets: None,
                    client_configuration: None,
                    talosctl_secrets_yaml: None,
                },
            });
        }
        ctx.status("generating Talos machine secrets");
        let secrets = blocking(move || talos::generate(contract, &SystemClock, &mut rand_core::OsRng)).await?;
        let client = renewed(ctx, &secrets, None).await?;
        Ok(CreateResponse { id: resource_id(&secrets), state: SecretsState::known(req.inputs, secrets, Some(client))? })
    }

    async fn read(
        &self,
        ctx: &Context,
        req: ReadRequest<SecretsArgs, SecretsState>,
    ) -> Result<Option<ReadResponse<SecretsArgs, SecretsState>>, ResourceError> {
        let (inputs, secrets, client) = match (req.inputs, req.state) {
            (Some(inputs), Some(state)) => (inputs, state.machine_secrets, state.client_configuration),
            _ => {
                // Import: the id is the path of a `talosctl gen secrets` file.
                let text = std::fs::read_to_string(&req.id).map_err(|e| {
                    ResourceError::Failed(format!(
                        "import expects the path of a `talosctl gen secrets` YAML file as the id; reading {:?}: {e}",
                        req.id
                    ))
                })?;
                let secrets = talos::from_talosctl_yaml(&text).map_err(|e| ResourceError::Failed(e.to_string()))?;
                let version = talos::import_contract(&secrets).to_string();
                (SecretsArgs { talos_version: Some(version) }, Some(secrets), None)
            }
        };
        let Some(secrets) = secrets else { return Ok(None) };
        let client = renewed(ctx, &secrets, client).await?;
        Ok(Some(ReadResponse {
            id: resource_id(&secrets),
            inputs: inputs.clone(),
            state: SecretsState::known(inputs, secrets, Some(client))?,
        }))
    }

    async fn update(
        &self,
        ctx: &Context,
        req: UpdateRequest<SecretsArgs, SecretsState>,
    ) -> Result<SecretsState, ResourceError> {
        contract(&req.inputs).map_err(|f| ResourceError::Invalid(vec![f]))?;
        let old = req.old_state;
        let Some(secrets) = old.machine_secrets else {
            return Err(ResourceError::Failed(
                "the recorded state has no secrets bundle; replace this resource".into(),
            ));
        };
        let client = if req.preview {
            old.client_configuration
        } else {
            Some(renewed(ctx, &secrets, old.client_configuration).await?)
        };
        SecretsState::known(req.inputs, secrets, client)
    }
}
