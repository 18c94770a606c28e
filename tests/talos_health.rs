//! `cluster:getHealth` and `cluster:Kubeconfig` against lab Talos nodes (one
//! control plane with the VIP, one worker, `cni: none`), configured and
//! bootstrapped in the test with the provider's Talos API client:
//! - getHealth over the wire (as the engine invokes it): before bootstrap it
//!   times out naming etcd and the node, with progress lines on the way (and
//!   so does a Kubeconfig Create, which a worker node fails at once);
//!   other credentials, a reader role and an absent node fail saying so;
//!   after bootstrap it passes, Kubernetes API `/readyz` included;
//! - Kubeconfig through the real `pulumi` CLI: `up` waits until the test
//!   bootstraps the cluster mid-wait, the outputs are secrets in the state,
//!   the kubeconfig's server answers `/version` with its CA, a second
//!   preview changes nothing, and a renewal window wider than the
//!   certificate's life makes preview show an update and `up` fetch anew.

mod support;

use std::time::{Duration, Instant};

use base64::Engine as _;
use proxmox_talos::rpc::proto::pulumirpc as rpc;
use proxmox_talos::talos::config::MachineType;
use proxmox_talos::talos::secrets::ClientConfiguration;
use proxmox_talos::value::{PropertyMap, PropertyValue};
use support::pulumi::Stack;
use support::talos::{bootstrap, client_with_roles, cluster_secrets, TalosLab};
use support::*;

const GET_HEALTH: &str = "proxmox-talos:cluster:getHealth";
const KUBECONFIG: &str = "proxmox-talos:cluster:Kubeconfig";
const KUBECONFIG_URN: &str = "urn:pulumi:dev::health::proxmox-talos:cluster:Kubeconfig::kubeconfig";

fn client_value(c: &ClientConfiguration) -> PropertyValue {
    PropertyValue::Object(map(&[
        ("caCertificate", s(&c.ca_certificate)),
        ("clientCertificate", s(&c.client_certificate)),
        ("clientKey", secret(s(&c.client_key))),
    ]))
}

fn list(items: &[String]) -> PropertyValue {
    PropertyValue::Array(items.iter().map(|i| s(i)).collect())
}

/// getHealth arguments for control plane `.10`, worker `.20` (plus `extra_workers`), endpoint `.10`.
fn health_args(lab: &TalosLab, client: &ClientConfiguration, read: &str, extra_workers: &[u8]) -> prost_types::Struct {
    let mut workers = vec![lab.ip(20).to_string()];
    workers.extend(extra_workers.iter().map(|w| lab.ip(*w).to_string()));
    obj(&[
        ("clientConfiguration", client_value(client)),
        ("controlPlaneNodes", list(&[lab.ip(10).to_string()])),
        ("workerNodes", list(&workers)),
        ("endpoints", list(&[lab.ip(10).to_string()])),
        ("timeouts", PropertyValue::Object(map(&[("read", s(read))]))),
    ])
}

async fn invoke(
    c: &mut rpc::resource_provider_client::ResourceProviderClient<tonic::transport::Channel>,
    args: prost_types::Struct,
) -> Result<PropertyMap, tonic::Status> {
    let reply = c.invoke(rpc::InvokeRequest { tok: GET_HEALTH.into(), args: Some(args), preview: false }).await?;
    let reply = reply.into_inner();
    assert!(reply.failures.is_empty(), "{:?}", reply.failures);
    Ok(props(reply.r#return))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_kubeconfig_wait_for_etcd_and_name_what_is_wrong() {
    let lab = TalosLab::start(100, 300).await;
    let (bundle, client) = cluster_secrets().unwrap();
    let cp = lab.configured_node(100, MachineType::ControlPlane, 10, 5, &bundle, &client).await;
    lab.configured_node(200, MachineType::Worker, 20, 5, &bundle, &client).await;

    let (engine, logs) = fake_engine().await;
    let plugin = launch(&[engine.as_str()]);
    let mut c = support::client(plugin.port).await;
    c.configure(rpc::ConfigureRequest { args: Some(obj(&[])), accept_secrets: true, ..Default::default() })
        .await
        .unwrap();

    // Check failures name the argument before anything is called.
    let bad = c
        .invoke(rpc::InvokeRequest {
            tok: GET_HEALTH.into(),
            args: Some(obj(&[
                ("clientConfiguration", client_value(&client)),
                ("controlPlaneNodes", list(&[])),
                ("endpoints", list(&["https://127.0.0.1:6443".to_string()])),
            ])),
            preview: false,
        })
        .await
        .unwrap()
        .into_inner();
    let paths: Vec<&str> = bad.failures.iter().map(|f| f.property.as_str()).collect();
    assert_eq!(paths, ["controlPlaneNodes", "endpoints[0]"], "{:?}", bad.failures);

    // Not bootstrapped: etcd is not healthy on the control plane; the wait reports it as it goes.
    let started = Instant::now();
    let err = invoke(&mut c, health_args(&lab, &client, "3s", &[])).await.unwrap_err();
    let cp_ip = lab.ip(10).to_string();
    assert!(started.elapsed() >= Duration::from_secs(3), "gave up early: {}", err.message());
    let message = err.message();
    assert!(message.contains("timed out after 3s waiting for etcd to be healthy"), "{message}");
    assert!(message.contains(&format!("node {cp_ip}")) && message.contains("etcd is Preparing"), "{message}");
    let progress: Vec<String> =
        logs.messages().into_iter().filter(|m| m.ephemeral).map(|m| m.message).collect::<Vec<_>>();
    assert!(
        progress.iter().any(|m| m.starts_with("cluster health: waiting for etcd to be healthy: node ")),
        "{progress:?}"
    );

    // Another cluster's credentials: the node's certificate is not from that CA.
    let (_, foreign) = cluster_secrets().unwrap();
    let err = invoke(&mut c, health_args(&lab, &foreign, "1s", &[])).await.unwrap_err();
    let message = err.message();
    assert!(message.contains("apid to be ready") && message.contains(&cp_ip), "{message}");
    assert!(message.contains("not signed by the client configuration's CA"), "{message}");
    assert!(!message.contains("BEGIN") && message.len() < 600, "{message}");

    // Kubeconfig before bootstrap: Create waits for etcd with progress lines, then times out
    // naming the stage and the node; a worker fails at once.
    let create = |node: String, timeout: &str| rpc::CreateRequest {
        urn: KUBECONFIG_URN.into(),
        properties: Some(obj(&[
            ("clientConfiguration", client_value(&client)),
            ("node", s(&node)),
            ("timeouts", PropertyValue::Object(map(&[("create", s(timeout))]))),
        ])),
        r#type: KUBECONFIG.into(),
        name: "kubeconfig".into(),
        ..Default::default()
    };
    let err = c.create(create(cp_ip.clone(), "2s")).await.unwrap_err();
    let message = err.message();
    assert!(
        message.contains(&format!(
            "timed out after 2s waiting for the cluster to be bootstrapped (etcd to have a member) on {cp_ip}"
        )),
        "{message}"
    );
    let progress: Vec<String> =
        logs.messages().into_iter().filter(|m| m.ephemeral && m.urn == KUBECONFIG_URN).map(|m| m.message).collect();
    assert!(
        progress.iter().any(|m| m.starts_with(&format!(
            "kubeconfig: waiting for the cluster to be bootstrapped (etcd to have a member) on {cp_ip}"
        ))),
        "{progress:?}"
    );
    let started = Instant::now();
    let err = c.create(create(lab.ip(20).to_string(), "30s")).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(20), "a worker never becomes a control plane");
    assert!(err.message().contains("is it a control-plane node?"), "{}", err.message());

    bootstrap(&cp).await;

    // A node that does not exist: apid is not ready on it, through the endpoint.
    let err = invoke(&mut c, health_args(&lab, &client, "2s", &[30])).await.unwrap_err();
    let message = err.message();
    assert!(message.contains(&format!("apid to be ready: node {}", lab.ip(30))), "{message}");
    assert!(message.contains("connection refused"), "{message}");

    // A reader may run the Talos checks, but not fetch the kubeconfig for the Kubernetes check:
    // that fails at once, naming the role.
    let reader = client_with_roles(&bundle, &["os:reader"]);
    let started = Instant::now();
    let err = invoke(&mut c, health_args(&lab, &reader, "30s", &[])).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(20), "a role cannot change by waiting");
    assert!(err.message().contains("not authorized") && err.message().contains("os:reader"), "{}", err.message());
    let mut skip = health_args(&lab, &reader, "30s", &[]);
    skip.fields.insert("skipKubernetesChecks".into(), prost_types::Value::from(true));
    let passed = invoke(&mut c, skip).await.unwrap();
    assert_eq!(passed["skipKubernetesChecks"], PropertyValue::Bool(true));
    assert!(!passed.contains_key("kubernetesEndpoint"));

    // Bootstrapped: every check passes, the Kubernetes API on the VIP included (no CNI needed).
    let passed = invoke(&mut c, health_args(&lab, &client, "30s", &[])).await.unwrap();
    assert_eq!(passed["id"], s("cluster_health"));
    assert_eq!(passed["kubernetesEndpoint"], s(&format!("https://{}:6443", lab.ip(5))));
    let checks: Vec<String> = match &passed["checks"] {
        PropertyValue::Array(a) => a.iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect(),
        other => panic!("checks: {other:?}"),
    };
    assert_eq!(checks.first().map(String::as_str), Some("apid to be ready"));
    assert!(checks.contains(&"etcd members to be consistent across nodes".to_string()), "{checks:?}");
    assert_eq!(checks.last().map(String::as_str), Some("the Kubernetes API to be ready (/readyz)"));
    assert!(!logs.messages().iter().any(|m| m.message.contains("BEGIN") || m.message.contains("LS0t")));
}

const KUBECONFIG_PROGRAM: &str = r#"name: talos-kubeconfig
runtime: yaml
plugins:
  providers:
    - name: proxmox-talos
      path: ../../target/debug
config:
  node:
    type: string
  caCertificate:
    type: string
  clientCertificate:
    type: string
  clientKey:
    type: string
  renewal:
    type: string
    default: 720h
resources:
  kubeconfig:
    type: proxmox-talos:cluster:Kubeconfig
    properties:
      clientConfiguration:
        caCertificate: ${caCertificate}
        clientCertificate: ${clientCertificate}
        clientKey: ${clientKey}
      node: ${node}
      certificateRenewalDuration: ${renewal}
      timeouts:
        create: 60s
        update: 60s
outputs:
  kubeconfigRaw: ${kubeconfig.kubeconfigRaw}
  host: ${kubeconfig.kubernetesClientConfiguration.host}
  caCertificate: ${kubeconfig.kubernetesClientConfiguration.caCertificate}
  clientKey: ${kubeconfig.kubernetesClientConfiguration.clientKey}
"#;

fn decode(b64: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
}

/// The resource's outputs in `pulumi stack export` (secrets left encrypted).
fn exported_outputs(stack: &Stack) -> serde_json::Value {
    let export: serde_json::Value = serde_json::from_str(&stack.ok(&["stack", "export"])).unwrap();
    let resources = export["deployment"]["resources"].as_array().unwrap().clone();
    let kubeconfig = resources.iter().find(|r| r["type"] == "proxmox-talos:cluster:Kubeconfig").unwrap();
    kubeconfig["outputs"].clone()
}

#[test]
fn kubeconfig_waits_for_bootstrap_and_renews_inside_its_window() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let lab = rt.block_on(TalosLab::start(100, 300));
    let (bundle, client) = cluster_secrets().unwrap();
    let cp = rt.block_on(lab.configured_node(100, MachineType::ControlPlane, 10, 5, &bundle, &client));

    let stack = Stack::from_program(KUBECONFIG_PROGRAM, vec![]);
    stack.set("node", &lab.ip(10).to_string());
    stack.set("caCertificate", &client.ca_certificate);
    stack.set("clientCertificate", &client.client_certificate);
    stack.ok(&["config", "set", "--secret", "clientKey", &client.client_key]);

    // `up` waits for the cluster to be bootstrapped; the test bootstraps it meanwhile.
    let mut up = proxmox_talos_lab::deadline::Running::start(&mut stack.command(&["up", "--yes", "--skip-preview"]))
        .unwrap_or_else(|e| panic!("{e}"));
    let waiting_since = Instant::now();
    while waiting_since.elapsed() < Duration::from_secs(4) {
        assert!(up.try_status().is_none(), "up finished before the cluster was bootstrapped\n{}", up.printed());
        std::thread::sleep(Duration::from_millis(200));
    }
    rt.block_on(bootstrap(&cp));
    let out = up.finish_within(stack.deadline).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "up failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let outputs = stack.outputs();
    let raw = outputs["kubeconfigRaw"].as_str().unwrap().to_string();
    let vip = format!("https://{}:6443", lab.ip(5));
    assert!(raw.contains(&format!("server: {vip}")) && raw.contains("current-context: admin@lab"), "{raw}");
    let creds = &outputs;
    assert_eq!(creds["host"], vip.as_str());
    assert_eq!(creds["caCertificate"], bundle.certs.k8s.cert.as_str());
    let key = creds["clientKey"].as_str().unwrap().to_string();
    assert!(String::from_utf8(decode(&key)).unwrap().contains("PRIVATE KEY"));

    // The kubeconfig works: its server answers /version over TLS verified with its CA.
    let ca = reqwest::Certificate::from_pem(&decode(creds["caCertificate"].as_str().unwrap())).unwrap();
    let version: serde_json::Value = rt.block_on(async {
        let https = reqwest::Client::builder().add_root_certificate(ca).no_proxy().build().unwrap();
        let body = https.get(format!("{vip}/version")).send().await.unwrap().text().await.unwrap();
        serde_json::from_str(&body).unwrap()
    });
    assert_eq!(version["gitVersion"], "v1.35.0");

    // Secrets in the state: the kubeconfig and the client key are encrypted, never plain.
    let export = stack.ok(&["stack", "export"]);
    assert!(!export.contains(&key) && !export.contains("current-context"), "plain secrets in the state");
    let state = exported_outputs(&stack);
    assert!(state["kubeconfigRaw"]["ciphertext"].is_string(), "{}", state["kubeconfigRaw"]);
    let client_key = &state["kubernetesClientConfiguration"]["clientKey"];
    let whole = &state["kubernetesClientConfiguration"]["ciphertext"];
    assert!(client_key["ciphertext"].is_string() || whole.is_string(), "{}", state["kubernetesClientConfiguration"]);

    // Nothing to do while the certificate is far from expiry.
    stack.ok(&["preview", "--expect-no-changes"]);

    // A window longer than the certificate's year: renewal is due, preview shows it, up fetches anew.
    stack.set("renewal", "9000h");
    let preview = stack.ok(&["preview", "--diff"]);
    assert!(preview.contains("kubeconfigRaw"), "{preview}");
    stack.ok(&["up", "--yes", "--skip-preview"]);
    let renewed = stack.outputs()["kubeconfigRaw"].as_str().unwrap().to_string();
    assert_ne!(renewed, raw, "a renewal fetches a new kubeconfig (a new client certificate)");

    // Back to 30 days: only the input changes; the kubeconfig is kept, and then nothing is due.
    stack.set("renewal", "720h");
    stack.ok(&["up", "--yes", "--skip-preview"]);
    assert_eq!(stack.outputs()["kubeconfigRaw"].as_str().unwrap(), renewed);
    stack.ok(&["preview", "--expect-no-changes"]);

    // Check failures name the property before any call.
    stack.set("renewal", "30d");
    let failed = stack.fails(&["preview"]);
    assert!(failed.contains("certificateRenewalDuration") && failed.contains("unknown unit"), "{failed}");
    stack.set("renewal", "720h");

    stack.ok(&["destroy", "--yes", "--skip-preview"]);
    drop(lab);
}
