//! The lab's Talos nodes, driven as the provider drives real ones: with the
//! provider's own Talos API client (`talos::api_client`), machine secrets,
//! client configuration and machine configurations (`talos::secrets`,
//! `talos::config`).
//!
//! - maintenance mode: insecure TLS, what Talos's maintenance server allows
//!   and refuses, validation errors with Talos's codes and texts;
//! - apply → "reboot" → the node answers on its static address with mutual
//!   TLS; other CAs and roles are refused with clear errors;
//! - bootstrap (not ready yet, once, then AlreadyExists; FailedPrecondition on
//!   a worker), etcd members, services, the kubeconfig tarball and the
//!   Kubernetes API on the VIP after bootstrap;
//! - workers wait for a control plane (trustd); stopping and starting the VM
//!   boots what its disk holds.
//!
//! Each test runs its own lab on its own random loopback subnet, so tests
//! (and other labs on the machine) do not share addresses.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use proxmox_talos::talos::api::machine::apply_configuration_request::Mode;
use proxmox_talos::talos::api_client::{self, Credentials, TalosApiError, TalosClient};
use proxmox_talos::talos::config::MachineType;
use proxmox_talos::talos::secrets::{ClientConfiguration, MachineSecrets};
use proxmox_talos_lab::pve::qemu::guest_address;
use proxmox_talos_lab::talos::pki;
use tonic::Code;

/// The testbed: a lab on a random 127.X.Y.0/24 subnet.
use proxmox_talos_lab::talos_testbed::{cluster_secrets, machine_config, wait_answering, TalosTestbed as Lab};

fn pem_of(b64: &str) -> String {
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
}

/// Connects until the node answers `probe`, or panics after `timeout`.
async fn wait_for(address: Ipv4Addr, credentials: Credentials<'_>, timeout: Duration) -> TalosClient {
    wait_answering(address, credentials, timeout).await.unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until nothing listens at `address` any more.
async fn wait_gone(address: Ipv4Addr, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect((address, api_client::APID_PORT)).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the Talos node at {address} still answers after {timeout:?}");
}

fn status_of(err: TalosApiError) -> (Code, String) {
    match err {
        TalosApiError::Status { code, message, .. } => (code, message),
        other => panic!("expected a gRPC status, got {other}"),
    }
}

/// A control plane VM (vmid 100) taken from maintenance to configured at `.10`.
async fn configured_control_plane(lab: &Lab, bundle: &MachineSecrets, client: &ClientConfiguration) -> TalosClient {
    lab.talos_vm(100, "cp-1");
    let dhcp = guest_address(&lab.lab.state, 100).expect("a DHCP lease");
    let maintenance = wait_for(dhcp, Credentials::Insecure, Duration::from_secs(20)).await;
    let config = machine_config(bundle, MachineType::ControlPlane, lab.ip(10), lab.ip(5), &[]).unwrap();
    maintenance.apply_configuration(&config, Mode::Auto, false).await.unwrap();
    wait_for(lab.ip(10), Credentials::Mutual(client), Duration::from_secs(20)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn maintenance_mode_apply_and_reboot_to_the_static_address() {
    let lab = Lab::start(300, 0).await.unwrap();
    let (bundle, client) = cluster_secrets().unwrap();
    lab.talos_vm(100, "cp-1");
    let node = wait_for(lab.ip(100), Credentials::Insecure, Duration::from_secs(20)).await;
    let status = lab.lab.talos.status();
    assert_eq!(status.len(), 1);
    assert!(status[0].maintenance && status[0].address == Some(lab.ip(100)), "{status:?}");

    // The maintenance server: Disks without credentials, Version refused, no Bootstrap.
    let disks = node.disks().await.unwrap();
    assert_eq!(disks[0].device_name, "/dev/sda");
    assert_eq!(disks[0].size, 8 << 30);
    let (code, message) = status_of(node.version().await.unwrap_err());
    assert_eq!((code, message.as_str()), (Code::Unimplemented, "API is not implemented in maintenance mode"));
    let (code, message) = status_of(node.bootstrap().await.unwrap_err());
    assert_eq!((code, message.as_str()), (Code::Unimplemented, "method Bootstrap not implemented"));
    let (code, message) = status_of(node.read_file(api_client::CONFIG_PATH).await.unwrap_err());
    assert_eq!((code, message.as_str()), (Code::Unimplemented, "method Read not implemented"));

    let config = machine_config(&bundle, MachineType::ControlPlane, lab.ip(10), lab.ip(5), &[]).unwrap();
    // Modes other than REBOOT, AUTO and TRY are refused in maintenance.
    let (code, message) = status_of(node.apply_configuration(&config, Mode::NoReboot, false).await.unwrap_err());
    assert_eq!(code, Code::Unimplemented);
    assert_eq!(message, "apply configuration --mode='no-reboot' is not supported in maintenance mode");
    // An invalid configuration: InvalidArgument with Talos's validation text.
    let wrong_type = config.replacen("type: controlplane", "type: database", 1);
    let (code, message) = status_of(node.apply_configuration(&wrong_type, Mode::Auto, false).await.unwrap_err());
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.starts_with("configuration validation failed: 1 error occurred:"), "{message}");
    assert!(message.contains("* unknown machine type \"database\""), "{message}");
    // An unknown key is a loader error (maintenance: a plain error, so Unknown, as upstream).
    let unknown_key = config.replacen("    token: ", "    tokn: ", 1);
    let (code, message) = status_of(node.apply_configuration(&unknown_key, Mode::Auto, false).await.unwrap_err());
    assert_eq!(code, Code::Unknown);
    assert!(
        message.starts_with("failed to parse config: ") && message.contains("unknown keys found during decoding"),
        "{message}"
    );
    // A dry run changes nothing.
    let dry = node.apply_configuration(&config, Mode::Auto, true).await.unwrap();
    assert!(dry.mode_details.contains("maintenance mode"), "{}", dry.mode_details);
    assert!(lab.lab.talos.status()[0].maintenance);

    // Apply: the answer comes, then the node "reboots" onto its static address.
    let applied = node.apply_configuration(&config, Mode::Auto, false).await.unwrap();
    assert_eq!(applied.mode, Mode::Reboot as i32);
    wait_gone(lab.ip(100), Duration::from_secs(5)).await;
    let secure = wait_for(lab.ip(10), Credentials::Mutual(&client), Duration::from_secs(20)).await;
    let version = secure.version().await.unwrap();
    let info = version.version.unwrap();
    assert_eq!(info.tag, "v1.12.4");
    let platform = version.platform.unwrap();
    assert_eq!((platform.name.as_str(), platform.mode.as_str()), ("nocloud", "cloud"));
    let status = lab.lab.talos.status();
    assert!(!status[0].maintenance && status[0].address == Some(lab.ip(10)), "{status:?}");
    // The guest agent reports the configured address too.
    assert_eq!(guest_address(&lab.lab.state, 100), Some(lab.ip(10)));
    // The disk now holds the configuration; Disks marks it as the system disk.
    assert!(secure.disks().await.unwrap()[0].system_disk);
    assert!(lab.lab.state.read(|m| m.volumes["local-zfs:vm-100-disk-0"].talos.is_some()));
    // Without a client certificate the configured node refuses the handshake.
    let insecure = api_client::connect(&lab.ip(10).to_string(), Credentials::Insecure).await;
    let refused = match insecure {
        Err(e) => e,
        Ok(c) => c.disks().await.unwrap_err(),
    };
    assert!(matches!(refused, TalosApiError::ClientCertificateRefused { .. }), "{refused}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_refuses_other_cas_and_insufficient_roles() {
    let lab = Lab::start(100, 0).await.unwrap();
    let (bundle, client) = cluster_secrets().unwrap();
    let node = configured_control_plane(&lab, &bundle, &client).await;
    let endpoint = lab.ip(10).to_string();
    assert_eq!(node.version().await.unwrap().version.unwrap().tag, "v1.12.4");

    // Credentials of another cluster: the node's certificate is not from that CA.
    let (_, foreign) = cluster_secrets().unwrap();
    let err = api_client::connect(&endpoint, Credentials::Mutual(&foreign)).await.err();
    let err = match err {
        Some(e) => e,
        None => panic!("connected with a foreign CA"),
    };
    assert!(matches!(err, TalosApiError::WrongCa { .. }), "{err}");
    assert!(err.to_string().contains("not signed by the client configuration's CA"), "{err}");

    // The right CA but a client certificate from another CA: the node refuses it.
    let mixed = ClientConfiguration { ca_certificate: client.ca_certificate.clone(), ..foreign };
    let err = match api_client::connect(&endpoint, Credentials::Mutual(&mixed)).await {
        Err(e) => e,
        Ok(c) => c.version().await.unwrap_err(),
    };
    assert!(matches!(err, TalosApiError::ClientCertificateRefused { .. }), "{err}");

    // os:reader may read but not change.
    let ca = pki::Ca::load(&pem_of(&bundle.certs.os.cert), &pem_of(&bundle.certs.os.key)).unwrap();
    let (cert, key) = pki::client_certificate(&ca, &["os:reader"]).unwrap();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let reader = ClientConfiguration {
        ca_certificate: client.ca_certificate.clone(),
        client_certificate: b64(&cert),
        client_key: b64(&key),
    };
    let reader = api_client::connect(&endpoint, Credentials::Mutual(&reader)).await.unwrap();
    reader.version().await.unwrap();
    let config = machine_config(&bundle, MachineType::ControlPlane, lab.ip(10), lab.ip(5), &[]).unwrap();
    let err = reader.apply_configuration(&config, Mode::NoReboot, false).await.unwrap_err();
    assert_eq!(
        err,
        TalosApiError::NotAuthorized { method: "ApplyConfiguration".into(), roles: vec!["os:reader".into()] }
    );
    assert!(err.to_string().contains("not authorized"), "{err}");
    assert_eq!(reader.bootstrap().await.unwrap_err().code(), Some(Code::PermissionDenied));

    // The admin may apply without a reboot when nothing needs one (same CA, type, token).
    let more_sans = config.replacen("certSANs: []", "certSANs:\n        - cp-1.lab", 1);
    let applied = node.apply_configuration(&more_sans, Mode::Auto, false).await.unwrap();
    assert_eq!(applied.mode, Mode::NoReboot as i32);
    assert_eq!(applied.mode_details, "Applied configuration without a reboot");
    // Read serves the configuration in effect (in chunks), to the admin only.
    let running = node.read_file(api_client::CONFIG_PATH).await.unwrap();
    assert_eq!(String::from_utf8(running).unwrap(), more_sans);
    let (code, message) = status_of(node.read_file("/etc/shadow").await.unwrap_err());
    assert_eq!((code, message.as_str()), (Code::Unknown, "open /etc/shadow: no such file or directory"));
    let err = reader.read_file(api_client::CONFIG_PATH).await.unwrap_err();
    assert!(matches!(err, TalosApiError::NotAuthorized { .. }), "{err}");
    // A configuration without a v1alpha1 document is refused once configured.
    let (code, message) = status_of(
        node.apply_configuration("apiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n", Mode::Auto, false)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("doesn't contain v1alpha1 config"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_kubeconfig_and_the_kubernetes_api_on_the_vip() {
    // agent_ms: how long after coming up the node accepts Bootstrap.
    let lab = Lab::start(100, 1500).await.unwrap();
    let (bundle, client) = cluster_secrets().unwrap();
    let node = configured_control_plane(&lab, &bundle, &client).await;
    let (code, message) = status_of(node.bootstrap().await.unwrap_err());
    assert_eq!((code, message.as_str()), (Code::FailedPrecondition, "bootstrap is not available yet"));
    let (code, _) = status_of(
        node.machine()
            .etcd_member_list(node.request(Default::default()))
            .await
            .map_err(|s| node.error("EtcdMemberList", s))
            .unwrap_err(),
    );
    assert_eq!(code, Code::Unavailable);

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match node.bootstrap().await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline && e.code() == Some(Code::FailedPrecondition) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("bootstrap: {e}"),
        }
    }
    let (code, message) = status_of(node.bootstrap().await.unwrap_err());
    assert_eq!((code, message.as_str()), (Code::AlreadyExists, "etcd data directory is not empty"));

    // etcd and services answer like a bootstrapped control plane.
    let members = node.machine().etcd_member_list(node.request(Default::default())).await.unwrap().into_inner();
    let members = &members.messages[0].members;
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].client_urls, vec![format!("https://{}:2379", lab.ip(10))]);
    let services = node.machine().service_list(node.request(())).await.unwrap().into_inner();
    let etcd = services.messages[0].services.iter().find(|s| s.id == "etcd").unwrap();
    assert_eq!(etcd.state, "Running");
    assert!(etcd.health.as_ref().unwrap().healthy);

    // The kubeconfig: cluster server = the endpoint, admin certificate from the Kubernetes CA.
    let kubeconfig = node.kubeconfig().await.unwrap();
    assert!(kubeconfig.contains(&format!("server: https://{}:6443", lab.ip(5))), "{kubeconfig}");
    assert!(kubeconfig.contains("current-context: admin@lab"), "{kubeconfig}");
    let field = |name: &str| {
        let line = kubeconfig.lines().find(|l| l.trim_start().starts_with(name)).unwrap();
        pem_of(line.split_once(": ").unwrap().1.trim())
    };
    assert_eq!(field("certificate-authority-data"), pem_of(&bundle.certs.k8s.cert));
    let cert = pem::parse(field("client-certificate-data")).unwrap();
    assert_eq!(pem::parse(field("client-key-data")).unwrap().tag(), "EC PRIVATE KEY");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pem::parse(pem_of(&bundle.certs.k8s.cert)).unwrap().into_contents().into()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        std::sync::Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .unwrap();
    verifier
        .verify_client_cert(&cert.contents().to_vec().into(), &[], rustls::pki_types::UnixTime::now())
        .expect("the admin certificate chains to the cluster CA");
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.contents()).unwrap();
    let orgs: Vec<&str> = parsed.subject().iter_organization().filter_map(|o| o.as_str().ok()).collect();
    assert_eq!(orgs, vec!["system:masters"]);

    // The VIP answers as the Kubernetes API, with a certificate from the cluster CA.
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem_of(&bundle.certs.k8s.cert).as_bytes()).unwrap())
        .build()
        .unwrap();
    let vip = format!("https://{}:6443", lab.ip(5));
    let deadline = Instant::now() + Duration::from_secs(10);
    let readyz = loop {
        match https.get(format!("{vip}/readyz")).send().await {
            Ok(r) => break r,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{vip}/readyz: {e}"),
        }
    };
    assert_eq!(readyz.status(), 200);
    assert_eq!(readyz.text().await.unwrap(), "ok");
    let version: serde_json::Value = https.get(format!("{vip}/version")).send().await.unwrap().json().await.unwrap();
    assert_eq!(version["gitVersion"], "v1.35.0");
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_wait_for_trustd_and_cannot_bootstrap() {
    let lab = Lab::start(100, 0).await.unwrap();
    let (bundle, client) = cluster_secrets().unwrap();
    lab.talos_vm(200, "worker-1");
    let worker = wait_for(lab.ip(100), Credentials::Insecure, Duration::from_secs(20)).await;
    let config = machine_config(&bundle, MachineType::Worker, lab.ip(20), lab.ip(5), &[]).unwrap();
    worker.apply_configuration(&config, Mode::Auto, false).await.unwrap();
    wait_gone(lab.ip(100), Duration::from_secs(5)).await;
    // No control plane yet: the worker has no apid certificate and does not answer.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lab.lab.talos.status().iter().any(|s| s.error.as_deref().is_some_and(|e| e.contains("trustd"))) {
        assert!(Instant::now() < deadline, "{:?}", lab.lab.talos.status());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(api_client::connect(&lab.ip(20).to_string(), Credentials::Mutual(&client)).await.is_err());

    // Once a control plane of the cluster is up, the worker answers.
    let _cp = configured_control_plane(&lab, &bundle, &client).await;
    let worker = wait_for(lab.ip(20), Credentials::Mutual(&client), Duration::from_secs(20)).await;
    let (code, message) = status_of(worker.bootstrap().await.unwrap_err());
    assert_eq!(
        (code, message.as_str()),
        (Code::FailedPrecondition, "bootstrap can only be performed on a control plane node")
    );
    let (code, message) = status_of(worker.kubeconfig().await.unwrap_err());
    assert_eq!((code, message.as_str()), (Code::Unimplemented, "kubeconfig is only available on control plane nodes"));
    // Through the control plane's endpoint, `node` metadata reaches the worker.
    let via_cp = api_client::connect(&lab.ip(10).to_string(), Credentials::Mutual(&client))
        .await
        .unwrap()
        .with_node(lab.ip(20).to_string());
    let (code, _) = status_of(via_cp.bootstrap().await.unwrap_err());
    assert_eq!(code, Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread")]
async fn restarts_reboots_staged_configurations_and_resets_follow_the_disk() {
    let lab = Lab::start(100, 0).await.unwrap();
    let (bundle, client) = cluster_secrets().unwrap();
    let node = configured_control_plane(&lab, &bundle, &client).await;
    drop(node);

    // Stopping the VM takes the node down; starting it boots the configuration on its disk.
    lab.stop_vm(100);
    wait_gone(lab.ip(10), Duration::from_secs(5)).await;
    assert!(lab.lab.talos.status().is_empty());
    lab.start_vm(100);
    let node = wait_for(lab.ip(10), Credentials::Mutual(&client), Duration::from_secs(20)).await;
    node.version().await.unwrap();
    assert!(!lab.lab.talos.status()[0].maintenance);

    // STAGED waits for the next reboot; Reboot brings it (here: a new static address).
    let moved = machine_config(&bundle, MachineType::ControlPlane, lab.ip(11), lab.ip(5), &[]).unwrap();
    let staged = node.apply_configuration(&moved, Mode::Staged, false).await.unwrap();
    assert_eq!(staged.mode, Mode::Staged as i32);
    assert_eq!(staged.mode_details, "Staged configuration to be applied after the next reboot");
    // The staged configuration is what the node's config file holds from now on.
    assert_eq!(node.read_file(api_client::CONFIG_PATH).await.unwrap(), moved.as_bytes());
    node.version().await.unwrap();
    let boot_id = |c: TalosClient| async move { c.read_file("/proc/sys/kernel/random/boot_id").await.unwrap() };
    let booted = boot_id(node.clone()).await;
    assert_eq!(booted.len(), 37, "a UUID and a newline: {booted:?}");
    let reboot = node.machine().reboot(node.request(Default::default())).await.unwrap().into_inner();
    assert!(!reboot.messages[0].actor_id.is_empty());
    wait_gone(lab.ip(10), Duration::from_secs(5)).await;
    let node = wait_for(lab.ip(11), Credentials::Mutual(&client), Duration::from_secs(20)).await;
    assert_ne!(boot_id(node.clone()).await, booted, "a new boot ID after the reboot");

    // The cluster health check streams its progress once etcd runs.
    node.bootstrap().await.unwrap();
    let mut progress = node
        .cluster()
        .health_check(node.request(proxmox_talos::talos::api::cluster::HealthCheckRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let mut lines = Vec::new();
    while let Some(p) = progress.message().await.unwrap() {
        lines.push(p.message);
    }
    assert!(lines.iter().any(|l| l == "waiting for apid to be ready: OK"), "{lines:?}");

    // Reset wipes STATE and EPHEMERAL and reboots into maintenance on the DHCP address.
    let reset = proxmox_talos::talos::api::machine::ResetRequest { graceful: true, reboot: true, ..Default::default() };
    node.machine().reset(node.request(reset)).await.unwrap();
    wait_gone(lab.ip(11), Duration::from_secs(5)).await;
    let dhcp = guest_address(&lab.lab.state, 100).unwrap();
    assert_eq!(dhcp, lab.ip(100));
    let maintenance = wait_for(dhcp, Credentials::Insecure, Duration::from_secs(20)).await;
    assert!(lab.lab.talos.status()[0].maintenance);
    assert!(lab.lab.state.read(|m| m.volumes["local-zfs:vm-100-disk-0"].talos.is_none()));
    let err = maintenance.machine().reset(maintenance.request(Default::default())).await.unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::Unimplemented, "API is not implemented in maintenance mode"));

    // Reset without reboot powers the VM off.
    let config = machine_config(&bundle, MachineType::ControlPlane, lab.ip(10), lab.ip(5), &[]).unwrap();
    maintenance.apply_configuration(&config, Mode::Auto, false).await.unwrap();
    let node = wait_for(lab.ip(10), Credentials::Mutual(&client), Duration::from_secs(20)).await;
    let reset =
        proxmox_talos::talos::api::machine::ResetRequest { graceful: true, reboot: false, ..Default::default() };
    node.machine().reset(node.request(reset)).await.unwrap();
    wait_gone(lab.ip(10), Duration::from_secs(5)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while lab.lab.state.read(|m| m.vms[&100].running) {
        assert!(Instant::now() < deadline, "the VM still runs after a reset without reboot");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
