//! The Image Factory resource and functions end to end: the lab factory runs
//! in-process on 127.0.0.1:0 and the built plugin is driven over gRPC as the
//! engine drives it — Configure, Check, Diff, Create (preview, then real),
//! Read (refresh and import), Invoke.

mod support;

use proxmox_talos::rpc::proto::pulumirpc as rpc;
use proxmox_talos::talos::schematic::VANILLA_SCHEMATIC_ID;
use proxmox_talos::value::PropertyValue;
use proxmox_talos_lab::factory::{self, images, FactoryState};
use support::*;

const URN: &str = "urn:pulumi:dev::homelab::proxmox-talos:imagefactory:Schematic::talos";
const TYPE: &str = "proxmox-talos:imagefactory:Schematic";
const SEED: &str = "customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/iscsi-tools   # block storage\n      - siderolabs/qemu-guest-agent\n      - siderolabs/util-linux-tools\n";
const SEED_ID: &str = "88d1f7a5c4f1d3aba7df787c448c1d3d008ed29cfb34af53fa0df4336a56040b";

/// Starts the lab factory on loopback; it stops with the test runtime.
async fn lab_factory() -> (String, FactoryState) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = FactoryState::new();
    tokio::spawn(factory::serve(listener, state.clone(), std::future::pending()));
    (url, state)
}

fn check_req(news: prost_types::Struct) -> rpc::CheckRequest {
    rpc::CheckRequest {
        urn: URN.into(),
        olds: Some(obj(&[])),
        news: Some(news),
        random_seed: vec![7; 32],
        name: "talos".into(),
        r#type: TYPE.into(),
        autonaming: None,
    }
}

fn invoke(tok: &str, args: &[(&str, PropertyValue)]) -> rpc::InvokeRequest {
    rpc::InvokeRequest { tok: tok.into(), args: Some(obj(args)), preview: false }
}

fn array(v: &PropertyValue) -> Vec<PropertyValue> {
    match v {
        PropertyValue::Array(items) => items.clone(),
        other => panic!("expected a list, got {other:?}"),
    }
}

fn list(items: &[&str]) -> PropertyValue {
    PropertyValue::Array(items.iter().map(|i| s(i)).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schematics_and_factory_functions_against_the_lab_factory() {
    let (url, factory) = lab_factory().await;
    let (engine, logs) = fake_engine().await;
    let plugin = launch(&[engine.as_str()]);
    let mut c = client(plugin.port).await;
    c.configure(rpc::ConfigureRequest {
        args: Some(obj(&[("imageFactoryUrl", s(&url))])),
        accept_secrets: true,
        accept_resources: true,
        ..Default::default()
    })
    .await
    .unwrap();

    // Check: an unknown field fails at `schematic`, naming its path inside the YAML.
    let bad = c
        .check(check_req(obj(&[("schematic", s("customization:\n  systemExtension:\n    officialExtensions: [a]\n"))])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bad.failures.len(), 1, "{:?}", bad.failures);
    assert_eq!(bad.failures[0].property, "schematic");
    assert!(
        bad.failures[0].reason.starts_with("customization.systemExtension: unknown field"),
        "{}",
        bad.failures[0].reason
    );
    assert!(bad.failures[0].reason.contains("systemExtensions"), "names the valid fields: {}", bad.failures[0].reason);

    // Check normalises to the canonical YAML (the comment and indentation go).
    let checked = c.check(check_req(obj(&[("schematic", s(SEED))]))).await.unwrap().into_inner();
    assert!(checked.failures.is_empty(), "{:?}", checked.failures);
    let inputs = checked.inputs.unwrap();
    let canonical = props(Some(inputs.clone()))["schematic"].as_str().unwrap().to_string();
    assert!(
        canonical.starts_with("customization:\n    systemExtensions:\n") && !canonical.contains('#'),
        "{canonical}"
    );

    // Preview: the ID is known without asking the factory.
    let create = |preview| rpc::CreateRequest {
        urn: URN.into(),
        properties: Some(inputs.clone()),
        preview,
        timeout: 60.0,
        r#type: TYPE.into(),
        ..Default::default()
    };
    let preview = c.create(create(true)).await.unwrap().into_inner();
    assert_eq!(props(preview.properties)["schematicId"], s(SEED_ID));
    assert_eq!(factory.schematic(SEED_ID), None, "preview changes nothing");

    // Create registers the schematic with the factory.
    let created = c.create(create(false)).await.unwrap().into_inner();
    assert_eq!(created.id, SEED_ID);
    let state = props(created.properties.clone());
    assert_eq!(state["schematicId"], s(SEED_ID));
    assert_eq!(state["schematic"], s(&canonical));
    assert_eq!(factory.schematic(SEED_ID).as_deref(), Some(canonical.as_str()), "the factory has it now");

    // Diff: a comment-only edit is no change; another extension list replaces.
    let diff = |news: prost_types::Struct| rpc::DiffRequest {
        id: SEED_ID.into(),
        urn: URN.into(),
        olds: created.properties.clone(),
        news: Some(news),
        old_inputs: Some(inputs.clone()),
        r#type: TYPE.into(),
        ..Default::default()
    };
    let recheck = c.check(check_req(obj(&[("schematic", s(&format!("# seed\n{SEED}")))]))).await.unwrap().into_inner();
    let same = c.diff(diff(recheck.inputs.unwrap())).await.unwrap().into_inner();
    assert_eq!(same.changes, rpc::diff_response::DiffChanges::DiffNone as i32);
    let other = c.check(check_req(obj(&[("schematic", s("customization: {extraKernelArgs: [net.ifnames=0]}"))]))).await;
    let changed = c.diff(diff(other.unwrap().into_inner().inputs.unwrap())).await.unwrap().into_inner();
    assert_eq!(changed.changes, rpc::diff_response::DiffChanges::DiffSome as i32);
    assert_eq!(changed.replaces, vec!["schematic"]);

    // Import by ID reads the schematic back from the factory; an unknown ID is gone.
    let import =
        |id: &str| rpc::ReadRequest { id: id.into(), urn: URN.into(), r#type: TYPE.into(), ..Default::default() };
    let imported = c.read(import(SEED_ID)).await.unwrap().into_inner();
    assert_eq!(imported.id, SEED_ID);
    assert_eq!(props(imported.inputs)["schematic"], s(&canonical));
    let missing = c.read(import(&"0".repeat(64))).await.unwrap().into_inner();
    assert!(missing.id.is_empty(), "an ID the factory does not know reads as gone");

    // getVersions, with and without the stable filter.
    let all = c.invoke(invoke("proxmox-talos:imagefactory:getVersions", &[])).await.unwrap().into_inner();
    let all = array(&props(all.r#return)["talosVersions"]);
    assert!(all.contains(&s("v1.12.4")) && all.iter().any(|v| v.as_str().unwrap().contains("-alpha")), "{all:?}");
    let filters = PropertyValue::Object(map(&[("stableVersionsOnly", PropertyValue::Bool(true))]));
    let stable =
        c.invoke(invoke("proxmox-talos:imagefactory:getVersions", &[("filters", filters)])).await.unwrap().into_inner();
    let stable = array(&props(stable.r#return)["talosVersions"]);
    assert!(stable.contains(&s("v1.12.4")) && !stable.iter().any(|v| v.as_str().unwrap().contains('-')), "{stable:?}");

    // getExtensionsVersions: substring and exact filters.
    let extensions = |args: &[(&str, PropertyValue)]| invoke("proxmox-talos:imagefactory:getExtensionsVersions", args);
    let names = |r: rpc::InvokeResponse| -> Vec<String> {
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        let infos = array(&props(r.r#return)["extensionsInfos"]);
        infos.iter().map(|i| i.as_object().unwrap()["name"].as_str().unwrap().to_string()).collect()
    };
    let partial = PropertyValue::Object(map(&[("names", list(&["nvidia", "iscsi"]))]));
    let r = c.invoke(extensions(&[("talosVersion", s("v1.12.4")), ("filters", partial)])).await.unwrap().into_inner();
    let found = names(r);
    assert!(found.contains(&"siderolabs/iscsi-tools".to_string()) && found.len() >= 3, "{found:?}");
    assert!(found.iter().all(|n| n.contains("nvidia") || n.contains("iscsi")), "{found:?}");
    let exact = PropertyValue::Object(map(&[("names", list(&["siderolabs/qemu-guest-agent"]))]));
    let r = c.invoke(extensions(&[("talosVersion", s("v1.12.4")), ("exactFilters", exact)])).await.unwrap();
    let r = r.into_inner();
    let info = array(&props(r.r#return.clone())["extensionsInfos"])[0].as_object().unwrap().clone();
    assert_eq!(names(r), vec!["siderolabs/qemu-guest-agent"]);
    assert!(info["ref"].as_str().unwrap().starts_with("ghcr.io/siderolabs/qemu-guest-agent:"));
    assert!(info["digest"].as_str().unwrap().starts_with("sha256:"));
    let bad = c.invoke(extensions(&[("talosVersion", s("1.12"))])).await.unwrap().into_inner();
    assert_eq!(bad.failures[0].property, "talosVersion");
    let unknown = c.invoke(extensions(&[("talosVersion", s("v0.9.0"))])).await.unwrap_err();
    assert!(
        unknown.message().contains("/version/v0.9.0/extensions/official") && unknown.message().contains("404"),
        "{}",
        unknown.message()
    );

    // getUrls points at the lab factory, which serves the ISO for the new schematic.
    let urls = c
        .invoke(invoke(
            "proxmox-talos:imagefactory:getUrls",
            &[("schematicId", s(SEED_ID)), ("talosVersion", s("v1.12.4")), ("platform", s("nocloud"))],
        ))
        .await
        .unwrap()
        .into_inner();
    let iso = props(urls.r#return)["urls"].as_object().unwrap()["iso"].as_str().unwrap().to_string();
    assert_eq!(iso, format!("{url}/image/{SEED_ID}/v1.12.4/nocloud-amd64.iso"));
    let body = reqwest::get(&iso).await.unwrap().error_for_status().unwrap().bytes().await.unwrap();
    let header = images::identify(&body).unwrap();
    assert_eq!((header.schematic.as_str(), header.version.as_str()), (SEED_ID, "v1.12.4"));

    // The status line named the schematic and the factory.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !logs.messages().iter().any(|m| m.ephemeral && m.message.contains(SEED_ID) && m.message.contains(&url)) {
        assert!(std::time::Instant::now() < deadline, "{:?}", logs.messages());
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_ne!(SEED_ID, VANILLA_SCHEMATIC_ID);
}

#[tokio::test]
async fn an_unreachable_factory_fails_create_naming_the_url() {
    let plugin = launch(&[]);
    let mut c = client(plugin.port).await;
    c.configure(rpc::ConfigureRequest {
        args: Some(obj(&[("imageFactoryUrl", s("http://127.0.0.1:1"))])),
        accept_secrets: true,
        accept_resources: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let err = c
        .create(rpc::CreateRequest {
            urn: URN.into(),
            properties: Some(obj(&[("schematic", s("customization: {}\n"))])),
            r#type: TYPE.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.message().contains("POST http://127.0.0.1:1/schematics failed"), "{}", err.message());
}
