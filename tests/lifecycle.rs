//! Drives the built plugin over gRPC exactly as the engine does — Handshake,
//! CheckConfig, Configure, Check, Diff, Create (preview, then real), Read,
//! Update, Delete, Invoke — and asserts the wire behaviour: unknowns in preview,
//! secret propagation, check failures with paths, engine logging.

mod support;

use proxmox_talos::rpc::proto::pulumirpc as rpc;
use proxmox_talos::value::{PropertyValue, UNKNOWN};
use support::*;

const URN: &str = "urn:pulumi:dev::homelab::proxmox-talos:machine:Secrets::talos";
const TYPE: &str = "proxmox-talos:machine:Secrets";

fn check_req(news: prost_types::Struct, olds: prost_types::Struct) -> rpc::CheckRequest {
    rpc::CheckRequest {
        urn: URN.into(),
        olds: Some(olds),
        news: Some(news),
        random_seed: vec![7; 32],
        name: "talos".into(),
        r#type: TYPE.into(),
        autonaming: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_lifecycle_over_the_wire() {
    let (engine, logs) = fake_engine().await;
    let plugin = launch(&["--logtostderr", "-v=9", engine.as_str()]);
    let mut c = client(plugin.port).await;

    // Handshake and plugin info.
    let hs = c
        .handshake(rpc::ProviderHandshakeRequest { engine_address: engine.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(hs.accept_secrets && hs.accept_resources);
    let info = c.get_plugin_info(()).await.unwrap().into_inner();
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));

    // CheckConfig: strings from stack config are coerced; bad nested values name their path.
    let bad = c
        .check_config(check_req(
            obj(&[
                ("insecure", s("nope")),
                ("ssh", s(r#"{"nodes":[{"name":"pve","address":"127.0.0.1","port":"x"}]}"#)),
            ]),
            obj(&[]),
        ))
        .await
        .unwrap()
        .into_inner();
    let props_failed: Vec<_> = bad.failures.iter().map(|f| f.property.as_str()).collect();
    assert_eq!(props_failed, vec!["insecure"], "{:?}", bad.failures);
    let bad = c
        .check_config(check_req(obj(&[("ssh", s(r#"{"nodes":[{"name":"pve","address":"a","port":"x"}]}"#))]), obj(&[])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bad.failures[0].property, "ssh.nodes[0].port", "{:?}", bad.failures);
    let ok = c
        .check_config(check_req(obj(&[("insecure", s("true")), ("version", s("0.1.0"))]), obj(&[])))
        .await
        .unwrap()
        .into_inner();
    assert!(ok.failures.is_empty(), "{:?}", ok.failures);

    c.configure(rpc::ConfigureRequest {
        args: Some(obj(&[("imageFactoryUrl", s("https://127.0.0.1:9443")), ("apiToken", secret(s("root@pam!ci=x")))])),
        accept_secrets: true,
        accept_resources: true,
        ..Default::default()
    })
    .await
    .unwrap();

    // Check: failures carry the property path and say what is valid.
    let failed = c.check(check_req(obj(&[("talosVersion", s("banana"))]), obj(&[]))).await.unwrap().into_inner();
    assert_eq!(failed.failures.len(), 1);
    assert_eq!(failed.failures[0].property, "talosVersion");
    assert!(failed.failures[0].reason.contains("v1.12"), "{}", failed.failures[0].reason);
    let failed = c.check(check_req(obj(&[("talosVersoin", s("v1.12"))]), obj(&[]))).await.unwrap().into_inner();
    assert_eq!(failed.failures[0].property, "talosVersoin");
    assert!(failed.failures[0].reason.contains("talosVersion"));
    let failed =
        c.check(check_req(obj(&[("talosVersion", PropertyValue::Number(12.0))]), obj(&[]))).await.unwrap().into_inner();
    assert_eq!(failed.failures[0].property, "talosVersion");

    // Check with an unknown value in preview passes it through.
    let checked =
        c.check(check_req(obj(&[("talosVersion", PropertyValue::Computed)]), obj(&[]))).await.unwrap().into_inner();
    assert!(checked.failures.is_empty());
    assert!(props(checked.inputs)["talosVersion"].is_computed());

    // Preview with an unknown input: the input stays unknown, outputs are unknown (absent).
    let preview = c
        .create(rpc::CreateRequest {
            urn: URN.into(),
            properties: Some(obj(&[("talosVersion", PropertyValue::Computed)])),
            preview: true,
            r#type: TYPE.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let state = props(preview.properties);
    assert!(state["talosVersion"].is_computed());
    assert!(!state.contains_key("machineSecrets"));

    // A secret input stays secret in the outputs.
    let inputs = obj(&[("talosVersion", secret(s("v1.12")))]);
    let checked = c.check(check_req(inputs.clone(), obj(&[]))).await.unwrap().into_inner();
    assert!(checked.failures.is_empty(), "{:?}", checked.failures);
    let checked_inputs = checked.inputs.unwrap();
    assert!(props(Some(checked_inputs.clone()))["talosVersion"].is_secret());

    let preview = c
        .create(rpc::CreateRequest {
            urn: URN.into(),
            properties: Some(checked_inputs.clone()),
            preview: true,
            r#type: TYPE.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let state = props(preview.properties);
    assert!(state["talosVersion"].is_secret());
    assert!(!state.contains_key("machineSecrets"), "no secrets are generated in preview");

    let created = c
        .create(rpc::CreateRequest {
            urn: URN.into(),
            properties: Some(checked_inputs.clone()),
            timeout: 300.0,
            r#type: TYPE.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!created.id.is_empty());
    let state = props(created.properties.clone());
    assert!(state["talosVersion"].is_secret());
    assert!(state["machineSecrets"].is_secret(), "schema-secret outputs are wrapped");
    assert!(state["clientConfiguration"].is_secret());
    assert!(state["talosctlSecretsYaml"].is_secret());
    let talosctl_yaml = state["talosctlSecretsYaml"].unwrap_secrets().as_str().unwrap();
    assert!(talosctl_yaml.starts_with("cluster:\n    id: "), "talosctl layout (4-space indentation)");
    let bundle = state["machineSecrets"].unwrap_secrets().as_object().unwrap();
    let os_cert = bundle["certs"].as_object().unwrap()["os"].as_object().unwrap()["cert"].as_str().unwrap();
    assert!(!os_cert.is_empty());

    // Diff: same inputs → no change; a new talosVersion → an in-place update at that path.
    let diff = |news: prost_types::Struct| rpc::DiffRequest {
        id: created.id.clone(),
        urn: URN.into(),
        olds: created.properties.clone(),
        news: Some(news),
        old_inputs: Some(checked_inputs.clone()),
        r#type: TYPE.into(),
        ..Default::default()
    };
    let same = c.diff(diff(checked_inputs.clone())).await.unwrap().into_inner();
    assert_eq!(same.changes, rpc::diff_response::DiffChanges::DiffNone as i32);
    let changed = c.diff(diff(obj(&[("talosVersion", s("v1.13"))]))).await.unwrap().into_inner();
    assert_eq!(changed.changes, rpc::diff_response::DiffChanges::DiffSome as i32);
    assert!(changed.has_detailed_diff);
    assert_eq!(changed.diffs, vec!["talosVersion"]);
    assert!(changed.replaces.is_empty());
    assert_eq!(changed.detailed_diff["talosVersion"].kind, rpc::property_diff::Kind::Update as i32);
    let mut ignored = diff(obj(&[("talosVersion", s("v1.13"))]));
    ignored.ignore_changes = vec!["talosVersion".into()];
    assert_eq!(c.diff(ignored).await.unwrap().into_inner().changes, rpc::diff_response::DiffChanges::DiffNone as i32);

    // Read (refresh) returns inputs and the same bundle.
    let read = c
        .read(rpc::ReadRequest {
            id: created.id.clone(),
            urn: URN.into(),
            properties: created.properties.clone(),
            inputs: Some(checked_inputs.clone()),
            r#type: TYPE.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.id, created.id);
    assert!(props(read.inputs.clone())["talosVersion"].is_secret());
    assert_eq!(props(read.properties.clone())["machineSecrets"], state["machineSecrets"]);

    // Update never regenerates the bundle.
    let updated = c
        .update(rpc::UpdateRequest {
            id: created.id.clone(),
            urn: URN.into(),
            olds: created.properties.clone(),
            news: Some(obj(&[("talosVersion", s("v1.13"))])),
            old_inputs: Some(checked_inputs.clone()),
            r#type: TYPE.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let new_state = props(updated.properties);
    assert_eq!(new_state["talosVersion"], s("v1.13"));
    assert_eq!(new_state["machineSecrets"], state["machineSecrets"]);

    c.delete(rpc::DeleteRequest {
        id: created.id.clone(),
        urn: URN.into(),
        properties: created.properties.clone(),
        r#type: TYPE.into(),
        ..Default::default()
    })
    .await
    .unwrap();

    // Invoke: results, and failures with paths.
    let id = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";
    let urls = c
        .invoke(rpc::InvokeRequest {
            tok: "proxmox-talos:imagefactory:getUrls".into(),
            args: Some(obj(&[("schematicId", s(id)), ("talosVersion", s("v1.12.4")), ("platform", s("nocloud"))])),
            preview: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(urls.failures.is_empty(), "{:?}", urls.failures);
    let result = props(urls.r#return);
    let disk = result["urls"].as_object().unwrap()["diskImage"].as_str().unwrap().to_string();
    assert_eq!(
        disk,
        format!("https://127.0.0.1:9443/image/{id}/v1.12.4/nocloud-amd64.raw.xz"),
        "uses the configured factory"
    );
    let bad = c
        .invoke(rpc::InvokeRequest {
            tok: "proxmox-talos:imagefactory:getUrls".into(),
            args: Some(obj(&[("schematicId", s("xyz")), ("talosVersion", s("v1.12.4"))])),
            preview: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bad.failures[0].property, "schematicId");

    // Unknown tokens are clear errors.
    let err =
        c.invoke(rpc::InvokeRequest { tok: "proxmox-talos:nope:get".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);

    // The status line went to the engine, ephemeral and attached to the resource.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !logs
        .messages()
        .iter()
        .any(|m| m.ephemeral && m.urn == URN && m.message.contains("generating Talos machine secrets"))
    {
        assert!(std::time::Instant::now() < deadline, "{:?}", logs.messages());
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let msgs = logs.messages();
    assert!(!msgs.iter().any(|m| m.message.contains("BEGIN")), "no key material in logs");
    let _ = UNKNOWN;
}

#[tokio::test]
async fn get_schema_returns_the_committed_schema_and_sigint_stops_the_plugin() {
    let mut plugin = launch(&[]); // attach mode: no engine address
    let mut c = client(plugin.port).await;
    let schema = c.get_schema(rpc::GetSchemaRequest::default()).await.unwrap().into_inner().schema;
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.json")).unwrap();
    assert_eq!(schema, committed, "schema.json is stale: run `cargo run -- schema > schema.json`");
    c.attach(rpc::PluginAttach { address: "127.0.0.1:1".into() }).await.unwrap();

    let pid = plugin.child.id() as i32;
    // SAFETY-free: use the `kill` command rather than libc.
    std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    let t = std::time::Instant::now();
    loop {
        if let Some(status) = plugin.child.try_wait().unwrap() {
            assert!(status.success(), "clean exit on SIGINT, got {status:?}");
            break;
        }
        assert!(t.elapsed() < std::time::Duration::from_secs(10), "plugin did not stop on SIGINT");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
