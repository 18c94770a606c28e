//! The lab's VM endpoints driven as bpg's provider drives PVE (nextid →
//! create → wait for the UPID → start → wait for the agent → config →
//! resize → status → shutdown/stop → destroy), and PVE's answers to the
//! failure cases a provider must handle: lock timeouts, VMID races, digest
//! mismatches, root-only hostpci, linked clones, clones to non-shared
//! storage, shrinking, the agent before boot, pending changes, migration.

use std::path::PathBuf;
use std::time::Duration;

use proxmox_talos_lab::pve::apidoc::ApiDoc;
use proxmox_talos_lab::pve::auth::Auth;
use proxmox_talos_lab::pve::lab_config::{LabConfig, Timing};
use proxmox_talos_lab::pve::qemu::guest_address;
use proxmox_talos_lab::pve::server::{self, PveState};
use proxmox_talos_lab::pve::tls::LabCa;
use serde_json::Value;

const TOKEN: &str = "PVEAPIToken=root@pam!lab=00000000-1111-2222-3333-444444444444";

struct Lab {
    url: String,
    client: reqwest::Client,
    state: PveState,
    /// `PVEAuthCookie=...` and the CSRF token of a root@pam ticket.
    root: (String, String),
    _dir: tempfile::TempDir,
}

fn fast() -> Timing {
    Timing { task_ms: 10, boot_ms: 0, agent_ms: 0, lock_wait_ms: 500 }
}

async fn start(config: LabConfig, timing: Timing) -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let ca = LabCa::load_or_create(dir.path()).unwrap();
    let apidoc = ApiDoc::load(&ApiDoc::locate().unwrap()).unwrap();
    let auth = Auth::new()
        .with_user("root@pam", "lab-password")
        .with_token("root@pam!lab", "00000000-1111-2222-3333-444444444444");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = PveState::new(apidoc, auth, LabConfig { timing, ..config }, dir.path()).unwrap();
    tokio::spawn(server::serve(listener, ca.server_config().unwrap(), state.clone(), std::future::pending()));
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let url = server::base_url(addr);
    let login = [("username", "root@pam"), ("password", "lab-password")];
    let response = client.post(format!("{url}/access/ticket")).form(&login).send().await.unwrap();
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let root = (
        format!("PVEAuthCookie={}", body["data"]["ticket"].as_str().unwrap()),
        body["data"]["CSRFPreventionToken"].as_str().unwrap().to_string(),
    );
    Lab { url, client, state, root, _dir: dir }
}

impl Lab {
    async fn send(&self, method: &str, path: &str, form: &[(&str, &str)], as_root: bool) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(m.clone(), &url);
        req = if as_root {
            req.header("Cookie", &self.root.0).header("CSRFPreventionToken", &self.root.1)
        } else {
            req.header("Authorization", TOKEN)
        };
        req = if m == reqwest::Method::GET || m == reqwest::Method::DELETE { req.query(form) } else { req.form(form) };
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, serde_json::from_slice(&r.bytes().await.unwrap()).unwrap())
    }

    /// A call that must answer 200; its `data`.
    async fn ok(&self, method: &str, path: &str, form: &[(&str, &str)]) -> Value {
        let (status, body) = self.send(method, path, form, false).await;
        assert_eq!(status, 200, "{method} {path}: {body}");
        body["data"].clone()
    }

    /// A call that must answer an error: (status, message without the newline, errors).
    async fn err(&self, method: &str, path: &str, form: &[(&str, &str)]) -> (u16, String, Value) {
        let (status, body) = self.send(method, path, form, false).await;
        assert_ne!(status, 200, "{method} {path} should fail: {body}");
        (status, body["message"].as_str().unwrap_or("").trim_end().to_string(), body["errors"].clone())
    }

    /// Waits for a task as bpg does (node from the UPID): (exitstatus, log lines).
    async fn wait(&self, upid: &Value) -> (String, Vec<String>) {
        let upid = upid.as_str().unwrap_or_else(|| panic!("not a UPID: {upid}"));
        assert!(upid.starts_with("UPID:"), "{upid}");
        let node = upid.split(':').nth(1).unwrap();
        let escaped: String = form_urlencoded::byte_serialize(upid.as_bytes()).collect();
        for _ in 0..1000 {
            let status = self.ok("GET", &format!("/nodes/{node}/tasks/{escaped}/status"), &[]).await;
            if status["status"] == "stopped" {
                let log = self.ok("GET", &format!("/nodes/{node}/tasks/{escaped}/log"), &[("limit", "1000")]).await;
                let lines = log.as_array().unwrap().iter().map(|l| l["t"].as_str().unwrap().to_string()).collect();
                return (status["exitstatus"].as_str().unwrap().to_string(), lines);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("task {upid} did not end");
    }

    /// A task that must end OK.
    async fn task_ok(&self, method: &str, path: &str, form: &[(&str, &str)]) -> Vec<String> {
        let upid = self.ok(method, path, form).await;
        let (status, log) = self.wait(&upid).await;
        assert_eq!(status, "OK", "{method} {path}: {log:?}");
        log
    }

    /// A task that must fail: its exit status.
    async fn task_err(&self, method: &str, path: &str, form: &[(&str, &str)]) -> String {
        let upid = self.ok(method, path, form).await;
        let (status, log) = self.wait(&upid).await;
        assert_ne!(status, "OK", "{method} {path} should fail: {log:?}");
        status
    }

    fn import_dir(&self, node: &str) -> PathBuf {
        self.state.dir_storage_path(node, "local").join("import")
    }
}

async fn config(lab: &Lab, node: &str, vmid: u32) -> Value {
    lab.ok("GET", &format!("/nodes/{node}/qemu/{vmid}/config"), &[]).await
}

#[tokio::test]
async fn a_vm_goes_through_bpgs_lifecycle() {
    let lab = start(LabConfig::single_node(), fast()).await;
    let image = lab.import_dir("pve").join("talos-v1.12.4-nocloud-amd64.raw");
    std::fs::File::create(&image).unwrap().set_len(1536 << 20).unwrap();

    let vmid = lab.ok("GET", "/cluster/nextid", &[]).await;
    assert_eq!(vmid, "100");
    assert_eq!(lab.ok("GET", "/cluster/nextid", &[("vmid", "100")]).await, "100");
    let keys = "ssh-ed25519%20AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyMaterial%20me%40host";
    let log = lab
        .task_ok(
            "POST",
            "/nodes/pve/qemu",
            &[
                ("vmid", "100"),
                ("name", "talos-cp-1"),
                ("cores", "2"),
                ("memory", "4096"),
                ("scsihw", "virtio-scsi-single"),
                ("scsi0", "file=local-zfs:0,import-from=local:import/talos-v1.12.4-nocloud-amd64.raw,iothread=1"),
                ("ide2", "local-zfs:cloudinit"),
                ("efidisk0", "file=local-zfs:1,efitype=4m,pre-enrolled-keys=0"),
                ("net0", "model=virtio,bridge=vmbr0,firewall=1,tag=10"),
                ("agent", "enabled=1"),
                ("tags", "talos;cp;cp"),
                ("sshkeys", keys),
                ("ipconfig0", "ip=dhcp"),
                ("bios", "ovmf"),
            ],
        )
        .await;
    assert!(log.iter().any(|l| l.starts_with("scsi0: successfully created disk 'local-zfs:vm-100-disk-1,")), "{log:?}");
    assert_eq!(lab.err("GET", "/cluster/nextid", &[("vmid", "100")]).await.2["vmid"], "VM 100 already exists");

    let c = config(&lab, "pve", 100).await;
    assert_eq!(c["scsi0"], "local-zfs:vm-100-disk-1,iothread=1,size=1536M");
    assert_eq!(c["efidisk0"], "local-zfs:vm-100-disk-0,efitype=4m,pre-enrolled-keys=0,size=528K");
    assert_eq!(c["ide2"], "local-zfs:vm-100-cloudinit,media=cdrom");
    let net0 = c["net0"].as_str().unwrap();
    assert!(net0.starts_with("virtio=BC:24:11:") && net0.ends_with(",bridge=vmbr0,firewall=1,tag=10"), "{net0}");
    assert_eq!(c["tags"], "cp;talos");
    assert_eq!(c["sshkeys"], keys);
    assert_eq!(c["boot"], "order=scsi0;ide2;net0");
    assert_eq!(c["cores"], 2);
    assert_eq!(c["memory"], "4096");
    assert!(c["smbios1"].as_str().unwrap().starts_with("uuid="));
    assert!(c["meta"].as_str().unwrap().starts_with("creation-qemu="));
    assert_eq!(c["digest"].as_str().unwrap().len(), 40);
    assert!(c.get("vmgenid").is_some());
    let origin = lab.state.read(|m| m.volumes["local-zfs:vm-100-disk-1"].origin.clone());
    assert_eq!(origin.as_deref(), Some("local:import/talos-v1.12.4-nocloud-amd64.raw"));

    // bpg resizes imported disks to the wanted size.
    lab.task_ok("PUT", "/nodes/pve/qemu/100/resize", &[("disk", "scsi0"), ("size", "8G")]).await;
    assert_eq!(config(&lab, "pve", 100).await["scsi0"], "local-zfs:vm-100-disk-1,iothread=1,size=8G");

    lab.task_ok("POST", "/nodes/pve/qemu/100/status/start", &[]).await;
    assert_eq!(lab.task_err("POST", "/nodes/pve/qemu/100/status/start", &[]).await, "VM 100 already running");
    let status = lab.ok("GET", "/nodes/pve/qemu/100/status/current", &[]).await;
    assert_eq!(
        (status["status"].as_str(), status["qmpstatus"].as_str(), status["agent"].as_i64()),
        (Some("running"), Some("running"), Some(1))
    );
    assert_eq!(status["maxdisk"], 8u64 << 30);
    assert_eq!(status["maxmem"], 4096u64 << 20);

    let ifaces = lab.ok("GET", "/nodes/pve/qemu/100/agent/network-get-interfaces", &[]).await;
    let result = ifaces["result"].as_array().unwrap();
    assert_eq!(result[0]["name"], "lo");
    assert_eq!(result[0]["ip-addresses"][0]["ip-address"], "127.0.0.1");
    let mac = net0.split(',').next().unwrap().trim_start_matches("virtio=").to_ascii_lowercase();
    let by_mac = |result: &[Value]| result.iter().find(|i| i["hardware-address"] == mac.as_str()).cloned().unwrap();
    let nic = by_mac(result);
    assert_eq!(nic["name"], "eth0");
    assert_eq!(nic["ip-addresses"][0]["ip-address"], "127.42.0.100");
    assert!(nic["ip-addresses"][1]["ip-address"].as_str().unwrap().starts_with("fe80::be24:11ff:fe"));
    assert_eq!(guest_address(&lab.state, 100), Some("127.42.0.100".parse().unwrap()));
    // A Talos guest also lists the kernel's links, down and without addresses, with their MACs.
    let names = |result: &[Value]| result.iter().map(|i| i["name"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let bond = result.iter().find(|i| i["name"] == "bond0").unwrap();
    assert_eq!(bond["ip-addresses"], serde_json::json!([]), "{bond}");
    assert_eq!(bond["hardware-address"].as_str().unwrap().len(), 17);
    assert!(result.iter().all(|i| i["statistics"]["rx-bytes"].is_u64()), "{result:?}");
    // Each boot lists the links in another order; the NIC keeps its MAC and address.
    let before = names(result);
    lab.task_ok("POST", "/nodes/pve/qemu/100/status/reset", &[]).await;
    let ifaces = lab.ok("GET", "/nodes/pve/qemu/100/agent/network-get-interfaces", &[]).await;
    let after = ifaces["result"].as_array().unwrap();
    assert_ne!(names(after), before);
    assert_eq!((names(after)[0].as_str(), after.len()), ("lo", before.len()));
    assert_eq!(by_mac(after), nic);
    assert_eq!(lab.ok("POST", "/nodes/pve/qemu/100/agent/ping", &[]).await, serde_json::json!({ "result": {} }));
    assert_eq!(lab.ok("GET", "/nodes/pve/qemu/100/agent/get-osinfo", &[]).await["result"]["id"], "talos");

    // On a running VM: cores wait for the next start, the name applies now.
    lab.ok("PUT", "/nodes/pve/qemu/100/config", &[("cores", "4"), ("name", "talos-cp-one")]).await;
    let pending = lab.ok("GET", "/nodes/pve/qemu/100/pending", &[]).await;
    let cores = pending.as_array().unwrap().iter().find(|p| p["key"] == "cores").unwrap();
    assert_eq!((cores["value"].as_str(), cores["pending"].as_str()), (Some("2"), Some("4")));
    assert_eq!(config(&lab, "pve", 100).await["cores"], 4);
    let current = lab.ok("GET", "/nodes/pve/qemu/100/config", &[("current", "1")]).await;
    assert_eq!((current["cores"].as_i64(), current["name"].as_str()), (Some(2), Some("talos-cp-one")));

    // The agent is up, so the shutdown goes through it; pending changes apply.
    lab.task_ok("POST", "/nodes/pve/qemu/100/status/shutdown", &[("forceStop", "1"), ("timeout", "5")]).await;
    assert_eq!(lab.ok("GET", "/nodes/pve/qemu/100/status/current", &[]).await["status"], "stopped");
    assert_eq!(lab.ok("GET", "/nodes/pve/qemu/100/config", &[("current", "1")]).await["cores"], 4);
    let (_, msg, _) = lab.err("POST", "/nodes/pve/qemu/100/agent/ping", &[]).await;
    assert_eq!(msg, "VM 100 is not running");

    lab.task_ok("DELETE", "/nodes/pve/qemu/100", &[("purge", "1"), ("destroy-unreferenced-disks", "1")]).await;
    let (status, msg, _) = lab.err("GET", "/nodes/pve/qemu/100/status/current", &[]).await;
    assert_eq!((status, msg.as_str()), (500, "Configuration file 'nodes/pve/qemu-server/100.conf' does not exist"));
    assert_eq!(lab.state.read(|m| m.volumes_of(100).count()), 0);
    assert!(lab.state.read(|m| m.leases.is_empty()));
}

#[tokio::test]
async fn create_refuses_what_pve_refuses() {
    let lab = start(LabConfig::single_node(), fast()).await;
    std::fs::write(lab.state.dir_storage_path("pve", "local").join("template/iso/talos.iso"), b"iso").unwrap();
    let create = "/nodes/pve/qemu";

    let (status, msg, _) = lab.err("POST", create, &[("vmid", "101"), ("scsi0", "nope:10")]).await;
    assert_eq!((status, msg.as_str()), (500, "storage 'nope' does not exist"));
    let (status, _, errors) = lab.err("POST", create, &[("vmid", "101"), ("scsi0", "local:10")]).await;
    assert_eq!((status, errors["storage"].as_str()), (400, Some("storage 'local' does not support vm images")));
    let iso = [("vmid", "101"), ("scsi0", "local-zfs:0,import-from=local:iso/talos.iso")];
    let (status, _, errors) = lab.err("POST", create, &iso).await;
    assert_eq!(status, 400);
    assert_eq!(errors["scsi0"], "local:iso/talos.iso has wrong type 'iso' - needs to be 'images' or 'import'");
    let sized = [("vmid", "101"), ("scsi0", "local-zfs:5,import-from=local:import/x.raw")];
    let (_, _, errors) = lab.err("POST", create, &sized).await;
    assert_eq!(errors["scsi0"], "'import-from' requires special syntax - use <storage ID>:0,import-from=<source>");
    let (_, _, errors) = lab.err("POST", create, &[("vmid", "101"), ("ide2", "local:iso/talos.iso")]).await;
    assert_eq!(errors["ide2"], "explicit 'media=cdrom' is required for iso images");
    let (_, msg, _) = lab.err("POST", create, &[("vmid", "101"), ("args", "-nographic")]).await;
    assert_eq!(msg, "only root can set 'args' config");

    // A missing import file fails inside the worker, and the VMID is free again.
    let missing = [("vmid", "101"), ("scsi0", "local-zfs:0,import-from=local:import/missing.raw")];
    let status = lab.task_err("POST", create, &missing).await;
    assert_eq!(status, "unable to create VM 101 - failed to stat '/var/lib/vz/import/missing.raw'");
    assert!(lab.state.read(|m| !m.vms.contains_key(&101) && m.volumes_of(101).count() == 0));

    // An unknown bridge is accepted at create; the start fails as on PVE.
    lab.task_ok(
        "POST",
        create,
        &[("vmid", "102"), ("net0", "virtio,bridge=vmbr9"), ("ide2", "local:iso/talos.iso,media=cdrom")],
    )
    .await;
    assert_eq!(config(&lab, "pve", 102).await["ide2"], "local:iso/talos.iso,media=cdrom,size=3");
    let status = lab.task_err("POST", "/nodes/pve/qemu/102/status/start", &[]).await;
    assert_eq!(status, "bridge 'vmbr9' does not exist");
}

#[tokio::test]
async fn two_creates_of_one_vmid_race_and_one_loses() {
    let lab = start(LabConfig::single_node(), Timing { task_ms: 200, ..fast() }).await;
    let id = lab.ok("GET", "/cluster/nextid", &[]).await;
    let id = id.as_str().unwrap().to_string();
    let form = [("vmid", id.as_str()), ("scsi0", "local-zfs:4")];
    let (a, b) = tokio::join!(
        lab.send("POST", "/nodes/pve/qemu", &form, false),
        lab.send("POST", "/nodes/pve/qemu", &form, false)
    );
    let (winner, loser) = if a.0 == 200 { (a, b) } else { (b, a) };
    assert_eq!(winner.0, 200);
    assert_eq!(loser.0, 500);
    assert_eq!(loser.1["message"], format!("unable to create VM {id} - VM {id} already exists on node 'pve'\n"));
    // The VMID is taken at once, locked until the worker is done.
    let status = lab.ok("GET", &format!("/nodes/pve/qemu/{id}/status/current"), &[]).await;
    assert_eq!(status["lock"], "create");
    assert_eq!(lab.wait(&winner.1["data"]).await.0, "OK");
    assert_eq!(lab.ok("GET", "/cluster/nextid", &[]).await, "101");
}

#[tokio::test]
async fn config_writes_wait_for_the_lock_and_check_the_digest() {
    let lab = start(LabConfig::single_node(), fast()).await;
    lab.task_ok("POST", "/nodes/pve/qemu", &[("vmid", "100"), ("cores", "1")]).await;

    let digest = config(&lab, "pve", 100).await["digest"].as_str().unwrap().to_string();
    lab.ok("PUT", "/nodes/pve/qemu/100/config", &[("cores", "2"), ("digest", &digest)]).await;
    let (status, msg, _) = lab.err("PUT", "/nodes/pve/qemu/100/config", &[("cores", "3"), ("digest", &digest)]).await;
    assert_eq!((status, msg.as_str()), (500, "checksum mismatch (file change by other user?)"));
    let (_, msg, _) = lab.err("PUT", "/nodes/pve/qemu/100/config", &[]).await;
    assert_eq!(msg, "no options specified");
    let (_, _, errors) = lab.err("PUT", "/nodes/pve/qemu/100/config", &[("delete", "bogus")]).await;
    assert_eq!(errors["delete"], "unknown option 'bogus'");
    let (_, _, errors) = lab.err("PUT", "/nodes/pve/qemu/100/config", &[("skiplock", "1"), ("cores", "2")]).await;
    assert_eq!(errors["skiplock"], "Only root may use this option.");

    // A long task holds the config lock; a synchronous write gives up after the lock wait.
    lab.state.set_timing(Timing { task_ms: 1500, lock_wait_ms: 200, ..fast() });
    let upid = lab.ok("POST", "/nodes/pve/qemu/100/config", &[("cores", "4")]).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while lab.state.read(|m| m.vms[&100].busy.is_none()) {
        assert!(std::time::Instant::now() < deadline, "the config task never took the lock");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, msg, _) = lab.err("PUT", "/nodes/pve/qemu/100/config", &[("memory", "1024")]).await;
    assert_eq!((status, msg.as_str()), (500, "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout"));
    assert_eq!(lab.wait(&upid).await.0, "OK");
    lab.state.set_timing(fast());
    let c = config(&lab, "pve", 100).await;
    assert_eq!((c["cores"].as_i64(), c.get("memory")), (Some(4), None));

    // Deleting a disk keeps it as unused; deleting the unused entry frees it.
    lab.ok("PUT", "/nodes/pve/qemu/100/config", &[("scsi1", "local-zfs:2")]).await;
    assert_eq!(config(&lab, "pve", 100).await["scsi1"], "local-zfs:vm-100-disk-0,size=2G");
    lab.ok("PUT", "/nodes/pve/qemu/100/config", &[("delete", "scsi1")]).await;
    assert_eq!(config(&lab, "pve", 100).await["unused0"], "local-zfs:vm-100-disk-0");
    lab.ok("PUT", "/nodes/pve/qemu/100/config", &[("delete", "unused0")]).await;
    assert_eq!(lab.state.read(|m| m.volumes_of(100).count()), 0);
}

#[tokio::test]
async fn running_vms_take_hotplug_changes_now_and_the_rest_at_the_next_start() {
    let lab = start(LabConfig::single_node(), fast()).await;
    // A clone of the Ubuntu template: it boots and runs the agent.
    lab.task_ok("POST", "/nodes/pve/qemu/90001/clone", &[("newid", "100")]).await;
    lab.task_ok("POST", "/nodes/pve/qemu/100/status/start", &[]).await;
    assert_eq!(lab.ok("GET", "/nodes/pve/qemu/100/status/current", &[]).await["status"], "running");

    // A NIC on a missing bridge cannot be hotplugged.
    let (status, _, errors) = lab.err("PUT", "/nodes/pve/qemu/100/config", &[("net1", "virtio,bridge=vmbr9")]).await;
    assert_eq!(status, 400);
    assert_eq!(errors["net1"], "hotplug problem - bridge 'vmbr9' does not exist\n");
    lab.ok("PUT", "/nodes/pve/qemu/100/config", &[("revert", "net1")]).await;

    // Disks and NICs hotplug; machine, memory and the BIOS wait; cloud-init options apply (and show as pending in the image).
    lab.ok(
        "PUT",
        "/nodes/pve/qemu/100/config",
        &[
            ("scsi1", "local-zfs:1"),
            ("net1", "virtio,bridge=vmbr0"),
            ("machine", "q35"),
            ("memory", "4096"),
            ("ipconfig0", "ip=dhcp"),
        ],
    )
    .await;
    let current = lab.ok("GET", "/nodes/pve/qemu/100/config", &[("current", "1")]).await;
    assert!(current["scsi1"].is_string() && current["net1"].is_string());
    assert!(current.get("machine").is_none() && current["memory"] == "2048", "{current}");
    assert_eq!(current["ipconfig0"], "ip=dhcp");
    let pending = lab.ok("GET", "/nodes/pve/qemu/100/pending", &[]).await;
    let keys: Vec<&str> = pending
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p.get("pending").is_some())
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["machine", "memory"]);
    let ci = lab.ok("GET", "/nodes/pve/qemu/100/cloudinit", &[]).await;
    assert!(ci.as_array().unwrap().iter().any(|i| i["key"] == "ipconfig0" && i["pending"] == "ip=dhcp"), "{ci}");
    lab.ok("PUT", "/nodes/pve/qemu/100/cloudinit", &[]).await;
    assert!(lab
        .ok("GET", "/nodes/pve/qemu/100/cloudinit", &[])
        .await
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i.get("pending").is_none()));

    // Detaching a hotplugged disk keeps it as unused; the boot disk cannot be unplugged.
    lab.ok("PUT", "/nodes/pve/qemu/100/config", &[("delete", "scsi1")]).await;
    assert_eq!(config(&lab, "pve", 100).await["unused0"], "local-zfs:vm-100-disk-1");
    let (_, _, errors) = lab.err("PUT", "/nodes/pve/qemu/100/config", &[("delete", "scsi0")]).await;
    assert_eq!(errors["scsi0"], "hotplug problem - can't unplug bootdisk 'scsi0'\n");

    // A reboot applies what was pending.
    lab.task_ok("POST", "/nodes/pve/qemu/100/status/reboot", &[]).await;
    let c = lab.ok("GET", "/nodes/pve/qemu/100/config", &[("current", "1")]).await;
    assert_eq!((c["machine"].as_str(), c["memory"].as_str()), (Some("q35"), Some("4096")));
    assert!(c.get("scsi0").is_none());
    assert_eq!(lab.ok("GET", "/nodes/pve/qemu/100/status/current", &[]).await["status"], "running");
}

#[tokio::test]
async fn raw_hostpci_needs_a_root_ticket_and_mappings_work_with_tokens() {
    let lab = start(LabConfig::single_node(), fast()).await;
    let raw = [("vmid", "100"), ("hostpci0", "0000:28:00.0,pcie=1,x-vga=1")];
    let (status, msg, _) = lab.err("POST", "/nodes/pve/qemu", &raw).await;
    assert_eq!((status, msg.as_str()), (500, "only root can set 'hostpci0' config for non-mapped devices"));
    let (status, body) = lab.send("POST", "/nodes/pve/qemu", &raw, true).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(lab.wait(&body["data"]).await.0, "OK");
    lab.task_ok("POST", "/nodes/pve/qemu/100/status/start", &[]).await;
    let (_, msg, _) = lab.err("PUT", "/nodes/pve/qemu/100/config", &[("hostpci0", "0000:28:00.0")]).await;
    assert_eq!(msg, "only root can set 'hostpci0' config for non-mapped devices");
    let (_, _, errors) = lab.err("POST", "/nodes/pve/qemu", &[("vmid", "101"), ("hostpci0", "bogus=1")]).await;
    assert_eq!(errors["hostpci0"], "invalid format - invalid key in comma-separated list property: bogus\n");

    lab.ok("POST", "/cluster/mapping/pci", &[("id", "gpu"), ("map", "node=pve,path=0000:28:00.0,id=10de:2684")]).await;
    lab.task_ok("POST", "/nodes/pve/qemu", &[("vmid", "101"), ("hostpci0", "mapping=gpu,pcie=1")]).await;
    // The device is in use by VM 100 until it stops.
    let status = lab.task_err("POST", "/nodes/pve/qemu/101/status/start", &[]).await;
    assert_eq!(status, "PCI device '0000:28:00.0' already in use by VMID '100'");
    lab.task_ok("POST", "/nodes/pve/qemu/100/status/stop", &[]).await;
    lab.task_ok("POST", "/nodes/pve/qemu/101/status/start", &[]).await;
    lab.task_ok("POST", "/nodes/pve/qemu", &[("vmid", "102"), ("hostpci0", "mapping=nope")]).await;
    let status = lab.task_err("POST", "/nodes/pve/qemu/102/status/start", &[]).await;
    assert_eq!(status, "PCI device mapping not found for 'nope'");
}

#[tokio::test]
async fn clones_follow_pves_rules() {
    let lab = start(LabConfig::seed_cluster(), Timing { task_ms: 150, ..fast() }).await;
    let (n1, n2) = ("pve-ms01-01", "pve-ms01-02");
    let clone = format!("/nodes/{n1}/qemu/90001/clone");

    // A linked clone of the template; the new VM is locked while the task runs.
    let upid = lab.ok("POST", &clone, &[("newid", "200"), ("name", "ubuntu-1")]).await;
    assert_eq!(lab.ok("GET", &format!("/nodes/{n1}/qemu/200/status/current"), &[]).await["lock"], "clone");
    let (_, msg, _) = lab.err("PUT", &format!("/nodes/{n1}/qemu/200/config"), &[("cores", "4")]).await;
    assert_eq!(msg, "VM is locked (clone)");
    let (_, msg, _) = lab.err("POST", &clone, &[("newid", "200")]).await;
    assert_eq!(msg, "unable to create VM 200: config file already exists");
    let (status, log) = lab.wait(&upid).await;
    assert_eq!(status, "OK", "{log:?}");
    assert!(log.iter().any(|l| l == "create linked clone of drive scsi0 (local-zfs:base-90001-disk-0)"), "{log:?}");
    let c = config(&lab, n1, 200).await;
    assert_eq!(c["scsi0"], "local-zfs:base-90001-disk-0/vm-200-disk-0,size=20G");
    assert_eq!(c["ide2"], "local-zfs:vm-200-cloudinit,media=cdrom");
    assert_eq!(c["name"], "ubuntu-1");
    assert!(c.get("template").is_none());
    let template = config(&lab, n1, 90001).await;
    assert_ne!(c["net0"], template["net0"]);
    assert_ne!(c["smbios1"], template["smbios1"]);
    let origin = lab.state.read(|m| m.volumes["local-zfs:base-90001-disk-0/vm-200-disk-0"].origin.clone());
    assert_eq!(origin.as_deref(), Some("template:pkr-ubuntu-noble-1"));

    // Other nodes only with shared storage; the source must be on the node asked.
    let (_, msg, _) =
        lab.err("POST", &clone, &[("newid", "201"), ("full", "1"), ("storage", "local-zfs"), ("target", n2)]).await;
    assert_eq!(msg, "can't clone to non-shared storage 'local-zfs'");
    let (_, msg, _) = lab.err("POST", &clone, &[("newid", "201"), ("target", n2)]).await;
    assert_eq!(msg, format!("can't clone VM to node '{n2}' (VM uses local storage)"));
    let (_, msg, _) = lab.err("POST", &format!("/nodes/{n2}/qemu/90001/clone"), &[("newid", "201")]).await;
    assert_eq!(msg, format!("unable to find configuration file for VM 90001 on node '{n2}'"));
    let (_, msg, _) = lab.err("POST", &clone, &[("newid", "201"), ("storage", "ceph")]).await;
    assert_eq!(msg, "parameter 'storage' not allowed for linked clones");
    let (_, msg, _) = lab.err("POST", &format!("/nodes/{n1}/qemu/200/clone"), &[("newid", "201"), ("full", "0")]).await;
    assert_eq!(msg, "Linked clone feature is not supported for 'local-zfs:base-90001-disk-0/vm-200-disk-0' (scsi0)");

    // Even a full clone onto shared storage stays on the node when the source disks are local...
    let form = [("newid", "201"), ("full", "1"), ("storage", "ceph"), ("target", n2)];
    let (_, msg, _) = lab.err("POST", &clone, &form).await;
    assert_eq!(msg, format!("can't clone VM to node '{n2}' (VM uses local storage)"));
    lab.task_ok("POST", &clone, &[("newid", "201"), ("full", "1"), ("storage", "ceph")]).await;
    let c = config(&lab, n1, 201).await;
    assert_eq!(c["scsi0"], "ceph:vm-201-disk-0,size=20G");
    assert_eq!(c["ide2"], "ceph:vm-201-cloudinit,media=cdrom");
    assert_eq!(c["name"], "Copy-of-VM-pkr-ubuntu-noble-1");
    // ... while a VM on shared storage may be cloned to another node.
    lab.task_ok(
        "POST",
        &format!("/nodes/{n1}/qemu/201/clone"),
        &[("newid", "202"), ("target", n2), ("storage", "ceph")],
    )
    .await;
    assert_eq!(config(&lab, n2, 202).await["scsi0"], "ceph:vm-202-disk-0,size=20G");

    // The template cannot go while a linked clone uses its disk, nor be started.
    let status = lab.task_err("DELETE", &format!("/nodes/{n1}/qemu/90001"), &[]).await;
    assert_eq!(status, "base volume 'local-zfs:base-90001-disk-0' is still in use by linked cloned");
    let status = lab.task_err("POST", &format!("/nodes/{n1}/qemu/90001/status/start"), &[]).await;
    assert_eq!(status, "you can't start a vm if it's a template");
}

#[tokio::test]
async fn disks_grow_but_never_shrink_and_templates_get_base_volumes() {
    let lab = start(LabConfig::single_node(), fast()).await;
    lab.task_ok(
        "POST",
        "/nodes/pve/qemu",
        &[("vmid", "100"), ("scsi0", "local-zfs:4"), ("ide2", "local-zfs:cloudinit")],
    )
    .await;
    let resize = "/nodes/pve/qemu/100/resize";
    assert_eq!(
        lab.task_err("PUT", resize, &[("disk", "scsi0"), ("size", "2G")]).await,
        "shrinking disks is not supported"
    );
    lab.task_ok("PUT", resize, &[("disk", "scsi0"), ("size", "+2G")]).await;
    assert_eq!(config(&lab, "pve", 100).await["scsi0"], "local-zfs:vm-100-disk-0,size=6G");
    assert_eq!(lab.task_err("PUT", resize, &[("disk", "scsi5"), ("size", "+1G")]).await, "disk 'scsi5' does not exist");
    assert_eq!(lab.task_err("PUT", resize, &[("disk", "ide2"), ("size", "+1G")]).await, "you can't resize a cdrom");

    lab.task_ok("POST", "/nodes/pve/qemu/100/status/start", &[]).await;
    let (_, msg, _) = lab.err("POST", "/nodes/pve/qemu/100/template", &[]).await;
    assert_eq!(msg, "you can't convert a VM to template if VM is running");
    let (_, msg, _) = lab.err("DELETE", "/nodes/pve/qemu/100", &[]).await;
    assert_eq!(msg, "VM 100 is running - destroy failed");
    lab.task_ok("POST", "/nodes/pve/qemu/100/status/stop", &[]).await;
    lab.task_ok("POST", "/nodes/pve/qemu/100/template", &[]).await;
    let c = config(&lab, "pve", 100).await;
    assert_eq!((c["scsi0"].as_str(), c["template"].as_i64()), (Some("local-zfs:base-100-disk-0,size=6G"), Some(1)));
    assert_eq!(c["ide2"], "local-zfs:vm-100-cloudinit,media=cdrom");
    let (_, msg, _) = lab.err("POST", "/nodes/pve/qemu/100/template", &[]).await;
    assert_eq!(msg, "you can't convert a template to a template");
}

#[tokio::test]
async fn the_agent_answers_only_after_boot_and_shutdowns_before_boot_time_out() {
    let lab =
        start(LabConfig::single_node(), Timing { task_ms: 10, boot_ms: 1500, agent_ms: 200, lock_wait_ms: 500 }).await;
    lab.task_ok("POST", "/nodes/pve/qemu/90001/clone", &[("newid", "100"), ("name", "web-1")]).await;
    lab.task_ok("POST", "/nodes/pve/qemu/90001/clone", &[("newid", "101")]).await;
    lab.ok("PUT", "/nodes/pve/qemu/101/config", &[("delete", "agent")]).await;
    lab.task_ok("POST", "/nodes/pve/qemu/100/status/start", &[]).await;
    lab.task_ok("POST", "/nodes/pve/qemu/101/status/start", &[]).await;

    let (status, msg, _) = lab.err("POST", "/nodes/pve/qemu/100/agent/ping", &[]).await;
    assert_eq!((status, msg.as_str()), (500, "QEMU guest agent is not running"));
    let (_, msg, _) = lab.err("GET", "/nodes/pve/qemu/101/agent/network-get-interfaces", &[]).await;
    assert_eq!(msg, "No QEMU guest agent configured");

    // Not booted yet: ACPI is ignored until the timeout.
    let status = lab.task_err("POST", "/nodes/pve/qemu/101/status/shutdown", &[("timeout", "1")]).await;
    assert_eq!(status, "VM quit/powerdown failed - got timeout");
    let log = lab.task_ok("POST", "/nodes/pve/qemu/101/status/shutdown", &[("timeout", "0"), ("forceStop", "1")]).await;
    assert!(log.iter().any(|l| l == "VM still running - terminating now with SIGTERM"), "{log:?}");

    // Once booted, the agent answers (polled: the boot and agent delays are the lab's timers).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while lab.send("POST", "/nodes/pve/qemu/100/agent/ping", &[], false).await.0 != 200 {
        assert!(std::time::Instant::now() < deadline, "the guest agent never answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ifaces = lab.ok("GET", "/nodes/pve/qemu/100/agent/network-get-interfaces", &[]).await;
    assert_eq!(ifaces["result"][0]["name"], "lo");
    assert_eq!(lab.ok("GET", "/nodes/pve/qemu/100/agent/get-osinfo", &[]).await["result"]["id"], "ubuntu");
    // A booted guest with its agent shuts down cleanly.
    lab.task_ok("POST", "/nodes/pve/qemu/100/status/shutdown", &[("timeout", "1")]).await;
    assert_eq!(lab.ok("GET", "/nodes/pve/qemu/100/status/current", &[]).await["status"], "stopped");
}

#[tokio::test]
async fn migration_moves_local_disks_and_the_vm() {
    let lab = start(LabConfig::seed_cluster(), Timing { task_ms: 150, ..fast() }).await;
    let (n1, n2) = ("pve-ms01-01", "pve-ms01-02");
    lab.task_ok(
        "POST",
        &format!("/nodes/{n1}/qemu"),
        &[("vmid", "300"), ("scsi0", "local-zfs:2"), ("ide2", "local-zfs:cloudinit"), ("net0", "virtio,bridge=vmbr0")],
    )
    .await;

    let (_, _, errors) = lab.err("POST", &format!("/nodes/{n1}/qemu/300/migrate"), &[("target", n1)]).await;
    assert_eq!(errors["target"], "target is local node.");
    let upid = lab.ok("POST", &format!("/nodes/{n1}/qemu/300/migrate"), &[("target", n2)]).await;
    assert_eq!(lab.ok("GET", &format!("/nodes/{n1}/qemu/300/status/current"), &[]).await["lock"], "migrate");
    let (_, msg, _) = lab.err("PUT", &format!("/nodes/{n1}/qemu/300/config"), &[("cores", "2")]).await;
    assert_eq!(msg, "VM is locked (migrate)");
    assert_eq!(lab.wait(&upid).await.0, "OK");
    let (_, msg, _) = lab.err("GET", &format!("/nodes/{n1}/qemu/300/config"), &[]).await;
    assert_eq!(msg, format!("Configuration file 'nodes/{n1}/qemu-server/300.conf' does not exist"));
    assert_eq!(config(&lab, n2, 300).await["scsi0"], "local-zfs:vm-300-disk-0,size=2G");
    let nodes = lab.state.read(|m| m.volumes_of(300).map(|v| v.node.clone().unwrap()).collect::<Vec<_>>());
    assert_eq!(nodes, [n2, n2]);

    // A running VM: online only, and local disks only with with-local-disks.
    lab.task_ok("POST", &format!("/nodes/{n2}/qemu/300/status/start"), &[]).await;
    let (_, msg, _) = lab.err("POST", &format!("/nodes/{n2}/qemu/300/migrate"), &[("target", n1)]).await;
    assert_eq!(msg, "can't migrate running VM without --online");
    let status =
        lab.task_err("POST", &format!("/nodes/{n2}/qemu/300/migrate"), &[("target", n1), ("online", "1")]).await;
    assert_eq!(status, "can't live migrate attached local disks without with-local-disks option");
    // The failed worker removed its lock before its task ended (no window for a "VM is locked").
    let current = lab.ok("GET", &format!("/nodes/{n2}/qemu/300/status/current"), &[]).await;
    assert_eq!(current.get("lock"), None, "{current}");
    let migrate = [("target", n1), ("online", "1"), ("with-local-disks", "1"), ("targetstorage", "ceph")];
    lab.task_ok("POST", &format!("/nodes/{n2}/qemu/300/migrate"), &migrate).await;
    let c = config(&lab, n1, 300).await;
    assert_eq!(c["scsi0"], "ceph:vm-300-disk-0,size=2G");
    assert_eq!(lab.ok("GET", &format!("/nodes/{n1}/qemu/300/status/current"), &[]).await["status"], "running");
}

#[tokio::test]
async fn disks_move_between_storages_keeping_size_and_leaving_unused_unless_deleted() {
    let lab = start(LabConfig::single_node(), fast()).await;
    lab.task_ok(
        "POST",
        "/nodes/pve/qemu",
        &[("vmid", "100"), ("scsi0", "local-zfs:4"), ("scsi1", "local-zfs:1"), ("ide2", "local-zfs:cloudinit")],
    )
    .await;
    let mv = "/nodes/pve/qemu/100/move_disk";
    let (_, msg, _) = lab.err("POST", mv, &[("disk", "scsi0"), ("storage", "local-zfs")]).await;
    assert_eq!(msg, "you can't move to the same storage with same format");
    let (_, msg, _) = lab.err("POST", mv, &[("disk", "ide2"), ("storage", "ceph")]).await;
    assert_eq!(msg, "you can't move a cdrom");
    let (_, msg, _) = lab.err("POST", mv, &[("disk", "scsi0"), ("storage", "nowhere")]).await;
    assert_eq!(msg, "storage 'nowhere' does not exist");
    let (_, msg, _) = lab.err("POST", mv, &[("disk", "scsi7"), ("storage", "ceph")]).await;
    assert_eq!(msg, "disk 'scsi7' does not exist");

    // Without `delete` the source stays as unused0; with it, it is gone.
    lab.task_ok("POST", mv, &[("disk", "scsi0"), ("storage", "ceph")]).await;
    lab.task_ok("POST", mv, &[("disk", "scsi1"), ("storage", "ceph"), ("delete", "1")]).await;
    let c = config(&lab, "pve", 100).await;
    assert_eq!(c["scsi0"], "ceph:vm-100-disk-0,size=4G");
    assert_eq!(c["scsi1"], "ceph:vm-100-disk-1,size=1G");
    assert_eq!(c["unused0"], "local-zfs:vm-100-disk-0");
    assert!(c.get("unused1").is_none(), "{c}");
    let volumes = lab.state.read(|m| m.volumes.keys().cloned().collect::<Vec<_>>());
    assert!(volumes.contains(&"local-zfs:vm-100-disk-0".to_string()), "{volumes:?}");
    assert!(!volumes.contains(&"local-zfs:vm-100-disk-1".to_string()), "{volumes:?}");
}
