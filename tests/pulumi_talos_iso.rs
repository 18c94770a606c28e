//! A Talos cluster installed from the ISO (`sdk-examples/yaml-talos-iso`)
//! through the real `pulumi` CLI against an in-process lab with its Image
//! Factory: the schematic's metal ISO downloaded as `iso` content, three
//! control-plane VMs booting it from their CD-ROM drive (blank disk first in
//! the boot order), configurations with static addresses and the VIP applied
//! through the guest-agent addresses, bootstrap and kubeconfig.
//!
//! - `up`: every node runs its configuration on its static address, installed
//!   on its disk, and etcd has the three of them; the kubeconfig names the VIP;
//! - a second preview and a refresh change nothing;
//! - the state holds no key, token or machine configuration in plain text;
//! - `destroy` leaves the lab empty.

mod support;

use std::time::Instant;

use proxmox_talos::talos::api_client::{self, Credentials};
use proxmox_talos::talos::secrets::ClientConfiguration;
use serde_json::Value;
use support::lab::{CliLab, TALOS_TIMING};
use support::pulumi::{plain_secrets, Stack};

const CONTROLLERS: [u8; 3] = [41, 42, 43];

fn timed(stack: &Stack, args: &[&str]) -> String {
    let started = Instant::now();
    let out = stack.ok(args);
    eprintln!("pulumi_talos_iso: `pulumi {}` took {:.1?}", args.join(" "), started.elapsed());
    out
}

#[test]
fn a_cluster_installed_from_the_iso_through_the_cli() {
    let (lab, subnet) = CliLab::single_node_on_own_subnet(TALOS_TIMING);
    let ip = |last: u8| subnet.ip(last);
    let (factory_url, _) = lab.factory();

    let mut env = lab.token_env();
    env.push(("TALOS_IMAGE_FACTORY_URL".into(), factory_url.clone()));
    let stack = Stack::new("yaml-talos-iso", env);
    stack.set("factoryUrl", &factory_url);
    stack.set("vip", &ip(40).to_string());
    stack.set("gateway", &ip(1).to_string());
    stack.ok(&["config", "set", "--path", "nameservers[0]", &ip(1).to_string()]);
    for (i, last) in CONTROLLERS.iter().enumerate() {
        stack.ok(&["config", "set", "--path", &format!("controllerIps[{i}]"), &ip(*last).to_string()]);
    }

    timed(&stack, &["up", "--yes", "--skip-preview"]);

    // The VMs boot the ISO from their CD-ROM drive, and Talos installed itself on the disk.
    for vmid in [1301, 1302, 1303] {
        let (config, installed) = lab.lab.state.read(|m| {
            let vm = &m.vms[&vmid];
            let disk = vm.config["scsi0"].split(',').next().unwrap().to_string();
            (vm.config.clone(), m.volumes[&disk].talos.is_some())
        });
        assert_eq!(config["ide3"].split(',').next(), Some("local:iso/talos-v1.12.4-metal-amd64.iso"), "{config:?}");
        assert!(config["ide3"].contains("media=cdrom") && config["boot"] == "order=scsi0;ide3", "{config:?}");
        assert!(installed, "VM {vmid}: the configuration is on its disk");
    }
    let mut status = lab.lab.talos.status();
    status.sort_by_key(|s| s.vmid);
    let seen: Vec<_> = status.iter().map(|s| (s.address, s.maintenance, s.hostname.clone())).collect();
    let expected: Vec<_> =
        CONTROLLERS.iter().enumerate().map(|(i, l)| (Some(ip(*l)), false, format!("talos-iso-cp{}", i + 1))).collect();
    assert_eq!(seen, expected);

    // Bootstrapped: the talosconfig's credentials see three etcd members; the kubeconfig names the VIP.
    let out = stack.outputs();
    let talosconfig: Value = serde_norway::from_str(out["talosconfig"].as_str().unwrap()).unwrap();
    let context = &talosconfig["contexts"]["talos-iso"];
    let client = ClientConfiguration {
        ca_certificate: context["ca"].as_str().unwrap().into(),
        client_certificate: context["crt"].as_str().unwrap().into(),
        client_key: context["key"].as_str().unwrap().into(),
    };
    let members = lab.runtime.block_on(async {
        let c = api_client::connect(&ip(41).to_string(), Credentials::Mutual(&client)).await.unwrap();
        c.machine().etcd_member_list(c.request(Default::default())).await.unwrap().into_inner()
    });
    assert_eq!(members.messages[0].members.len(), 3, "{members:?}");
    support::talos::assert_talosctl_version(out["talosconfig"].as_str().unwrap(), "v1.12.4");
    let kubeconfig = out["kubeconfig"].as_str().unwrap();
    assert!(kubeconfig.contains(&format!("server: https://{}:6443", ip(40))), "{kubeconfig}");

    timed(&stack, &["preview", "--expect-no-changes"]);
    timed(&stack, &["refresh", "--yes", "--expect-no-changes", "--skip-preview"]);

    let export = stack.ok(&["stack", "export"]);
    let known = [("the client key", client.client_key.as_str()), ("the kubeconfig", kubeconfig)];
    let found = plain_secrets(&export, &known);
    assert!(found.is_empty(), "secrets in the state in plain text: {found:?}");

    timed(&stack, &["destroy", "--yes", "--skip-preview"]);
    lab.assert_empty();
}
