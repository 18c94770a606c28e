//! The pure half of `machine:ConfigurationApply`: what to apply and where the
//! node can be found, computed from the inputs without IO (so it runs in Check
//! and preview too).
//!
//! Owns: rendering (the input configuration with `configPatches` applied as
//! Talos applies them; verbatim without patches), the apply modes and their
//! Talos API values, the static addresses a configuration gives the node (it
//! answers there once configured), and the order of addresses to try.
//! Must not: connect, wait or log.

use std::net::IpAddr;

use serde_json::Value as Json;

use super::talos_node::{dedup, Target};
use crate::framework::CheckFailure;
use crate::talos::api::machine::apply_configuration_request::Mode;
use crate::talos::config::{apply_patches, Config};

/// `applyMode`: how a configuration takes effect on a configured node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyMode {
    /// The node decides: without a reboot when it can, else with one.
    Auto,
    /// Always reboot.
    Reboot,
    /// Never reboot; refused by the node when the change needs a reboot.
    NoReboot,
    /// Written now, in effect after the next reboot.
    Staged,
    /// `staged` when the change needs a reboot (asked with a dry run), else `auto`.
    StagedIfNeedingReboot,
}

/// The accepted `applyMode` values.
pub const APPLY_MODES: [&str; 5] = ["auto", "reboot", "no_reboot", "staged", "staged_if_needing_reboot"];

impl ApplyMode {
    /// `auto` when unset.
    pub fn parse(value: Option<&str>) -> Result<ApplyMode, String> {
        Ok(match value.unwrap_or("auto") {
            "auto" => ApplyMode::Auto,
            "reboot" => ApplyMode::Reboot,
            "no_reboot" => ApplyMode::NoReboot,
            "staged" => ApplyMode::Staged,
            "staged_if_needing_reboot" => ApplyMode::StagedIfNeedingReboot,
            "try" => {
                return Err("\"try\" is not supported: the node reverts the configuration after a while, so the \
                            recorded state would not match it; use one of auto, reboot, no_reboot, staged, \
                            staged_if_needing_reboot"
                    .into())
            }
            other => return Err(format!("{other:?} is not an apply mode; use one of {}", APPLY_MODES.join(", "))),
        })
    }

    /// The mode sent to a configured node (`StagedIfNeedingReboot` is resolved by the caller).
    pub fn wire(self) -> Mode {
        match self {
            ApplyMode::Auto | ApplyMode::StagedIfNeedingReboot => Mode::Auto,
            ApplyMode::Reboot => Mode::Reboot,
            ApplyMode::NoReboot => Mode::NoReboot,
            ApplyMode::Staged => Mode::Staged,
        }
    }

    /// The mode sent in maintenance mode, which takes only REBOOT, AUTO and TRY: the
    /// first configuration always reboots the machine out of maintenance.
    pub fn maintenance_wire(self) -> Mode {
        match self {
            ApplyMode::Reboot => Mode::Reboot,
            _ => Mode::Auto,
        }
    }
}

/// The configuration to apply: `input` with `patches` applied in order (as Talos
/// applies them, printed as machinery prints it), or `input` itself without
/// patches. Failures name `machineConfigurationInput` or `configPatches[i]`.
pub fn render(input: &str, patches: &[String]) -> Result<String, CheckFailure> {
    let config = Config::from_yaml(input).map_err(|e| {
        CheckFailure::new(
            "machineConfigurationInput",
            format!("not a Talos machine configuration: {e} (pass `machineConfiguration` of machine.getConfiguration)"),
        )
    })?;
    if patches.is_empty() {
        return Ok(input.to_string());
    }
    let patched = apply_patches(config, patches)
        .map_err(|e| CheckFailure::new(format!("configPatches[{}]", e.first), e.to_string()))?;
    Ok(patched.to_yaml())
}

/// The static addresses a configuration gives the node, without prefix lengths,
/// in order: `machine.network.interfaces[].addresses` of the v1alpha1 document,
/// then `addresses[].address` of `LinkConfig` documents. VIPs are not the node's own.
pub fn static_addresses(config: &str) -> Vec<String> {
    use serde::Deserialize as _;
    let mut docs: Vec<Json> = Vec::new();
    for doc in serde_norway::Deserializer::from_str(config) {
        match Json::deserialize(doc) {
            Ok(v) if !v.is_null() => docs.push(v),
            Ok(_) => {}
            Err(_) => return Vec::new(),
        }
    }
    let strings = |v: Option<&Json>| -> Vec<String> {
        v.and_then(Json::as_array)
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let mut out: Vec<String> = Vec::new();
    for doc in &docs {
        let is_v1alpha1 = doc.get("kind").is_none() && doc.get("version").is_some();
        if is_v1alpha1 {
            let interfaces = doc.pointer("/machine/network/interfaces").and_then(Json::as_array);
            for i in interfaces.into_iter().flatten() {
                out.extend(strings(i.get("addresses")));
            }
        } else if doc.get("kind").and_then(Json::as_str) == Some("LinkConfig") {
            let addresses = doc.get("addresses").and_then(Json::as_array);
            out.extend(addresses.into_iter().flatten().filter_map(|a| a.get("address")?.as_str().map(str::to_string)));
        }
    }
    let mut seen = Vec::new();
    for a in out {
        let ip = a.split('/').next().unwrap_or_default().trim().to_string();
        if ip.parse::<IpAddr>().is_ok() && !seen.contains(&ip) {
            seen.push(ip);
        }
    }
    seen
}

/// Where a configured node may answer, in order: `node` (through `endpoint` when
/// given), the static addresses of `config`, and `node` directly.
pub fn configured_targets(node: &str, endpoint: Option<&str>, config: &str) -> Vec<Target> {
    let mut targets = vec![Target::via(endpoint, node)];
    targets.extend(static_addresses(config).iter().map(|a| Target::direct(a)));
    targets.push(Target::direct(node));
    dedup(targets)
}

/// Whether moving `node` from `old_node` to `new_node` is the same machine: the
/// configuration applied before gave it `new_node` as a static address (a
/// maintenance-mode DHCP address is replaced by the configured one on refresh).
pub fn same_machine(old_node: &str, old_config: Option<&str>, new_node: &str) -> bool {
    old_node == new_node || old_config.is_some_and(|c| static_addresses(c).iter().any(|a| a == new_node))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::talos::config::{render as generate_config, GenerateInput, MachineType};

    fn config(patch: &str) -> String {
        let yaml = include_str!("../../../tests/fixtures/talosctl-secrets.yaml");
        let secrets = crate::talos::secrets::from_talosctl_yaml(yaml).unwrap();
        let input = GenerateInput::new("lab", "https://127.9.9.5:6443", MachineType::ControlPlane, &secrets);
        generate_config(&input, &[patch.to_string()]).unwrap()
    }

    const STATIC: &str = "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        addresses:\n          - 127.9.9.10/24\n        vip:\n          ip: 127.9.9.5\n";

    #[test]
    fn apply_modes_parse_and_map_to_the_api() {
        assert_eq!(ApplyMode::parse(None), Ok(ApplyMode::Auto));
        for m in APPLY_MODES {
            assert!(ApplyMode::parse(Some(m)).is_ok(), "{m}");
        }
        assert!(ApplyMode::parse(Some("try")).unwrap_err().contains("not supported"));
        assert!(ApplyMode::parse(Some("AUTO")).unwrap_err().contains("staged_if_needing_reboot"));
        assert_eq!(ApplyMode::NoReboot.wire(), Mode::NoReboot);
        assert_eq!(ApplyMode::Staged.maintenance_wire(), Mode::Auto, "maintenance takes only REBOOT, AUTO, TRY");
        assert_eq!(ApplyMode::Reboot.maintenance_wire(), Mode::Reboot);
    }

    #[test]
    fn rendering_applies_patches_or_keeps_the_input() {
        let base = config(STATIC);
        assert_eq!(render(&base, &[]).unwrap(), base, "verbatim without patches");
        let patched = render(&base, &["machine:\n  certSANs:\n    - cp.lab\n".into()]).unwrap();
        assert!(patched.contains("certSANs:\n        - cp.lab\n"), "{patched}");
        let bad = render(&base, &["machine:\n  certSANs:\n    - a\n".into(), "machine:\n  nope: 1\n".into()]);
        assert_eq!(bad.unwrap_err().property, "configPatches[1]");
        assert_eq!(render("not a config", &[]).unwrap_err().property, "machineConfigurationInput");
    }

    #[test]
    fn static_addresses_come_from_interfaces_and_link_configs_not_vips() {
        let base = config(STATIC);
        assert_eq!(static_addresses(&base), vec!["127.9.9.10"]);
        let link = format!(
            "{base}---\napiVersion: v1alpha1\nkind: LinkConfig\nname: eth1\naddresses:\n  - address: 127.9.9.11/24\n"
        );
        assert_eq!(static_addresses(&link), vec!["127.9.9.10", "127.9.9.11"]);
        assert!(static_addresses(&config("machine:\n  certSANs: []\n")).is_empty());
    }

    #[test]
    fn targets_and_the_same_machine_rule() {
        let base = config(STATIC);
        let t = configured_targets("127.9.9.100", None, &base);
        assert_eq!(t, vec![Target::direct("127.9.9.100"), Target::direct("127.9.9.10")]);
        let via = configured_targets("127.9.9.100", Some("127.9.9.20"), &base);
        assert_eq!(via.len(), 3);
        assert_eq!(via[0].node.as_deref(), Some("127.9.9.100"));
        assert!(same_machine("127.9.9.100", Some(&base), "127.9.9.10"), "moved to its static address");
        assert!(!same_machine("127.9.9.100", Some(&base), "127.9.9.11"));
        assert!(!same_machine("127.9.9.100", None, "127.9.9.10"));
    }
}
