//! A resource that is created but fails to initialise must come back as a gRPC
//! error carrying `pulumirpc.ErrorResourceInitFailed` with its id and the state
//! so far (secrets still wrapped), so the engine records it and nothing is
//! orphaned. Uses a test-only resource served in-process by the real server.

mod support;

use std::sync::Arc;

use proxmox_talos::framework::{Context, CreateRequest, CreateResponse, CustomResource, Registry, ResourceError};
use proxmox_talos::rpc::engine_log::EngineLog;
use proxmox_talos::rpc::proto::pulumirpc::{self as rpc, resource_provider_server::ResourceProviderServer};
use proxmox_talos::rpc::server::ProviderService;
use proxmox_talos::rpc::status::init_failed_detail;
use proxmox_talos::schema::PulumiType;
use serde::{Deserialize, Serialize};
use support::*;
use tokio_stream::wrappers::TcpListenerStream;

#[derive(Clone, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase")]
struct VmArgs {
    /// Name.
    name: String,
    /// Password.
    password: Option<String>,
}

#[derive(Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase")]
struct VmState {
    #[serde(flatten)]
    args: VmArgs,
    /// Set once the VM booted.
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_address: Option<String>,
    /// A token, always secret.
    #[pulumi(secret)]
    token: String,
}

/// Created (id 101) but never boots.
struct HalfCreated;

impl CustomResource for HalfCreated {
    const TOKEN: &'static str = "proxmox-talos:test:HalfCreated";
    type Args = VmArgs;
    type State = VmState;

    async fn create(
        &self,
        _ctx: &Context,
        req: CreateRequest<VmArgs>,
    ) -> Result<CreateResponse<VmState>, ResourceError> {
        let state = VmState { args: req.inputs, ip_address: None, token: "t0ps3cret".into() };
        Err(ResourceError::init_failed(
            "101",
            &state,
            vec!["vm 101: the guest agent did not report an address within 5s".into()],
        ))
    }
}

#[tokio::test]
async fn init_failure_returns_partial_state_with_secrets() {
    let service = ProviderService::new(Registry::new().resource(HalfCreated), Arc::new(EngineLog::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ResourceProviderServer::new(service))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let mut c = client(port).await;
    let err = c
        .create(rpc::CreateRequest {
            urn: "urn:pulumi:dev::p::proxmox-talos:test:HalfCreated::vm".into(),
            properties: Some(obj(&[("name", s("vm")), ("password", secret(s("hunter2")))])),
            r#type: "proxmox-talos:test:HalfCreated".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unknown);
    assert!(err.message().contains("guest agent"), "{}", err.message());
    let detail = init_failed_detail(&err).expect("ErrorResourceInitFailed in the status details");
    assert_eq!(detail.id, "101");
    assert_eq!(detail.reasons, vec!["vm 101: the guest agent did not report an address within 5s"]);
    let state = props(detail.properties);
    assert_eq!(state["name"], s("vm"));
    assert!(state["password"].is_secret(), "secret input stays secret in partial state");
    assert!(state["token"].is_secret(), "schema-secret output is wrapped");
    assert!(!state.contains_key("ipAddress"));
}
