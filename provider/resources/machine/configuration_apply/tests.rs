use super::*;

fn args() -> ConfigurationApplyArgs {
    let yaml = include_str!("../../../../tests/fixtures/talosctl-secrets.yaml");
    let secrets = crate::talos::secrets::from_talosctl_yaml(yaml).unwrap();
    let input = crate::talos::config::GenerateInput::new(
        "lab",
        "https://127.9.9.5:6443",
        crate::talos::config::MachineType::Worker,
        &secrets,
    );
    let patch = "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        addresses:\n          - 127.9.9.20/24\n";
    ConfigurationApplyArgs {
        client_configuration: ClientConfiguration {
            ca_certificate: "ca".into(),
            client_certificate: "crt".into(),
            client_key: "key".into(),
        },
        machine_configuration_input: crate::talos::config::render(&input, &[patch.into()]).unwrap(),
        node: "127.9.9.100".into(),
        endpoint: None,
        config_patches: Some(vec!["machine:\n  certSANs:\n    - w.lab\n".into()]),
        apply_mode: None,
        on_destroy: None,
        installer_image: None,
        kubernetes_version: None,
        rollout: None,
        timeouts: None,
    }
}

#[test]
fn check_fills_versions_for_new_resources_and_for_old_ones_only_on_a_change() {
    let ctx = Context::new(
        std::sync::Arc::default(),
        std::sync::Arc::new(crate::framework::context::NullSink),
        "urn:pulumi:t::p::proxmox-talos:machine:ConfigurationApply::a",
        tokio::sync::watch::channel(false).1,
        None,
    );
    let check = |inputs: ConfigurationApplyArgs, olds: Option<ConfigurationApplyArgs>| {
        ConfigurationApply.check(&ctx, CheckRequest { name: "a", inputs, olds, random_seed: &[] }).unwrap()
    };
    let fresh = check(args(), None);
    assert_eq!(fresh.kubernetes_version.as_deref(), Some("v1.35.0"));
    // Recorded with the filled value: filled again (no diff).
    assert_eq!(check(args(), Some(fresh.clone())).kubernetes_version.as_deref(), Some("v1.35.0"));
    // Recorded before the input existed, same configuration: left out (no diff).
    let mut recorded_before = fresh.clone();
    recorded_before.kubernetes_version = None;
    recorded_before.installer_image = None;
    let kept = check(args(), Some(recorded_before.clone()));
    assert_eq!((kept.kubernetes_version, kept.installer_image), (None, None));
    // ... and a new version shows as one.
    let mut newer = args();
    newer.config_patches = Some(vec!["machine:\n  kubelet:\n    image: ghcr.io/siderolabs/kubelet:v1.35.1\n".into()]);
    assert_eq!(check(newer, Some(recorded_before)).kubernetes_version.as_deref(), Some("v1.35.1"));
}

#[test]
fn check_names_each_bad_input() {
    assert!(failures(&args()).is_empty(), "{:?}", failures(&args()));
    let mut a = args();
    a.node = " ".into();
    a.endpoint = Some(String::new());
    a.apply_mode = Some("sometimes".into());
    a.config_patches = Some(vec!["machine:\n  bogus: 1\n".into()]);
    a.timeouts = Some(Timeouts { create: Some("forever".into()), ..Default::default() });
    let f = failures(&a);
    let paths: Vec<&str> = f.iter().map(|f| f.property.as_str()).collect();
    assert_eq!(paths, ["node", "endpoint", "applyMode", "configPatches[0]", "timeouts.create"]);
    assert!(f[2].reason.contains("staged_if_needing_reboot"), "{}", f[2].reason);
}

#[test]
fn node_changes_replace_unless_the_node_moved_to_its_static_address() {
    let old = args();
    let mut moved = args();
    moved.node = "127.9.9.20".into();
    assert_eq!(ConfigurationApply.replacements(&old, &moved), Some(vec![]));
    let mut other = args();
    other.node = "127.9.9.21".into();
    assert_eq!(ConfigurationApply.replacements(&old, &other), Some(vec!["node".to_string()]));
    let mut patched = args();
    patched.config_patches = None;
    assert_eq!(ConfigurationApply.replacements(&old, &patched), Some(vec![]), "a patch change is in place");
}
