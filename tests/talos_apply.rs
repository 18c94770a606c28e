//! `machine:ConfigurationApply` and `machine:Bootstrap` driven directly (their
//! `CustomResource` methods, with a real `Context`) against lab Talos nodes:
//!
//! - maintenance → configured on the static address, with progress lines;
//!   Read without and with drift (a configuration applied on the node
//!   directly); updates in place (the node moved to its static address is the
//!   same machine); Delete with `onDestroy.reset` back to maintenance, after
//!   which Read finds the configuration gone;
//! - a connection dropped in the middle of the maintenance apply (a proxy cuts
//!   the node's answer) is confirmed on the static address;
//! - errors that say which: another cluster's credentials, a node that never
//!   answers (within the timeout), a configuration the node refuses;
//! - Bootstrap retried until the node is ready, then idempotent; a worker fails;
//! - scale-down: destroyed control planes leave etcd (or, powered off, are
//!   removed through another), the last member only with the Bootstrap gone.
//!
//! Each test runs its own lab on a random loopback subnet. The CLI flow is
//! `tests/pulumi_talos_apply.rs`.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proxmox_talos::framework::{
    CheckRequest, Context, CreateRequest, CustomResource, DeleteRequest, ReadRequest, ResourceError, UpdateRequest,
};
use proxmox_talos::resources::machine::bootstrap::{Bootstrap, BootstrapArgs, BootstrapState};
use proxmox_talos::resources::machine::configuration_apply::{
    ConfigurationApply, ConfigurationApplyArgs, ConfigurationApplyState, OnDestroy,
};
use proxmox_talos::resources::machine::timeouts::Timeouts;
use proxmox_talos::talos::api::machine;
use proxmox_talos::talos::api::machine::apply_configuration_request::Mode;
use proxmox_talos::talos::api_client::{self, Credentials, BOOT_ID_PATH, CONFIG_PATH};
use proxmox_talos::talos::config::MachineType;
use proxmox_talos::talos::secrets::ClientConfiguration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use proxmox_talos_lab::talos_testbed::{cluster_secrets, machine_config, TalosTestbed as Lab};

fn context(sink: Arc<support::Sink>) -> Context {
    // Nothing cancels; the sender must live (a dropped one reads as "cancelled").
    let (tx, rx) = tokio::sync::watch::channel(false);
    std::mem::forget(tx);
    Context::new(Arc::default(), sink, "urn:pulumi:test::talos::proxmox-talos:machine:ConfigurationApply::a", rx, None)
}

fn apply_args(
    client: &ClientConfiguration,
    config: String,
    node: &str,
    create_timeout: &str,
) -> ConfigurationApplyArgs {
    ConfigurationApplyArgs {
        client_configuration: client.clone(),
        machine_configuration_input: config,
        node: node.to_string(),
        endpoint: None,
        config_patches: Some(vec!["machine:\n  certSANs:\n    - cp.lab\n".into()]),
        apply_mode: None,
        on_destroy: Some(OnDestroy { reset: Some(true), graceful: Some(true), reboot: Some(true), leave_etcd: None }),
        installer_image: None,
        kubernetes_version: None,
        rollout: None,
        timeouts: Some(Timeouts {
            create: Some(create_timeout.into()),
            update: Some("30s".into()),
            delete: Some("30s".into()),
        }),
    }
}

fn check(ctx: &Context, args: ConfigurationApplyArgs) -> ConfigurationApplyArgs {
    ConfigurationApply.check(ctx, CheckRequest { name: "a", inputs: args, olds: None, random_seed: &[] }).unwrap()
}

async fn create(
    ctx: &Context,
    args: ConfigurationApplyArgs,
) -> Result<(String, ConfigurationApplyState), ResourceError> {
    let r = ConfigurationApply
        .create(ctx, CreateRequest { name: "a".into(), inputs: check(ctx, args), preview: false })
        .await?;
    Ok((r.id, r.state))
}

async fn running(address: Ipv4Addr, client: &ClientConfiguration) -> String {
    let c = api_client::connect(&address.to_string(), Credentials::Mutual(client)).await.unwrap();
    String::from_utf8(c.read_file(CONFIG_PATH).await.unwrap()).unwrap()
}

async fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_read_drift_update_and_reset() {
    let lab = Lab::start(300, 0).await.unwrap();
    let (bundle, client) = cluster_secrets().unwrap();
    let dhcp = lab.talos_vm(100, &format!("talos-{}", 100));
    let sink = Arc::new(support::Sink::default());
    let ctx = context(sink.clone());
    let base = machine_config(&bundle, MachineType::ControlPlane, lab.ip(10), lab.ip(5), &[]).unwrap();
    let args = apply_args(&client, base.clone(), &dhcp.to_string(), "60s");

    // Preview renders the configuration without touching the node.
    let preview = ConfigurationApply
        .create(&ctx, CreateRequest { name: "a".into(), inputs: args.clone(), preview: true })
        .await
        .unwrap();
    let rendered = preview.state.machine_configuration.clone().unwrap();
    assert!(rendered.contains("    certSANs:\n        - cp.lab\n"), "{rendered}");

    let (id, state) = create(&ctx, args.clone()).await.unwrap();
    assert_eq!(id, dhcp.to_string());
    assert_eq!(state.machine_configuration.as_deref(), Some(rendered.as_str()));
    assert_eq!(lab.maintenance(), vec![false]);
    assert_eq!(lab.lab.talos.status()[0].address, Some(lab.ip(10)), "configured on its static address");
    assert_eq!(running(lab.ip(10), &client).await, rendered);
    let lines = sink.status_lines();
    assert!(
        lines.iter().any(|l| l.starts_with(&format!("talos {dhcp}: waiting for the node to come back configured, "))),
        "{lines:?}"
    );

    // Read: no drift.
    let read = |inputs: ConfigurationApplyArgs, state: ConfigurationApplyState| {
        ConfigurationApply.read(&ctx, ReadRequest { id: id.clone(), inputs: Some(inputs), state: Some(state) })
    };
    let same = read(args.clone(), state.clone()).await.unwrap().unwrap();
    assert_eq!(same.state.machine_configuration, state.machine_configuration);
    assert_eq!(same.inputs.config_patches, args.config_patches);

    // A configuration applied on the node directly is drift: the inputs reproduce the node's.
    let edited = rendered.replacen("        - cp.lab\n", "        - cp.lab\n        - edited.lab\n", 1);
    let direct = api_client::connect(&lab.ip(10).to_string(), Credentials::Mutual(&client)).await.unwrap();
    direct.apply_configuration(&edited, Mode::NoReboot, false).await.unwrap();
    let drift = read(args.clone(), state.clone()).await.unwrap().unwrap();
    assert_eq!(drift.state.machine_configuration.as_deref(), Some(edited.as_str()));
    assert_eq!(drift.inputs.machine_configuration_input, edited);
    assert_eq!(drift.inputs.config_patches, None);
    assert!(sink.any("runs another configuration than the one applied"));

    // Update: the program's inputs again; `node` (the maintenance address) no longer
    // answers, the static address of the configuration does.
    let update = |old_inputs: ConfigurationApplyArgs, old_state: ConfigurationApplyState, inputs| {
        ConfigurationApply.update(&ctx, UpdateRequest { id: id.clone(), old_inputs, old_state, inputs, preview: false })
    };
    let state = update(drift.inputs, drift.state, args.clone()).await.unwrap();
    assert_eq!(running(lab.ip(10), &client).await, rendered, "the drift is undone");

    // `node` now the static address: the same machine, no replacement. A patch change
    // applies in place, without a reboot (nothing in it needs one).
    let mut moved = args.clone();
    moved.node = lab.ip(10).to_string();
    assert_eq!(ConfigurationApply.replacements(&args, &moved), Some(vec![]));
    let mut patched = moved.clone();
    patched.config_patches = Some(vec!["machine:\n  certSANs:\n    - cp2.lab\n".into()]);
    let state = update(args.clone(), state, patched.clone()).await.unwrap();
    let now = running(lab.ip(10), &client).await;
    assert!(now.contains("        - cp2.lab\n"), "{now}");
    assert_eq!(state.machine_configuration.as_deref(), Some(now.as_str()));
    assert!(sink.any("applying the configuration (auto)"));

    // applyMode no_reboot: in effect at once, on the same boot.
    let boot_id = || async {
        let c = api_client::connect(&lab.ip(10).to_string(), Credentials::Mutual(&client)).await.unwrap();
        String::from_utf8(c.read_file(BOOT_ID_PATH).await.unwrap()).unwrap().trim().to_string()
    };
    let boot = boot_id().await;
    let mut no_reboot = patched.clone();
    no_reboot.apply_mode = Some("no_reboot".into());
    no_reboot.config_patches = Some(vec!["machine:\n  certSANs:\n    - nr.lab\n".into()]);
    let state = update(patched.clone(), state, no_reboot.clone()).await.unwrap();
    assert!(sink.any("applying the configuration (no_reboot)"));
    assert!(running(lab.ip(10), &client).await.contains("        - nr.lab\n"));
    assert_eq!(boot_id().await, boot, "no_reboot does not reboot");
    assert_eq!(state.staged_boot_id, None);
    assert!(ConfigurationApply.due_changes(&state, &no_reboot).is_empty());

    // applyMode staged: written for the next boot, not running. The state says so, refresh says
    // so, every preview shows an update, and the next update applies again instead of taking
    // the configuration file (which holds the staged text) for the running configuration.
    let mut staged = no_reboot.clone();
    staged.apply_mode = Some("staged".into());
    staged.config_patches = Some(vec!["machine:\n  certSANs:\n    - st.lab\n".into()]);
    let state = update(no_reboot.clone(), state, staged.clone()).await.unwrap();
    assert!(sink.any("configuration staged; it takes effect at the next reboot"));
    assert_eq!(state.staged_boot_id.as_deref(), Some(boot.as_str()));
    assert_eq!(boot_id().await, boot, "staging does not reboot");
    assert_eq!(ConfigurationApply.due_changes(&state, &staged), vec!["stagedBootId".to_string()]);
    let refreshed = read(staged.clone(), state.clone()).await.unwrap().unwrap();
    assert_eq!(refreshed.state.staged_boot_id.as_deref(), Some(boot.as_str()));
    assert!(sink.any("the configuration is staged, not running"));
    let applies =
        || sink.0.lock().unwrap().iter().filter(|(_, m, _)| m.contains("applying the configuration (staged)")).count();
    let before = applies();
    let state = update(staged.clone(), refreshed.state, staged.clone()).await.unwrap();
    assert_eq!(applies(), before + 1, "an up while staged applies again, it does not skip");
    assert_eq!(state.staged_boot_id.as_deref(), Some(boot.as_str()));
    // Once the node has booted again, the staged configuration runs: refresh clears the mark.
    let c = api_client::connect(&lab.ip(10).to_string(), Credentials::Mutual(&client)).await.unwrap();
    c.machine().reboot(c.request(machine::RebootRequest::default())).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = match api_client::connect(&lab.ip(10).to_string(), Credentials::Mutual(&client)).await {
            Ok(c) => c.read_file(BOOT_ID_PATH).await.ok(),
            Err(_) => None,
        };
        if answer.is_some_and(|b| String::from_utf8_lossy(&b).trim() != boot) {
            break;
        }
        assert!(Instant::now() < deadline, "the node did not come back from its reboot");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rebooted = read(staged.clone(), state.clone()).await.unwrap().unwrap();
    assert_eq!(rebooted.state.staged_boot_id, None, "in effect after the reboot");
    assert!(ConfigurationApply.due_changes(&rebooted.state, &staged).is_empty());
    assert!(running(lab.ip(10), &client).await.contains("        - st.lab\n"));
    let (patched, state) = (staged, rebooted.state);

    // applyMode reboot: the node goes down and comes back running the new configuration.
    let mut rebooting = patched.clone();
    rebooting.apply_mode = Some("reboot".into());
    rebooting.config_patches = Some(vec!["machine:\n  certSANs:\n    - cp3.lab\n".into()]);
    let state = update(patched.clone(), state, rebooting.clone()).await.unwrap();
    assert!(sink.any("rebooting to apply the configuration"));
    assert!(sink.status_lines().iter().any(|l| l.contains("waiting for the node to reboot into the configuration")));
    assert!(running(lab.ip(10), &client).await.contains("        - cp3.lab\n"));
    let patched = rebooting;

    // Delete with onDestroy.reset: back to maintenance on the DHCP address.
    ConfigurationApply.delete(&ctx, DeleteRequest { id: id.clone(), state: state.clone() }).await.unwrap();
    eventually("maintenance after the reset", Duration::from_secs(20), || {
        lab.lab.talos.status().iter().any(|s| s.maintenance && s.address == Some(dhcp))
    })
    .await;
    // Nothing answers at the static address any more: Read keeps the state and warns.
    let kept = read(patched, state.clone()).await.unwrap().expect("kept");
    assert_eq!(kept.state.machine_configuration, state.machine_configuration);
    assert!(sink.any("cannot read the node's configuration, keeping the recorded state"));
    // At the maintenance address the node answers without a configuration: gone.
    assert!(read(args, state).await.unwrap().is_none(), "a node in maintenance has lost the configuration");
}

/// A proxy to `upstream` that, on the first connection carrying more than
/// `cut_after` bytes from the client, forwards the rest of the request but
/// never the answer, then closes: the client cannot know whether it worked.
async fn cutting_proxy(upstream: SocketAddr, cut_after: usize) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let used = Arc::new(AtomicBool::new(false));
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else { return };
            let used = used.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else { return };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let cut = Arc::new(AtomicBool::new(false));
                let cut_up = cut.clone();
                let up = tokio::spawn(async move {
                    let (mut sent, mut buf) = (0usize, vec![0u8; 16384]);
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if sw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                        sent += n;
                        if sent > cut_after && !used.swap(true, Ordering::SeqCst) {
                            cut_up.store(true, Ordering::SeqCst);
                        }
                    }
                });
                let mut buf = vec![0u8; 16384];
                loop {
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if cut.load(Ordering::SeqCst) {
                        // Let the rest of the request through, then drop everything.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        break;
                    }
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                up.abort();
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_dropped_during_the_maintenance_apply_is_confirmed_on_the_static_address() {
    let lab = Lab::start(300, 0).await.unwrap();
    let (bundle, client) = cluster_secrets().unwrap();
    let dhcp = lab.talos_vm(100, &format!("talos-{}", 100));
    let config = machine_config(&bundle, MachineType::ControlPlane, lab.ip(10), lab.ip(5), &[]).unwrap();
    let proxy = cutting_proxy(SocketAddr::new(dhcp.into(), 50000), config.len()).await;
    let sink = Arc::new(support::Sink::default());
    let ctx = context(sink.clone());
    let (id, state) = create(&ctx, apply_args(&client, config, &proxy.to_string(), "60s")).await.unwrap();
    assert_eq!(id, proxy.to_string());
    assert!(sink.any("the connection dropped while applying"), "{:?}", sink.0.lock().unwrap());
    assert_eq!(running(lab.ip(10), &client).await, state.machine_configuration.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_say_which_credentials_address_or_configuration_is_wrong() {
    let lab = Lab::start(200, 0).await.unwrap();
    let (bundle, client) = cluster_secrets().unwrap();
    let dhcp = lab.talos_vm(100, &format!("talos-{}", 100));
    let ctx = context(Arc::new(support::Sink::default()));

    // The node refuses the configuration: a clean failure with Talos's reason, nothing recorded.
    let config = machine_config(&bundle, MachineType::ControlPlane, lab.ip(10), lab.ip(5), &[]).unwrap();
    let wrong_type = config.replacen("type: controlplane", "type: database", 1);
    let err = create(&ctx, apply_args(&client, wrong_type, &dhcp.to_string(), "20s")).await.unwrap_err();
    assert!(matches!(&err, ResourceError::Failed(m) if m.contains("unknown machine type \"database\"")), "{err:?}");
    assert_eq!(lab.maintenance(), vec![true], "nothing was applied");

    // Nothing answers: bounded by the timeout, and says it cannot reach the node.
    let started = Instant::now();
    let err = create(&ctx, apply_args(&client, config.clone(), &lab.ip(77).to_string(), "2s")).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    assert!(err.to_string().contains("cannot reach the Talos API"), "{err}");

    // Another cluster's credentials on a configured node: says the CA does not match.
    create(&ctx, apply_args(&client, config.clone(), &dhcp.to_string(), "30s")).await.unwrap();
    let (_, foreign) = cluster_secrets().unwrap();
    let err = create(&ctx, apply_args(&foreign, config, &lab.ip(10).to_string(), "20s")).await.unwrap_err();
    assert!(
        matches!(&err, ResourceError::Failed(m) if m.contains("not signed by the client configuration's CA")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_waits_for_the_node_and_is_idempotent() {
    // agent_ms: how long after coming up the node accepts Bootstrap.
    let lab = Lab::start(200, 1500).await.unwrap();
    let (bundle, client) = cluster_secrets().unwrap();
    let cp_dhcp = lab.talos_vm(100, &format!("talos-{}", 100));
    let sink = Arc::new(support::Sink::default());
    let ctx = context(sink.clone());
    let cp = machine_config(&bundle, MachineType::ControlPlane, lab.ip(10), lab.ip(5), &[]).unwrap();
    create(&ctx, apply_args(&client, cp, &cp_dhcp.to_string(), "30s")).await.unwrap();

    let args = |node: Ipv4Addr| BootstrapArgs {
        client_configuration: client.clone(),
        node: node.to_string(),
        endpoint: None,
        timeouts: Some(Timeouts { create: Some("20s".into()), ..Default::default() }),
    };
    let bootstrap =
        |a: BootstrapArgs| Bootstrap.create(&ctx, CreateRequest { name: "b".into(), inputs: a, preview: false });
    let created = bootstrap(args(lab.ip(10))).await.unwrap();
    assert_eq!(created.id, lab.ip(10).to_string());
    let lines = sink.status_lines();
    assert!(
        lines.iter().any(|l| l.contains("waiting to bootstrap etcd") && l.contains("not available yet")),
        "{lines:?}"
    );
    // Again (a re-created resource, an imported cluster): the node's etcd already has members,
    // so no second Bootstrap is sent; success, saying so.
    bootstrap(args(lab.ip(10))).await.unwrap();
    assert!(
        sink.any("etcd already runs with members talos-") && sink.any("; not bootstrapping again"),
        "{:?}",
        sink.0.lock().unwrap()
    );
    // Naming another node later is an update that records it, never a second bootstrap.
    let updated = Bootstrap
        .update(
            &ctx,
            UpdateRequest {
                id: created.id.clone(),
                old_state: created.state.clone(),
                old_inputs: created.state.args.clone(),
                inputs: args(lab.ip(11)),
                preview: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.args.node, lab.ip(11).to_string());
    let schema: serde_json::Value =
        serde_json::from_str(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.json"))).unwrap();
    let node = &schema["resources"]["proxmox-talos:machine:Bootstrap"]["inputProperties"]["node"];
    assert!(node.is_object() && node.get("replaceOnChanges").is_none(), "{node}");

    // A worker cannot be bootstrapped: a failure at once, not after the timeout.
    let worker_dhcp = lab.talos_vm(200, &format!("talos-{}", 200));
    let worker = machine_config(&bundle, MachineType::Worker, lab.ip(20), lab.ip(5), &[]).unwrap();
    create(&ctx, apply_args(&client, worker, &worker_dhcp.to_string(), "30s")).await.unwrap();
    let started = Instant::now();
    let Err(err) = bootstrap(args(lab.ip(20))).await else { panic!("a worker was bootstrapped") };
    assert!(err.to_string().contains("not a worker"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// An installer image from the provider's Image Factory that names a version or a schematic the
/// factory does not have fails the create before the node is touched: it stays in maintenance.
#[tokio::test(flavor = "multi_thread")]
async fn an_installer_image_the_factory_lacks_fails_before_the_node_is_touched() {
    use proxmox_talos::talos::schematic::VANILLA_SCHEMATIC_ID;
    use proxmox_talos_lab::factory::{self, FactoryState};
    let lab = Lab::start(300, 0).await.unwrap();
    let (bundle, client) = cluster_secrets().unwrap();
    let dhcp = lab.talos_vm(100, "talos-100");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    tokio::spawn(factory::serve(listener, FactoryState::new(), std::future::pending()));
    let config = proxmox_talos::config::ProviderConfig {
        image_factory_url: Some(format!("http://{host}")),
        ..Default::default()
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    std::mem::forget(tx);
    let sink = Arc::new(support::Sink::default());
    let ctx = Context::new(Arc::new(config), sink, "urn:pulumi:test::talos::x::a", rx, None);
    let base = machine_config(&bundle, MachineType::ControlPlane, lab.ip(10), lab.ip(5), &[]).unwrap();
    eventually("the node in maintenance mode", Duration::from_secs(30), || lab.maintenance() == vec![true]).await;
    let unknown_schematic = "0".repeat(64);
    for (image, why) in [
        (format!("{host}/installer/{VANILLA_SCHEMATIC_ID}:v1.12.99"), "has no Talos v1.12.99"),
        (format!("{host}/installer/{unknown_schematic}:v1.12.4"), &*format!("has no schematic {unknown_schematic}")),
    ] {
        let mut args = apply_args(&client, base.clone(), &dhcp.to_string(), "30s");
        args.config_patches = Some(vec![format!("machine:\n  install:\n    image: {image}\n")]);
        let args = check(&ctx, args);
        assert_eq!(args.installer_image.as_deref(), Some(image.as_str()), "Check takes it from the configuration");
        let err = create(&ctx, args).await.unwrap_err().to_string();
        assert!(err.contains(why) && err.contains("no node was touched"), "{err}");
        assert_eq!(lab.maintenance(), vec![true], "the node was not touched");
    }
}

/// `machine:getDisks` on a node in maintenance mode (no credentials) and, once configured, with
/// the client configuration: the VM's 8 GiB scsi0, filtered, and the install disk picked.
#[tokio::test(flavor = "multi_thread")]
async fn get_disks_lists_the_vm_disks_in_maintenance_and_configured() {
    use proxmox_talos::framework::Function as _;
    use proxmox_talos::resources::machine::get_disks::{DiskFilters, GetDisks, GetDisksArgs};
    let lab = Lab::start(300, 0).await.unwrap();
    let (bundle, client) = cluster_secrets().unwrap();
    let dhcp = lab.talos_vm(100, "talos-100");
    let sink = Arc::new(support::Sink::default());
    let ctx = context(sink);
    eventually("the node in maintenance mode", Duration::from_secs(30), || lab.maintenance() == vec![true]).await;
    let args = |node: String, client: Option<ClientConfiguration>, filters: Option<DiskFilters>| GetDisksArgs {
        node,
        client_configuration: client,
        endpoint: None,
        filters,
    };
    let found = GetDisks.invoke(&ctx, args(dhcp.to_string(), None, None)).await.unwrap();
    assert_eq!(found.disks.len(), 1, "{:?}", found.disks);
    let disk = &found.disks[0];
    assert_eq!((disk.device_name.as_str(), disk.size, disk.disk_type.as_str()), ("/dev/sda", 8 << 30, "hdd"));
    assert_eq!(found.install_disk.as_deref(), Some("/dev/sda"));
    let too_big = DiskFilters { min_size: Some("10GiB".into()), ..Default::default() };
    let none = GetDisks.invoke(&ctx, args(dhcp.to_string(), None, Some(too_big))).await.unwrap();
    assert!(none.disks.is_empty() && none.install_disk.is_none(), "{none:?}");

    // Configured: with the client configuration, and only with it.
    let base = machine_config(&bundle, MachineType::ControlPlane, lab.ip(10), lab.ip(5), &[]).unwrap();
    create(&ctx, apply_args(&client, base, &dhcp.to_string(), "60s")).await.unwrap();
    let configured = GetDisks.invoke(&ctx, args(lab.ip(10).to_string(), Some(client.clone()), None)).await.unwrap();
    assert_eq!(configured.disks.len(), 1);
    assert!(configured.disks[0].system_disk, "Talos runs from it now: {:?}", configured.disks);
    let refused = GetDisks.invoke(&ctx, args(lab.ip(10).to_string(), None, None)).await.unwrap_err().to_string();
    assert!(refused.contains("the node is configured") && refused.contains("give `clientConfiguration`"), "{refused}");
}

/// The etcd members' hostnames, asked through the control plane at `address`.
async fn etcd_members(address: Ipv4Addr, client: &ClientConfiguration) -> Vec<String> {
    let c = api_client::connect(&address.to_string(), Credentials::Mutual(client)).await.unwrap();
    let mut names: Vec<String> = c.etcd_members().await.unwrap().into_iter().map(|m| m.hostname).collect();
    names.sort();
    names
}

/// Scale-down (ADR 0012), three control planes: destroying a powered-off one's
/// `ConfigurationApply` removes its etcd member through another control plane; a running one
/// leaves etcd itself; the last member is refused until the cluster's `Bootstrap` is destroyed
/// in the same process (the whole cluster goes), and then nobody leaves.
#[tokio::test(flavor = "multi_thread")]
async fn destroyed_control_planes_leave_etcd_and_the_last_member_stays_until_the_cluster_goes() {
    let lab = Lab::start(200, 0).await.unwrap();
    let (bundle, client) = cluster_secrets().unwrap();
    let sink = Arc::new(support::Sink::default());
    let ctx = context(sink.clone());
    let mut states = Vec::new();
    for (i, vmid) in [100u32, 101, 102].into_iter().enumerate() {
        let dhcp = lab.talos_vm(vmid, &format!("talos-{vmid}"));
        let patch = format!("apiVersion: v1alpha1\nkind: HostnameConfig\nauto: \"off\"\nhostname: cp{i}\n");
        let cp =
            machine_config(&bundle, MachineType::ControlPlane, lab.ip(10 + i as u8), lab.ip(5), &[&patch]).unwrap();
        let mut args = apply_args(&client, cp, &dhcp.to_string(), "30s");
        args.on_destroy = None;
        let (id, state) = create(&ctx, args).await.unwrap();
        states.push((id, state));
    }
    let bootstrap_args = BootstrapArgs {
        client_configuration: client.clone(),
        node: lab.ip(10).to_string(),
        endpoint: None,
        timeouts: Some(Timeouts { create: Some("20s".into()), ..Default::default() }),
    };
    let boot = Bootstrap
        .create(&ctx, CreateRequest { name: "b".into(), inputs: bootstrap_args, preview: false })
        .await
        .unwrap();
    let all = vec!["cp0".to_string(), "cp1".into(), "cp2".into()];
    let deadline = Instant::now() + Duration::from_secs(20);
    while etcd_members(lab.ip(10), &client).await != all {
        assert!(Instant::now() < deadline, "three etcd members: {:?}", etcd_members(lab.ip(10), &client).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delete = |(id, state): (String, ConfigurationApplyState)| async {
        ConfigurationApply.delete(&ctx, DeleteRequest { id, state }).await
    };

    // cp2 is powered off: its member is removed by ID through a control plane the provider saw.
    lab.stop_vm(102);
    delete(states[2].clone()).await.unwrap();
    assert!(sink.any("removed its etcd member"), "{:?}", sink.0);
    assert_eq!(etcd_members(lab.ip(10), &client).await, vec!["cp0".to_string(), "cp1".into()]);

    // cp1 answers: it leaves etcd itself (and does not join again while it runs).
    delete(states[1].clone()).await.unwrap();
    assert!(sink.any("left etcd; 1 members remain"), "{:?}", sink.0);
    assert_eq!(etcd_members(lab.ip(10), &client).await, vec!["cp0".to_string()]);

    // cp0 is the last member: refused, saying why and the ways out; it is still a member.
    let Err(err) = delete(states[0].clone()).await else { panic!("the last etcd member was removed") };
    let text = err.to_string();
    assert!(text.contains("last etcd member") && text.contains("onDestroy.leaveEtcd: false"), "{text}");
    assert_eq!(etcd_members(lab.ip(10), &client).await, vec!["cp0".to_string()]);
    assert_eq!(etcd_members(lab.ip(11), &client).await.len(), 1, "cp1 did not rejoin");

    // A control plane of another cluster, wiped (in maintenance mode) and with no peer that
    // answers: nothing runs etcd there, so its destroy warns and goes on.
    let (other_bundle, other_client) = cluster_secrets().unwrap();
    let wiped_dhcp = lab.talos_vm(103, "talos-103");
    let recorded = machine_config(&other_bundle, MachineType::ControlPlane, lab.ip(13), lab.ip(6), &[]).unwrap();
    let mut wiped = apply_args(&other_client, recorded.clone(), &wiped_dhcp.to_string(), "30s");
    wiped.on_destroy = None;
    let state = ConfigurationApplyState {
        args: wiped,
        machine_configuration: Some(recorded),
        staged_boot_id: None,
        talos_version: None,
        installed_image: None,
    };
    delete((wiped_dhcp.to_string(), state)).await.unwrap();
    assert!(sink.any("is in maintenance mode (wiped) and no other control plane of its cluster answered"));

    // The whole cluster goes (its Bootstrap first): cp0 is forgotten without leaving.
    Bootstrap
        .delete(&ctx, DeleteRequest { id: boot.id, state: BootstrapState { args: boot.state.args } })
        .await
        .unwrap();
    delete(states[0].clone()).await.unwrap();
    assert!(sink.any("its cluster is being destroyed; not leaving etcd"));
    assert_eq!(etcd_members(lab.ip(10), &client).await, vec!["cp0".to_string()]);
}
