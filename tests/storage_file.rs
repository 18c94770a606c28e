//! `storage:File` driven directly (its `CustomResource` methods, with a real
//! `Context`) against the in-process lab and a real OpenSSH server for node
//! `pve`: the error texts for missing SSH settings, a storage without
//! snippets and one that is not file based, `overwrite: false`, uploads over
//! SFTP and through the upload API (inline data spooled), drift found by
//! Read (content for snippets, size for uploads), in-place updates and
//! updates that upload nothing, import by id, and delete (twice).
//!
//! Needs Debian's openssh-server and root (the sshd chroots); without them
//! this test fails and says so. The full CLI flow is `tests/pulumi_files.rs`.

mod support;

use std::sync::Arc;

use proxmox_talos::config::{ProviderConfig, SshConfig};
use proxmox_talos::framework::{
    CheckRequest, Context, CreateRequest, CustomResource, DeleteRequest, ReadRequest, ResourceError, UpdateRequest,
};
use proxmox_talos::resources::storage::file::{File, FileArgs, FileSourceFile, FileSourceRaw, FileState};
use proxmox_talos_lab::in_process::{self, InProcessLab};
use proxmox_talos_lab::pve::lab_config::{LabConfig, StorageConfig, Timing};
use proxmox_talos_lab::ssh;

fn context(lab: &InProcessLab, ssh: Option<SshConfig>, sink: Arc<support::Sink>) -> Context {
    let config = ProviderConfig {
        endpoint: Some(lab.endpoint.clone()),
        api_token: Some(lab.api_token()),
        ca_certificate: Some(lab.ca_path.display().to_string()),
        ssh,
        ..Default::default()
    };
    // Nothing cancels: `is_cancelled` reads the last value, false.
    let (_tx, rx) = tokio::sync::watch::channel(false);
    Context::new(Arc::new(config), sink, "urn:pulumi:test::files::proxmox-talos:storage:File::f", rx, None)
}

fn raw(storage: &str, name: &str, data: &str) -> FileArgs {
    FileArgs {
        node_name: "pve".into(),
        datastore_id: storage.into(),
        content_type: None,
        source_raw: Some(FileSourceRaw { data: data.into(), file_name: name.into() }),
        source_file: None,
        overwrite: None,
        timeout_upload: None,
    }
}

fn check(ctx: &Context, args: FileArgs) -> FileArgs {
    File.check(ctx, CheckRequest { name: "f", inputs: args, olds: None, random_seed: &[] }).unwrap()
}

async fn create(ctx: &Context, args: FileArgs) -> Result<(String, FileState), ResourceError> {
    let args = check(ctx, args);
    let r = File.create(ctx, CreateRequest { name: "f".into(), inputs: args, preview: false }).await?;
    Ok((r.id, r.state))
}

async fn read(ctx: &Context, id: &str, state: Option<&FileState>) -> Option<(FileArgs, FileState)> {
    let req = ReadRequest { id: id.into(), inputs: state.map(|s| s.args.clone()), state: state.cloned() };
    File.read(ctx, req).await.unwrap().map(|r| {
        assert_eq!(r.id, id);
        (r.inputs, r.state)
    })
}

async fn update(ctx: &Context, id: &str, old: &FileState, args: FileArgs) -> FileState {
    let req = UpdateRequest {
        id: id.into(),
        old_inputs: old.args.clone(),
        old_state: old.clone(),
        inputs: check(ctx, args),
        preview: false,
    };
    File.update(ctx, req).await.unwrap()
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

fn failure(r: Result<(String, FileState), ResourceError>) -> String {
    match r {
        Err(ResourceError::Failed(m)) => m,
        other => panic!("expected a failure, got {:?}", other.map(|(id, _)| id)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snippets_and_uploads_through_the_resource() {
    support::require_sshd();
    let dir = support::chroot_capable_dir("storage-file-");
    let state_dir = dir.path().join("lab");
    let mut config = LabConfig::single_node();
    config.timing = Timing::instant();
    let storage = |id: &str, kind: &str, content: &[&str]| StorageConfig {
        id: id.into(),
        kind: kind.into(),
        content: content.iter().map(|c| c.to_string()).collect(),
        shared: false,
        capacity_gib: 10,
    };
    config.storages.push(storage("nosnip", "dir", &["iso"]));
    // PVE allows only images/rootdir on zfspool: the provider must say it is not file based.
    config.storages.push(storage("blocky", "zfspool", &["images"]));
    let lab = in_process::start(config, &state_dir).await.unwrap();
    let sshd = ssh::start_sshd(&state_dir, "pve", &lab.state.node_root("pve"), "127.0.0.1:0".parse().unwrap())
        .unwrap_or_else(|e| panic!("starting sshd: {e}"));
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let key_path = keys.join("id_ed25519");
    let out = support::run(
        std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "provider", "-f"])
            .arg(&key_path),
        60,
    );
    assert!(out.status.success());
    sshd.authorize(&std::fs::read_to_string(key_path.with_extension("pub")).unwrap()).unwrap();

    let sink = Arc::new(support::Sink::default());
    // The key as a file path; the user name from the API token (`root@pam!lab` → root).
    let ssh_config =
        SshConfig { private_key: Some(key_path.display().to_string()), port: Some(sshd.port()), ..Default::default() };
    let ctx = context(&lab, Some(ssh_config), sink.clone());
    let no_ssh = context(&lab, None, Arc::new(support::Sink::default()));
    let local = lab.state.dir_storage_path("pve", "local");

    // What stops an upload before anything is written, and what to do about it.
    let e = failure(create(&no_ssh, raw("local", "user-data.yaml", "#cloud-config\n")).await);
    assert!(e.contains("storage:File uploads snippets over SSH") && e.contains("PROXMOX_VE_SSH_USERNAME"), "{e}");
    assert!(e.contains("proxmox-talos:ssh.username") && e.contains("ssh.privateKey"), "{e}");
    let e = failure(create(&ctx, raw("nosnip", "user-data.yaml", "x")).await);
    assert!(
        e.contains("storage 'nosnip' does not allow content 'snippets'")
            && e.contains("pvesm set nosnip --content iso,snippets")
            && e.contains("Datacenter → Storage"),
        "{e}"
    );
    let e = failure(create(&ctx, raw("blocky", "user-data.yaml", "x")).await);
    assert!(e.contains("storage 'blocky' (type zfspool) is not file based"), "{e}");

    // A snippet from a local file, over SFTP.
    let source = dir.path().join("network-config.yaml");
    std::fs::write(&source, "version: 2\n").unwrap();
    let from_file = FileArgs {
        source_raw: None,
        source_file: Some(FileSourceFile { path: source.display().to_string(), file_name: None, checksum: None }),
        ..raw("local", "unused", "")
    };
    let (id, state) = create(&ctx, from_file.clone()).await.unwrap();
    assert_eq!(id, "pve/local:snippets/network-config.yaml");
    assert_eq!(state.volume_id.as_deref(), Some("local:snippets/network-config.yaml"));
    assert_eq!(state.file_size, Some(11));
    assert_eq!(state.content_sha256.as_deref(), Some(sha256(b"version: 2\n").as_str()));
    assert!(state.file_modification_date.as_deref().is_some_and(|d| d.ends_with('Z')), "{state:?}");
    assert_eq!(std::fs::read_to_string(local.join("snippets/network-config.yaml")).unwrap(), "version: 2\n");
    assert!(sink.any("uploading network-config.yaml to pve:/var/lib/vz/snippets over SFTP"));
    assert!(sink.any("SSH host key of node pve"));

    // overwrite: false refuses an existing file and says how to take it over.
    let e = failure(create(&ctx, FileArgs { overwrite: Some(false), ..from_file.clone() }).await);
    assert!(e.contains("already exists") && e.contains("pulumi import") && e.contains(&id), "{e}");

    // Refresh: unchanged; then a change made on the node comes back as the checksum.
    let (inputs, refreshed) = read(&ctx, &id, Some(&state)).await.unwrap();
    assert_eq!(inputs, state.args);
    assert_eq!(refreshed.content_sha256, state.content_sha256);
    std::fs::write(local.join("snippets/network-config.yaml"), "version: 1\n").unwrap();
    let (inputs, drifted) = read(&ctx, &id, Some(&state)).await.unwrap();
    let checksum = inputs.source_file.as_ref().unwrap().checksum.clone();
    assert_eq!(checksum.as_deref(), Some(sha256(b"version: 1\n").as_str()));
    assert_eq!(drifted.content_sha256, checksum);

    // The program's file (unchanged) differs from the drifted state: update writes it again, in place.
    let repaired = update(&ctx, &id, &drifted, from_file.clone()).await;
    assert_eq!(std::fs::read_to_string(local.join("snippets/network-config.yaml")).unwrap(), "version: 2\n");
    assert_eq!(repaired.content_sha256, state.content_sha256);
    // A settings-only change uploads nothing (the node's copy is left as it is).
    std::fs::write(local.join("snippets/network-config.yaml"), "version: 3\n").unwrap();
    let same = update(&ctx, &id, &repaired, FileArgs { timeout_upload: Some(60), ..from_file.clone() }).await;
    assert_eq!(same.args.timeout_upload, Some(60));
    assert_eq!(std::fs::read_to_string(local.join("snippets/network-config.yaml")).unwrap(), "version: 3\n");

    // Import by id: the snippet's content becomes `sourceRaw.data`.
    let (imported, imported_state) = read(&ctx, &id, None).await.unwrap();
    let imported_raw = imported.source_raw.as_ref().unwrap();
    assert_eq!((imported_raw.data.as_str(), imported_raw.file_name.as_str()), ("version: 3\n", "network-config.yaml"));
    assert_eq!(imported.content_type.as_deref(), Some("snippets"));
    assert_eq!(imported_state.content_sha256.as_deref(), Some(sha256(b"version: 3\n").as_str()));

    // Delete, twice; then it is gone.
    File.delete(&ctx, DeleteRequest { id: id.clone(), state: same.clone() }).await.unwrap();
    assert!(!local.join("snippets/network-config.yaml").exists());
    File.delete(&ctx, DeleteRequest { id: id.clone(), state: same.clone() }).await.unwrap();
    assert!(read(&ctx, &id, Some(&same)).await.is_none());

    // An ISO from inline data goes through the upload API (no SSH needed).
    let iso = FileArgs { content_type: Some("iso".into()), ..raw("local", "seed.iso", "not really an ISO") };
    let (iso_id, iso_state) = create(&no_ssh, iso.clone()).await.unwrap();
    assert_eq!(iso_id, "pve/local:iso/seed.iso");
    assert_eq!(std::fs::read_to_string(local.join("template/iso/seed.iso")).unwrap(), "not really an ISO");
    assert_eq!(iso_state.file_size, Some(17));
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name().to_string_lossy().starts_with(&format!("proxmox-talos-upload-{}-", std::process::id()))
        })
        .collect();
    assert!(leftovers.is_empty(), "spooled uploads left behind");
    // New data: uploaded again in place.
    let changed =
        FileArgs { source_raw: Some(FileSourceRaw { data: "v2".into(), file_name: "seed.iso".into() }), ..iso };
    let iso_state = update(&no_ssh, &iso_id, &iso_state, changed).await;
    assert_eq!(std::fs::read_to_string(local.join("template/iso/seed.iso")).unwrap(), "v2");
    assert_eq!(iso_state.file_size, Some(2));
    // A size change on the node is drift: the data comes back empty and the checksum unknown.
    std::fs::write(local.join("template/iso/seed.iso"), "grown on the node").unwrap();
    let (inputs, drifted) = read(&no_ssh, &iso_id, Some(&iso_state)).await.unwrap();
    assert_eq!(inputs.source_raw.unwrap().data, "");
    assert_eq!((drifted.file_size, drifted.content_sha256), (Some(17), None));
    File.delete(&no_ssh, DeleteRequest { id: iso_id.clone(), state: iso_state }).await.unwrap();
    assert!(!local.join("template/iso/seed.iso").exists());
    drop(sshd);
}
