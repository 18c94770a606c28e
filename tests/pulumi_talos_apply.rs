//! Talos nodes configured through the real `pulumi` CLI against the lab
//! (`sdk-examples/yaml-talos-apply`): a Talos image downloaded into storage,
//! a control plane and a worker VM booting it in maintenance mode (their
//! addresses from the guest agent), machine secrets, configurations with
//! static addresses and the VIP, `machine:ConfigurationApply` for both and
//! `machine:Bootstrap`.
//!
//! - `up` configures both nodes (they answer with mutual TLS on their static
//!   addresses, running exactly `machineConfiguration`) and bootstraps etcd;
//!   a second preview changes nothing;
//! - the state holds `machineConfiguration`, the input configuration and the
//!   client key only as secrets;
//! - a config patch change updates in place (no replace) and reaches the node;
//! - a configuration applied on the node directly shows in `refresh` as a
//!   diff, and the next `up` applies the program's again (the node's
//!   maintenance address, now its static one, is the same machine: no replace);
//! - removing the apply resources resets the nodes back to maintenance mode
//!   (`onDestroy.reset`), and `destroy` leaves the lab empty.
//!
//! The lab runs on a random loopback subnet so its node addresses are its own.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use proxmox_talos::talos::api::machine::apply_configuration_request::Mode;
use proxmox_talos::talos::api_client::{self, Credentials};
use proxmox_talos::talos::secrets::ClientConfiguration;
use support::lab::{CliLab, TALOS_TIMING};
use support::pulumi::Stack;
use support::talos::{on, running_config, wait_until};

/// Whether the value at `path` (dotted) of an exported resource is secret, itself or
/// inside a secret object on the way.
fn secret_at(resource: &serde_json::Value, path: &str) -> bool {
    let mut at = resource;
    for key in path.split('.') {
        if at.get("ciphertext").is_some() {
            return true;
        }
        at = &at[key];
    }
    at.get("ciphertext").is_some()
}

/// The example without the apply and bootstrap resources (and their outputs).
fn without_applies(program: &str) -> String {
    let mut out = Vec::new();
    let mut skipping = false;
    for line in program.lines() {
        let top_resource = line.starts_with("  ") && !line.starts_with("   ");
        if top_resource {
            skipping = ["  controlPlaneApply:", "  workerApply:", "  bootstrap:"].contains(&line);
        }
        if !line.starts_with(' ') {
            skipping = false; // a top-level section
        }
        if !skipping && !line.contains("Apply.machineConfiguration") {
            out.push(line);
        }
    }
    out.join("\n") + "\n"
}

#[test]
fn talos_nodes_configured_bootstrapped_updated_refreshed_and_reset_through_the_cli() {
    let (lab, net) = CliLab::single_node_on_own_subnet(TALOS_TIMING);
    let base = lab.serve_files(HashMap::from([("talos.raw".to_string(), vec![0u8; 1 << 20])]));
    let stack = Stack::new("yaml-talos-apply", lab.token_env());
    stack.set("talosImageUrl", &format!("{base}/talos.raw"));
    stack.set("vip", &net.ip(5).to_string());
    stack.set("controlPlaneAddress", &net.ip(10).to_string());
    stack.set("workerAddress", &net.ip(20).to_string());

    stack.ok(&["up", "--yes", "--skip-preview"]);
    let out = stack.outputs();
    let client: ClientConfiguration = serde_json::from_value(out["clientConfiguration"].clone()).unwrap();
    let maintenance_ip = out["controlPlaneMaintenanceIp"].as_str().unwrap().to_string();
    assert!(maintenance_ip.starts_with(&net.prefix()), "{out}");
    assert_ne!(maintenance_ip, net.ip(10).to_string());
    let status = lab.lab.talos.status();
    assert_eq!(status.len(), 2, "{status:?}");
    assert!(status.iter().all(|s| !s.maintenance), "{status:?}");
    let mut addresses: Vec<_> = status.iter().filter_map(|s| s.address).collect();
    addresses.sort();
    assert_eq!(addresses, vec![net.ip(10), net.ip(20)]);
    let applied = out["controlPlaneConfiguration"].as_str().unwrap().to_string();
    assert!(applied.contains("        - cp.lab\n"), "the patch is applied: {applied}");
    assert_eq!(on(&lab, running_config(net.ip(10), &client)), applied);
    // Bootstrapped: etcd answers with one member.
    let members = on(&lab, async {
        let c = api_client::connect(&net.ip(10).to_string(), Credentials::Mutual(&client)).await.unwrap();
        c.machine().etcd_member_list(c.request(Default::default())).await.unwrap().into_inner()
    });
    assert_eq!(members.messages[0].members.len(), 1);

    stack.ok(&["preview", "--expect-no-changes"]);

    // Secrets stay secrets in the state.
    let export = stack.ok(&["stack", "export"]);
    assert!(!export.contains(&client.client_key), "the client key is stored in plain text");
    assert!(!export.contains("kind: HostnameConfig"), "a machine configuration is stored in plain text");
    let deployment: serde_json::Value = serde_json::from_str(&export).unwrap();
    let resources = deployment["deployment"]["resources"].as_array().unwrap();
    let apply = resources.iter().find(|r| r["urn"].as_str().unwrap().ends_with("::controlPlaneApply")).unwrap();
    for path in [
        "outputs.machineConfiguration",
        "inputs.machineConfigurationInput",
        "inputs.clientConfiguration.clientKey",
        "outputs.clientConfiguration.clientKey",
    ] {
        assert!(secret_at(apply, path), "{path} is not a secret: {apply}");
    }

    // A patch change updates in place and reaches the node.
    stack.set("controlPlanePatch", "machine:\n  certSANs:\n    - cp2.lab\n");
    let preview = stack.ok(&["preview", "--diff"]);
    assert!(preview.contains("controlPlaneApply") && !preview.contains("replace"), "{preview}");
    stack.ok(&["up", "--yes", "--skip-preview"]);
    let patched = on(&lab, running_config(net.ip(10), &client));
    assert!(patched.contains("        - cp2.lab\n"), "{patched}");
    assert_eq!(stack.outputs()["controlPlaneConfiguration"].as_str().unwrap(), patched);
    stack.ok(&["preview", "--expect-no-changes"]);

    // A configuration applied on the node directly is drift that refresh shows.
    let edited = patched.replacen("        - cp2.lab\n", "        - cp2.lab\n        - edited.lab\n", 1);
    on(&lab, async {
        let c = api_client::connect(&net.ip(10).to_string(), Credentials::Mutual(&client)).await.unwrap();
        c.apply_configuration(&edited, Mode::NoReboot, false).await.unwrap();
    });
    let refresh = stack.ok(&["refresh", "--yes", "--skip-preview", "--diff"]);
    assert!(refresh.contains("controlPlaneApply") && refresh.contains("machineConfiguration"), "{refresh}");
    // The next up applies the program's configuration again, in place.
    let preview = stack.ok(&["preview", "--diff"]);
    assert!(preview.contains("controlPlaneApply") && !preview.contains("replace"), "{preview}");
    stack.ok(&["up", "--yes", "--skip-preview"]);
    assert_eq!(on(&lab, running_config(net.ip(10), &client)), patched);
    stack.ok(&["preview", "--expect-no-changes"]);

    // applyMode staged: the node keeps running the old configuration until it reboots. Refresh
    // says so, and preview keeps showing the apply as pending (no "no changes" while staged).
    stack.set("controlPlaneApplyMode", "staged");
    stack.set("controlPlanePatch", "machine:\n  certSANs:\n    - cp3.lab\n");
    let up = stack.ok(&["up", "--yes", "--skip-preview"]);
    assert!(up.contains("configuration staged; it takes effect at the next reboot"), "{up}");
    let refresh = stack.ok(&["refresh", "--yes", "--skip-preview"]);
    assert!(refresh.contains("the configuration is staged, not running"), "{refresh}");
    let pending = stack.fails(&["preview", "--expect-no-changes"]);
    assert!(pending.contains("controlPlaneApply"), "{pending}");
    // A later up applies again; with applyMode reboot the node reboots into it, and then
    // nothing is pending.
    stack.set("controlPlaneApplyMode", "reboot");
    stack.ok(&["up", "--yes", "--skip-preview"]);
    assert!(on(&lab, running_config(net.ip(10), &client)).contains("        - cp3.lab\n"));
    stack.ok(&["refresh", "--yes", "--skip-preview"]);
    stack.ok(&["preview", "--expect-no-changes"]);

    // Removing the applies resets the nodes (onDestroy.reset) back to maintenance mode.
    let program = std::fs::read_to_string(stack.dir.join("Pulumi.yaml")).unwrap();
    stack.write_program(&without_applies(&program));
    stack.ok(&["up", "--yes", "--skip-preview"]);
    wait_until("both nodes back in maintenance mode", Duration::from_secs(30), || {
        let s = lab.lab.talos.status();
        s.len() == 2 && s.iter().all(|n| n.maintenance)
    });

    stack.ok(&["destroy", "--yes", "--skip-preview"]);
    lab.assert_empty();
}
