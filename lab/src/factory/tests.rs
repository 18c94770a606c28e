//! The lab factory over real HTTP on loopback, driven by the provider's own
//! factory client and by plain requests.

use super::*;
use proxmox_talos::talos::factory_client::{FactoryClient, FactoryError};

/// Starts a factory on 127.0.0.1:0; returns its URL and state. It stops with the test runtime.
async fn start() -> (String, FactoryState) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = FactoryState::new();
    tokio::spawn(serve(listener, state.clone(), std::future::pending()));
    (url, state)
}

const SEED: &str = "customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/iscsi-tools\n      - siderolabs/qemu-guest-agent\n      - siderolabs/util-linux-tools\n";
const SEED_ID: &str = "88d1f7a5c4f1d3aba7df787c448c1d3d008ed29cfb34af53fa0df4336a56040b";

#[tokio::test]
async fn schematics_are_created_from_yaml_or_json_and_read_back() {
    let (url, state) = start().await;
    let client = FactoryClient::new(&url).unwrap();
    assert_eq!(client.schematic(SEED_ID).await.unwrap(), None, "unknown IDs are 404");

    let created = client.create_schematic(SEED).await.unwrap();
    assert_eq!(created.id, SEED_ID);
    let canonical = created.schematic.unwrap();
    assert!(canonical.starts_with("customization:\n    systemExtensions:\n"), "{canonical}");
    assert_eq!(client.schematic(SEED_ID).await.unwrap().as_deref(), Some(canonical.as_str()));
    assert!(state.schematic_ids().contains(&SEED_ID.to_string()));

    let json = r#"{"customization":{"systemExtensions":{"officialExtensions":["siderolabs/iscsi-tools","siderolabs/qemu-guest-agent","siderolabs/util-linux-tools"]}}}"#;
    assert_eq!(client.create_schematic(json).await.unwrap().id, SEED_ID);
    assert!(client.schematic(VANILLA_SCHEMATIC_ID).await.unwrap().is_some(), "the vanilla schematic is known");
}

#[tokio::test]
async fn invalid_schematics_get_the_factorys_400() {
    let (url, _) = start().await;
    let resp = reqwest::Client::new()
        .post(format!("{url}/schematics"))
        .body("customization:\n  systemExtension:\n    officialExtensions: [a]\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(
        resp.text().await.unwrap(),
        "yaml: unmarshal errors:\n  line 2: field systemExtension not found in type schematic.Customization\n"
    );
    let e = FactoryClient::new(&url)
        .unwrap()
        .create_schematic("customization: {meta: [{key: 300, value: x}]}")
        .await
        .unwrap_err();
    match e {
        FactoryError::Status { status, body, .. } => {
            assert_eq!(status, "400 Bad Request");
            assert!(body.contains("customization.meta[0].key"), "{body}");
        }
        other => panic!("{other}"),
    }
    let resp = reqwest::Client::new().post(format!("{url}/schematics")).body("").send().await.unwrap();
    assert_eq!((resp.status().as_u16(), resp.text().await.unwrap()), (400, "EOF\n".to_string()));
}

#[tokio::test]
async fn versions_and_extensions() {
    let (url, _) = start().await;
    let client = FactoryClient::new(&url).unwrap();
    let versions = client.versions().await.unwrap();
    assert!(versions.contains(&"v1.12.4".to_string()));
    let extensions = client.official_extensions("v1.12.4").await.unwrap();
    let agent = extensions.iter().find(|e| e.name == "siderolabs/qemu-guest-agent").unwrap();
    assert!(agent.reference.starts_with("ghcr.io/siderolabs/qemu-guest-agent:"));
    assert!(agent.digest.starts_with("sha256:") && agent.digest.len() == 71, "{}", agent.digest);
    for name in [
        "siderolabs/iscsi-tools",
        "siderolabs/util-linux-tools",
        "siderolabs/nvidia-open-gpu-kernel-modules-production",
    ] {
        assert!(extensions.iter().any(|e| e.name == name), "{name}");
    }
    let e = client.official_extensions("v0.1.0").await.unwrap_err();
    assert!(matches!(e, FactoryError::Status { ref status, .. } if status.starts_with("404")), "{e}");
}

#[tokio::test]
async fn images_carry_the_schematic_and_version() {
    let (url, _) = start().await;
    FactoryClient::new(&url).unwrap().create_schematic(SEED).await.unwrap();
    let http = reqwest::Client::new();
    for file in
        ["nocloud-amd64.raw.zst", "nocloud-amd64.raw.gz", "nocloud-amd64.iso", "metal-amd64.qcow2", "nocloud-amd64.raw"]
    {
        let resp = http.get(format!("{url}/image/{SEED_ID}/v1.12.4/{file}")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{file}");
        assert_eq!(resp.headers()["content-disposition"], format!("attachment; filename=\"{file}\""));
        let header = images::identify(&resp.bytes().await.unwrap()).unwrap();
        assert_eq!((header.schematic.as_str(), header.version.as_str()), (SEED_ID, "v1.12.4"), "{file}");
    }
    let head = http.head(format!("{url}/image/{SEED_ID}/v1.12.4/nocloud-amd64.iso")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], images::PAYLOAD_SIZE.to_string());
    let unknown = "0".repeat(64);
    for path in [
        format!("/image/{unknown}/v1.12.4/nocloud-amd64.iso"),
        format!("/image/{SEED_ID}/v9.9.9/nocloud-amd64.iso"),
        format!("/image/{SEED_ID}/v1.12.4/nocloud-amd64.raw.xz"),
    ] {
        assert_eq!(http.get(format!("{url}{path}")).send().await.unwrap().status(), 404, "{path}");
    }
}
