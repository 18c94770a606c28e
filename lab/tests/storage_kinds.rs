//! Storage kinds over real HTTPS, written from PVE's storage plugins: the
//! `lvmthin` storage a fresh PVE install has (`local-lvm`: thin pool `data` of
//! volume group `pve`, raw images and container volumes only, `vm-N-disk-M`,
//! `base-N-disk-M` after a template conversion, linked clones that do not name
//! their base), beside `zfspool` whose linked clones do.

use std::time::Duration;

use proxmox_talos_lab::pve::apidoc::ApiDoc;
use proxmox_talos_lab::pve::auth::Auth;
use proxmox_talos_lab::pve::lab_config::{LabConfig, Timing};
use proxmox_talos_lab::pve::server::{self, PveState};
use proxmox_talos_lab::pve::tls::LabCa;
use serde_json::Value;

const TOKEN: &str = "PVEAPIToken=root@pam!lab=00000000-1111-2222-3333-444444444444";

struct Lab {
    url: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let ca = LabCa::load_or_create(dir.path()).unwrap();
    let apidoc = ApiDoc::load(&ApiDoc::locate().unwrap()).unwrap();
    let auth = Auth::new().with_token("root@pam!lab", "00000000-1111-2222-3333-444444444444");
    let mut config = LabConfig::single_node();
    config.timing = Timing::instant();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = PveState::new(apidoc, auth, config, dir.path()).unwrap();
    tokio::spawn(server::serve(listener, ca.server_config().unwrap(), state, std::future::pending()));
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap())
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    Lab { url: server::base_url(addr), client, _dir: dir }
}

impl Lab {
    /// Status and body of a request with form parameters.
    async fn call(&self, method: &str, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let request = match method {
            "GET" => self.client.get(url).query(form),
            "DELETE" => self.client.delete(url).query(form),
            "PUT" => self.client.put(url).form(form),
            _ => self.client.post(url).form(form),
        };
        let response = request.header("Authorization", TOKEN).send().await.unwrap();
        let status = response.status().as_u16();
        (status, serde_json::from_slice(&response.bytes().await.unwrap()).unwrap_or(Value::Null))
    }

    async fn ok(&self, method: &str, path: &str, form: &[(&str, &str)]) -> Value {
        let (status, body) = self.call(method, path, form).await;
        assert_eq!(status, 200, "{method} {path}: {body}");
        body["data"].clone()
    }

    /// PVE's error message of a refused request.
    async fn refused(&self, method: &str, path: &str, form: &[(&str, &str)]) -> String {
        let (status, body) = self.call(method, path, form).await;
        assert_ne!(status, 200, "{method} {path}: {body}");
        body["message"].as_str().unwrap_or_default().trim_end().to_string()
    }

    /// Starts a task and waits for it (deadline 20 s): its exit status.
    async fn task(&self, method: &str, path: &str, form: &[(&str, &str)]) -> String {
        let upid = self.ok(method, path, form).await.as_str().unwrap().to_string();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::time::Instant::now() < deadline {
            let status = self.ok("GET", &format!("/nodes/pve/tasks/{upid}/status"), &[]).await;
            if status["status"] == "stopped" {
                return status["exitstatus"].as_str().unwrap().to_string();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("task {upid} did not end within 20 s");
    }

    async fn config(&self, vmid: u32) -> Value {
        self.ok("GET", &format!("/nodes/pve/qemu/{vmid}/config"), &[]).await
    }

    async fn volids(&self, storage: &str) -> Vec<Value> {
        self.ok("GET", &format!("/nodes/pve/storage/{storage}/content"), &[]).await.as_array().unwrap().clone()
    }
}

#[tokio::test]
async fn a_fresh_install_has_local_lvm_as_a_thin_pool_for_images_and_containers() {
    let lab = start().await;
    let cfg = lab.ok("GET", "/storage/local-lvm", &[]).await;
    assert_eq!(
        (cfg["type"].as_str(), cfg["thinpool"].as_str(), cfg["vgname"].as_str(), cfg["content"].as_str()),
        (Some("lvmthin"), Some("data"), Some("pve"), Some("images,rootdir")),
        "{cfg}"
    );
    assert!(cfg.get("path").is_none() && cfg.get("pool").is_none(), "{cfg}");
    let listed = lab.ok("GET", "/storage", &[("type", "lvmthin")]).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let status = lab.ok("GET", "/nodes/pve/storage/local-lvm/status", &[]).await;
    assert_eq!((status["type"].as_str(), status["active"].as_i64()), (Some("lvmthin"), Some(1)), "{status}");
    let formats = lab.ok("GET", "/nodes/pve/storage", &[("storage", "local-lvm"), ("format", "1")]).await;
    assert_eq!(formats[0]["formats"]["supported"], serde_json::json!(["raw"]), "{formats}");
    // No ISO, no snippets: not content an LVM thin pool holds.
    let isos = lab.ok("GET", "/nodes/pve/storage", &[("content", "iso")]).await;
    assert!(isos.as_array().unwrap().iter().all(|s| s["storage"] != "local-lvm"), "{isos}");
}

#[tokio::test]
async fn lvm_thin_volumes_are_named_allocated_based_and_cloned_as_pve_does() {
    let lab = start().await;
    let status = lab
        .task(
            "POST",
            "/nodes/pve/qemu",
            &[("vmid", "100"), ("scsi0", "local-lvm:4"), ("ide2", "local-lvm:cloudinit"), ("name", "base")],
        )
        .await;
    assert_eq!(status, "OK");
    let c = lab.config(100).await;
    assert_eq!(c["scsi0"], "local-lvm:vm-100-disk-0,size=4G");
    assert_eq!(c["ide2"], "local-lvm:vm-100-cloudinit,media=cdrom");
    let listed = lab.volids("local-lvm").await;
    let disk = listed.iter().find(|v| v["volid"] == "local-lvm:vm-100-disk-0").unwrap();
    assert_eq!((disk["format"].as_str(), disk["vmid"].as_u64()), (Some("raw"), Some(100)), "{disk}");
    assert_eq!(disk["size"], 4u64 << 30);

    // Allocation: raw only, names owned by the VM, taken names refused by lvcreate.
    let content = "/nodes/pve/storage/local-lvm/content";
    let alloc = |name: &'static str, format: &'static str| {
        [("vmid", "100"), ("filename", name), ("size", "1G"), ("format", format)]
    };
    assert_eq!(lab.refused("POST", content, &alloc("vm-100-disk-5", "qcow2")).await, "unsupported format 'qcow2'");
    assert_eq!(
        lab.refused("POST", content, &alloc("vm-101-disk-5", "raw")).await,
        "illegal name 'vm-101-disk-5' - should be 'vm-100-*'"
    );
    assert_eq!(
        lab.refused("POST", content, &alloc("vm-100-disk-0", "raw")).await,
        "lvcreate 'pve/vm-100-disk-0' error:   Logical Volume \"vm-100-disk-0\" already exists in volume group \"pve\""
    );
    assert_eq!(lab.ok("POST", content, &alloc("vm-100-disk-5", "raw")).await, "local-lvm:vm-100-disk-5");
    let info = lab.ok("GET", &format!("{content}/local-lvm:vm-100-disk-5"), &[]).await;
    assert_eq!((info["path"].as_str(), info["format"].as_str()), (Some("/dev/pve/vm-100-disk-5"), Some("raw")));
    assert_eq!(
        lab.refused("GET", &format!("{content}/local-lvm:disk-5"), &[]).await,
        "unable to parse lvm volume name 'disk-5'"
    );
    assert_eq!(
        lab.refused("GET", &format!("{content}/local-lvm:base-100-disk-0%2Fvm-101-disk-0"), &[]).await,
        "lvm name 'base-100-disk-0/vm-101-disk-0' contains illegal characters"
    );
    assert_eq!(lab.task("DELETE", &format!("{content}/local-lvm:vm-100-disk-5"), &[]).await, "OK");

    // A template's disks become base volumes (lvrename vm- → base-).
    assert_eq!(lab.task("POST", "/nodes/pve/qemu/100/template", &[]).await, "OK");
    assert_eq!(lab.config(100).await["scsi0"], "local-lvm:base-100-disk-0,size=4G");
    // A linked clone is a thin snapshot named like any disk of the new VM: PVE's
    // LvmThinPlugin does not record the base in the volume name (ZFS does).
    assert_eq!(lab.task("POST", "/nodes/pve/qemu/100/clone", &[("newid", "101"), ("full", "0")]).await, "OK");
    assert_eq!(lab.config(101).await["scsi0"], "local-lvm:vm-101-disk-0,size=4G");
    let listed = lab.volids("local-lvm").await;
    let ids: Vec<&str> = listed.iter().map(|v| v["volid"].as_str().unwrap()).collect();
    assert!(ids.contains(&"local-lvm:base-100-disk-0") && ids.contains(&"local-lvm:vm-101-disk-0"), "{ids:?}");
    assert!(listed.iter().all(|v| v.get("parent").is_none()), "{listed:?}");
    // Full clones are raw on the thin pool too, whatever format is asked.
    let full = [("newid", "102"), ("full", "1"), ("storage", "local-lvm")];
    assert_eq!(lab.task("POST", "/nodes/pve/qemu/100/clone", &full).await, "OK");
    assert_eq!(lab.config(102).await["scsi0"], "local-lvm:vm-102-disk-0,size=4G");
    // Nothing ties the clone to the base, so the template goes (ZFS refuses, see below).
    assert_eq!(lab.task("DELETE", "/nodes/pve/qemu/100", &[]).await, "OK");
    let ids: Vec<String> =
        lab.volids("local-lvm").await.iter().map(|v| v["volid"].as_str().unwrap().to_string()).collect();
    let kept = ["local-lvm:vm-101-cloudinit", "local-lvm:vm-101-disk-0", "local-lvm:vm-102-cloudinit"];
    assert_eq!(ids, [&kept[..], &["local-lvm:vm-102-disk-0"]].concat());
}

#[tokio::test]
async fn zfs_linked_clones_name_their_base_where_lvm_thin_ones_do_not() {
    let lab = start().await;
    let create = [("vmid", "200"), ("scsi0", "local-zfs:2")];
    assert_eq!(lab.task("POST", "/nodes/pve/qemu", &create).await, "OK");
    assert_eq!(lab.task("POST", "/nodes/pve/qemu/200/template", &[]).await, "OK");
    assert_eq!(lab.task("POST", "/nodes/pve/qemu/200/clone", &[("newid", "201"), ("full", "0")]).await, "OK");
    assert_eq!(lab.config(201).await["scsi0"], "local-zfs:base-200-disk-0/vm-201-disk-0,size=2G");
    let listed = lab.volids("local-zfs").await;
    let clone = listed.iter().find(|v| v["volid"] == "local-zfs:base-200-disk-0/vm-201-disk-0").unwrap();
    assert_eq!(clone["parent"], "base-200-disk-0@__base__", "{clone}");
    assert_eq!(
        lab.task("DELETE", "/nodes/pve/qemu/200", &[]).await,
        "base volume 'local-zfs:base-200-disk-0' is still in use by linked cloned"
    );
    // A volume name the thin pool cannot have is refused with the LVM plugin's text.
    let content = "/nodes/pve/storage/local-lvm/content";
    let form = [("vmid", "200"), ("filename", "vm-200-disk-0.qcow2"), ("size", "1G")];
    assert_eq!(lab.refused("POST", content, &form).await, "unsupported format 'qcow2'");
}
