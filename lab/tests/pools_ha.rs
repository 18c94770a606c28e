//! Resource pools (`/pools`) and the HA read side (`/cluster/ha/...`) over
//! real HTTPS, with PVE's answers: pool lifecycle, membership rules and
//! texts, a guest's pool on create, clone, `/cluster/resources` and destroy;
//! HA as PVE answers on a cluster where HA manages nothing.

use std::time::{Duration, Instant};

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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let timing = Timing { task_ms: 10, boot_ms: 0, agent_ms: 0, lock_wait_ms: 500 };
    let config = LabConfig { timing, ..LabConfig::single_node() };
    let state = PveState::new(apidoc, auth, config, dir.path()).unwrap();
    tokio::spawn(server::serve(listener, ca.server_config().unwrap(), state, std::future::pending()));
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    Lab { url: server::base_url(addr), client, _dir: dir }
}

impl Lab {
    async fn send(&self, method: &str, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(m.clone(), format!("{}{path}", self.url)).header("Authorization", TOKEN);
        req = if m == reqwest::Method::GET || m == reqwest::Method::DELETE { req.query(form) } else { req.form(form) };
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, serde_json::from_slice(&r.bytes().await.unwrap()).unwrap())
    }

    async fn ok(&self, method: &str, path: &str, form: &[(&str, &str)]) -> Value {
        let (status, body) = self.send(method, path, form).await;
        assert_eq!(status, 200, "{method} {path}: {body}");
        body["data"].clone()
    }

    /// (status, message without its newline).
    async fn err(&self, method: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let (status, body) = self.send(method, path, form).await;
        assert_ne!(status, 200, "{method} {path} should fail: {body}");
        (status, body["message"].as_str().unwrap_or("").trim_end().to_string())
    }

    /// Starts a task and waits (with a deadline) until it ends OK.
    async fn task_ok(&self, method: &str, path: &str, form: &[(&str, &str)]) {
        let upid = self.ok(method, path, form).await;
        let upid = upid.as_str().unwrap().to_string();
        let escaped: String = form_urlencoded::byte_serialize(upid.as_bytes()).collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = self.ok("GET", &format!("/nodes/pve/tasks/{escaped}/status"), &[]).await;
            if status["status"] == "stopped" {
                assert_eq!(status["exitstatus"], "OK", "{method} {path}");
                return;
            }
            assert!(Instant::now() < deadline, "task {upid} did not end");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn member_ids(&self, pool: &str) -> Vec<String> {
        let data = self.ok("GET", &format!("/pools/{pool}"), &[]).await;
        data["members"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect()
    }

    async fn pool_of(&self, vmid: u32) -> Value {
        let all = self.ok("GET", "/cluster/resources", &[("type", "vm")]).await;
        all.as_array().unwrap().iter().find(|r| r["vmid"] == vmid).map(|r| r["pool"].clone()).unwrap_or(Value::Null)
    }
}

#[tokio::test]
async fn pools_are_created_filled_moved_and_deleted_with_pves_texts() {
    let lab = start().await;
    // No pool: an empty list, as a fresh PVE answers.
    assert_eq!(lab.ok("GET", "/pools", &[]).await, serde_json::json!([]));
    assert_eq!(lab.ok("POST", "/pools", &[("poolid", "prod"), ("comment", "production")]).await, Value::Null);
    let again = lab.err("POST", "/pools", &[("poolid", "prod")]).await;
    assert_eq!(again, (500, "create pool failed: pool 'prod' already exists".into()));
    let list = lab.ok("GET", "/pools", &[]).await;
    assert_eq!(list, serde_json::json!([{ "poolid": "prod", "comment": "production" }]));
    assert_eq!(lab.ok("GET", "/pools/prod", &[]).await, serde_json::json!({ "comment": "production", "members": [] }));
    let missing = lab.err("GET", "/pools/nope", &[]).await;
    assert_eq!(missing, (500, "pool 'nope' does not exist".into()));

    // Members: a guest and a storage, seen in the pool and in /cluster/resources.
    lab.ok("PUT", "/pools/prod", &[("vms", "90001"), ("storage", "local-zfs")]).await;
    assert_eq!(lab.member_ids("prod").await, ["qemu/90001", "storage/pve/local-zfs"]);
    let by_query = lab.ok("GET", "/pools", &[("poolid", "prod"), ("type", "qemu")]).await;
    assert_eq!(by_query[0]["members"][0]["vmid"], 90001);
    assert_eq!(by_query[0]["members"].as_array().unwrap().len(), 1);
    assert_eq!(lab.pool_of(90001).await, "prod");
    let all = lab.ok("GET", "/cluster/resources", &[]).await;
    assert!(all.as_array().unwrap().iter().any(|r| r["type"] == "pool" && r["id"] == "/pool/prod"), "{all}");
    let twice = lab.err("PUT", "/pools/prod", &[("vms", "90001")]).await;
    assert_eq!(twice, (500, "update pools failed: VM 90001 is already a pool member".into()));

    // Another pool takes the guest only with allow-move.
    lab.ok("POST", "/pools", &[("poolid", "dev")]).await;
    let moved = lab.err("PUT", "/pools/dev", &[("vms", "90001")]).await;
    assert_eq!(
        moved,
        (500, "update pools failed: VM 90001 belongs already to pool 'prod' and 'allow-move' is not set".into())
    );
    lab.ok("PUT", "/pools", &[("poolid", "dev"), ("vms", "90001"), ("allow-move", "1")]).await;
    assert_eq!(lab.pool_of(90001).await, "dev");
    assert_eq!(lab.member_ids("prod").await, ["storage/pve/local-zfs"]);

    // Only empty pools can go.
    let full = lab.err("DELETE", "/pools/dev", &[]).await;
    assert_eq!(full, (500, "delete pool failed: pool 'dev' is not empty (contains VM 90001)".into()));
    let not_member = lab.err("PUT", "/pools/prod", &[("vms", "90001"), ("delete", "1")]).await;
    assert_eq!(not_member, (500, "update pools failed: VM 90001 is not a pool member".into()));
    lab.ok("PUT", "/pools/dev", &[("vms", "90001"), ("delete", "1")]).await;
    lab.ok("DELETE", "/pools/dev", &[]).await;
    assert_eq!(lab.err("GET", "/pools/dev", &[]).await, (500, "pool 'dev' does not exist".into()));
    let storage = lab.err("DELETE", "/pools", &[("poolid", "prod")]).await;
    assert_eq!(storage, (500, "delete pool failed: pool 'prod' is not empty (contains storage 'local-zfs')".into()));
    assert_eq!(lab.pool_of(90001).await, Value::Null);
}

#[tokio::test]
async fn create_and_clone_put_the_guest_in_its_pool_and_destroy_takes_it_out() {
    let lab = start().await;
    let none = lab.err("POST", "/nodes/pve/qemu", &[("vmid", "120"), ("pool", "nope")]).await;
    // PVE's `check_pool_exist` raises a permission exception.
    assert_eq!(none, (403, "Permission check failed (pool 'nope' does not exist)".into()));
    let clone = lab.err("POST", "/nodes/pve/qemu/90001/clone", &[("newid", "122"), ("pool", "nope")]).await;
    assert_eq!(clone, (403, "Permission check failed (pool 'nope' does not exist)".into()));
    lab.ok("POST", "/pools", &[("poolid", "k8s")]).await;
    lab.task_ok("POST", "/nodes/pve/qemu", &[("vmid", "120"), ("pool", "k8s"), ("name", "cp-1")]).await;
    lab.task_ok("POST", "/nodes/pve/qemu/90001/clone", &[("newid", "121"), ("pool", "k8s"), ("name", "w-1")]).await;
    assert_eq!(lab.member_ids("k8s").await, ["qemu/120", "qemu/121"]);
    assert_eq!(lab.pool_of(121).await, "k8s");
    lab.task_ok("DELETE", "/nodes/pve/qemu/120", &[]).await;
    assert_eq!(lab.member_ids("k8s").await, ["qemu/121"]);
}

#[tokio::test]
async fn ha_answers_as_pve_does_when_it_manages_nothing() {
    let lab = start().await;
    assert_eq!(lab.ok("GET", "/cluster/ha/resources", &[]).await, serde_json::json!([]));
    assert_eq!(lab.ok("GET", "/cluster/ha/groups", &[]).await, serde_json::json!([]));
    assert_eq!(lab.ok("GET", "/cluster/ha/rules", &[]).await, serde_json::json!([]));
    let sid = lab.err("GET", "/cluster/ha/resources/vm:101", &[]).await;
    assert_eq!(sid, (500, "no such resource 'vm:101'".into()));
    // A bare VMID means the guest of that ID, if there is one.
    let bare = lab.err("GET", "/cluster/ha/resources/90001", &[]).await;
    assert_eq!(bare, (500, "no such resource 'vm:90001'".into()));
    let unknown = lab.err("GET", "/cluster/ha/resources/101", &[]).await;
    assert_eq!(unknown, (500, "unable do detect SID from VMID - VM/CT 101 does not exist".into()));
    let (status, body) = lab.send("GET", "/cluster/ha/resources/not%20a%20sid", &[]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"]["sid"], "invalid format - value does not look like a valid ha resource id\n");
    let group = lab.err("GET", "/cluster/ha/groups/gpu", &[]).await;
    assert_eq!(group, (500, "no such ha group 'gpu'".into()));
    let rule = lab.err("GET", "/cluster/ha/rules/keep-apart", &[]).await;
    assert_eq!(rule, (500, "no such ha rule 'keep-apart'".into()));
    let current = lab.ok("GET", "/cluster/ha/status/current", &[]).await;
    assert_eq!(
        current,
        serde_json::json!([{ "id": "quorum", "type": "quorum", "node": "pve", "status": "OK", "quorate": 1 }])
    );
    let manager = lab.ok("GET", "/cluster/ha/status/manager_status", &[]).await;
    assert_eq!(manager, serde_json::json!({ "manager_status": {}, "quorum": { "node": "pve", "quorate": 1 } }));
}
