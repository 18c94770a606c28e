//! Users, API tokens, roles and ACLs over real HTTPS, with PVE's refusals:
//! `403 Permission check failed (/vms/100, VM.Audit)` for a guest a token may
//! not see, silent filtering of `/cluster/resources` and list endpoints,
//! ACLs on a pool reaching the pool's guests, privilege-separated tokens
//! limited to what both they and their user may do, root unaffected, and the
//! `/access` read endpoints.

use proxmox_talos_lab::pve::access::{AccessConfig, AclConfig, PoolConfig, TokenConfig, UserConfig};
use proxmox_talos_lab::pve::apidoc::ApiDoc;
use proxmox_talos_lab::pve::auth::Auth;
use proxmox_talos_lab::pve::lab_config::{LabConfig, TemplateConfig, Timing};
use proxmox_talos_lab::pve::server::{self, PveState};
use proxmox_talos_lab::pve::tls::LabCa;
use serde_json::Value;

const ROOT: &str = "PVEAPIToken=root@pam!lab=00000000-1111-2222-3333-444444444444";
/// alice's token without privilege separation: alice's privileges.
const FULL: &str = "PVEAPIToken=alice@pve!full=11111111-1111-1111-1111-111111111111";
/// alice's privilege-separated token: its own ACLs, within alice's.
const SEP: &str = "PVEAPIToken=alice@pve!sep=22222222-2222-2222-2222-222222222222";
/// bob is a PVEVMUser of guest 90002 only.
const BOB: &str = "PVEAPIToken=bob@pve!t=33333333-3333-3333-3333-333333333333";

struct Lab {
    url: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

fn acl(path: &str, role: &str, ugid: &str) -> AclConfig {
    AclConfig { path: path.into(), role: role.into(), ugid: ugid.into(), propagate: true }
}

/// Guests 90001 (in pool `prod`) and 90002 (in no pool); alice may administer
/// the pool's guests and use storage; her `sep` token audits everything.
fn config() -> LabConfig {
    let mut config = LabConfig::single_node();
    let mut second: TemplateConfig = config.templates[0].clone();
    second.vmid = 90002;
    second.name = "other".into();
    config.templates.push(second);
    let token = |id: &str, secret: &str, privsep: bool| TokenConfig {
        id: id.into(),
        secret: Some(secret.into()),
        privsep,
        comment: None,
    };
    config.access = AccessConfig {
        users: vec![
            UserConfig {
                userid: "alice@pve".into(),
                password: None,
                enable: true,
                comment: None,
                tokens: vec![
                    token("full", "11111111-1111-1111-1111-111111111111", false),
                    token("sep", "22222222-2222-2222-2222-222222222222", true),
                ],
            },
            UserConfig {
                userid: "bob@pve".into(),
                password: Some("bob-password".into()),
                enable: true,
                comment: None,
                tokens: vec![token("t", "33333333-3333-3333-3333-333333333333", false)],
            },
        ],
        acl: vec![
            acl("/vms/90002", "PVEVMUser", "bob@pve"),
            acl("/vms/90001", "PVETemplateUser", "bob@pve"),
            acl("/pool/prod", "PVEVMAdmin", "alice@pve"),
            acl("/storage", "PVEDatastoreUser", "alice@pve"),
            acl("/", "PVEAuditor", "alice@pve!sep"),
        ],
        pools: vec![PoolConfig { id: "prod".into(), comment: None, vms: vec![90001], storage: vec![] }],
    };
    config.timing = Timing { task_ms: 10, boot_ms: 0, agent_ms: 0, lock_wait_ms: 500 };
    config
}

async fn start(config: LabConfig) -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let ca = LabCa::load_or_create(dir.path()).unwrap();
    let apidoc = ApiDoc::load(&ApiDoc::locate().unwrap()).unwrap();
    let auth = Auth::new().with_token("root@pam!lab", "00000000-1111-2222-3333-444444444444");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = PveState::new(apidoc, auth, config, dir.path()).unwrap();
    tokio::spawn(server::serve(listener, ca.server_config().unwrap(), state, std::future::pending()));
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    Lab { url: server::base_url(addr), client, _dir: dir }
}

impl Lab {
    async fn send(&self, token: &str, method: &str, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(m.clone(), format!("{}{path}", self.url)).header("Authorization", token);
        req = if m == reqwest::Method::GET || m == reqwest::Method::DELETE { req.query(form) } else { req.form(form) };
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, serde_json::from_slice(&r.bytes().await.unwrap()).unwrap())
    }

    async fn ok(&self, token: &str, method: &str, path: &str, form: &[(&str, &str)]) -> Value {
        let (status, body) = self.send(token, method, path, form).await;
        assert_eq!(status, 200, "{method} {path}: {body}");
        body["data"].clone()
    }

    /// A refusal: (status, message without its newline).
    async fn denied(&self, token: &str, method: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let (status, body) = self.send(token, method, path, form).await;
        (status, body["message"].as_str().unwrap_or("").trim_end().to_string())
    }

    /// The ids of `/cluster/resources` as `token` sees them.
    async fn resources(&self, token: &str) -> Vec<String> {
        let data = self.ok(token, "GET", "/cluster/resources", &[]).await;
        data.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
    }
}

fn forbidden(what: &str) -> (u16, String) {
    (403, format!("Permission check failed ({what})"))
}

#[tokio::test]
async fn a_guest_the_token_may_not_see_is_refused_naming_path_and_privilege() {
    let lab = start(config()).await;
    // The pool's ACL reaches its guest; the other guest is out of reach.
    let conf = lab.ok(FULL, "GET", "/nodes/pve/qemu/90001/config", &[]).await;
    assert_eq!(conf["name"], "pkr-ubuntu-noble-1");
    assert_eq!(lab.denied(FULL, "GET", "/nodes/pve/qemu/90002/config", &[]).await, forbidden("/vms/90002, VM.Audit"));
    assert_eq!(
        lab.denied(FULL, "GET", "/nodes/pve/qemu/90002/status/current", &[]).await,
        forbidden("/vms/90002, VM.Audit")
    );
    assert_eq!(
        lab.denied(FULL, "POST", "/nodes/pve/qemu/90002/status/start", &[]).await,
        forbidden("/vms/90002, VM.PowerMgmt")
    );
    // `any` checks name every privilege that would do.
    let (status, message) = lab.denied(FULL, "PUT", "/nodes/pve/qemu/90002/config", &[("description", "x")]).await;
    assert_eq!(status, 403);
    assert!(message.starts_with("Permission check failed (/vms/90002, VM.Config.Disk|VM.Config.CDROM|"), "{message}");
    // Nothing on / : no Sys.Audit for the cluster or HA status.
    assert_eq!(lab.denied(FULL, "GET", "/cluster/status", &[]).await, forbidden("/, Sys.Audit"));
    assert_eq!(lab.denied(FULL, "GET", "/cluster/ha/resources/vm:90001", &[]).await, forbidden("/, Sys.Audit"));
    // Creating a guest needs VM.Allocate on it (or on the pool it goes to).
    assert_eq!(
        lab.denied(FULL, "POST", "/nodes/pve/qemu", &[("vmid", "150")]).await,
        forbidden("/vms/150, VM.Allocate")
    );
    // The pool's VM.Allocate allows it; the disk needs Datastore.AllocateSpace, which alice has.
    let upid =
        lab.ok(FULL, "POST", "/nodes/pve/qemu", &[("vmid", "150"), ("pool", "prod"), ("scsi0", "local-zfs:1")]).await;
    assert!(upid.as_str().unwrap().contains(":qmcreate:150:alice@pve!full:"), "{upid}");
    // A NIC needs SDN.Use on its bridge (and VLAN), on create and on clone (the source's NICs).
    let nic = [("vmid", "151"), ("pool", "prod"), ("net0", "virtio,bridge=vmbr0,tag=20")];
    assert_eq!(
        lab.denied(FULL, "POST", "/nodes/pve/qemu", &nic).await,
        forbidden("/sdn/zones/localnetwork/vmbr0/20, SDN.Use")
    );
    assert_eq!(
        lab.denied(FULL, "POST", "/nodes/pve/qemu/90001/clone", &[("newid", "152"), ("pool", "prod")]).await,
        forbidden("/sdn/zones/localnetwork/vmbr0, SDN.Use")
    );
    // The network list shows neither the bridge (no SDN.Use) nor the NIC (no Sys.Audit on the node).
    assert_eq!(lab.ok(FULL, "GET", "/nodes/pve/network", &[]).await, serde_json::json!([]));
    // Root is unaffected.
    assert_eq!(lab.ok(ROOT, "GET", "/nodes/pve/network", &[]).await.as_array().unwrap().len(), 2);
    lab.ok(ROOT, "GET", "/nodes/pve/qemu/90002/config", &[]).await;
    lab.ok(ROOT, "GET", "/cluster/status", &[]).await;
}

#[tokio::test]
async fn lists_are_silently_filtered() {
    let lab = start(config()).await;
    let seen = lab.resources(FULL).await;
    assert!(seen.contains(&"qemu/90001".to_string()), "{seen:?}");
    assert!(!seen.contains(&"qemu/90002".to_string()), "{seen:?}");
    assert!(seen.contains(&"storage/pve/local-zfs".to_string()), "{seen:?}");
    assert!(!seen.contains(&"/pool/prod".to_string()), "PVEVMAdmin has no Pool.Audit: {seen:?}");
    let root = lab.resources(ROOT).await;
    assert!(root.contains(&"qemu/90002".to_string()) && root.contains(&"/pool/prod".to_string()), "{root:?}");
    // The node is listed, without usage figures for a caller without Sys.Audit.
    let all = lab.ok(FULL, "GET", "/cluster/resources", &[("type", "node")]).await;
    assert_eq!(all[0]["node"], "pve");
    assert!(all[0].get("maxmem").is_none(), "{all}");
    let nodes = lab.ok(FULL, "GET", "/nodes", &[]).await;
    assert_eq!((nodes[0]["node"].as_str(), nodes[0].get("cpu")), (Some("pve"), None), "{nodes}");
    assert!(lab.ok(ROOT, "GET", "/nodes", &[]).await[0].get("cpu").is_some());
    let vms = lab.ok(FULL, "GET", "/nodes/pve/qemu", &[]).await;
    let ids: Vec<u64> = vms.as_array().unwrap().iter().map(|v| v["vmid"].as_u64().unwrap()).collect();
    assert_eq!(ids, [90001]);
    // Pools: only with Pool.Audit.
    assert_eq!(lab.ok(FULL, "GET", "/pools", &[]).await, serde_json::json!([]));
    assert_eq!(lab.ok(SEP, "GET", "/pools", &[]).await, serde_json::json!([]));
    assert_eq!(lab.ok(ROOT, "GET", "/pools", &[]).await[0]["poolid"], "prod");
}

#[tokio::test]
async fn a_privilege_separated_token_gets_what_both_it_and_its_user_may() {
    let lab = start(config()).await;
    // Both: VM.Audit on 90001 (alice via the pool, the token via / ).
    lab.ok(SEP, "GET", "/nodes/pve/qemu/90001/config", &[]).await;
    // alice may power 90001 on, her sep token (an auditor) may not.
    assert_eq!(
        lab.denied(SEP, "POST", "/nodes/pve/qemu/90001/status/start", &[]).await,
        forbidden("/vms/90001, VM.PowerMgmt")
    );
    // The token audits /, alice does not: the intersection has no Sys.Audit.
    assert_eq!(lab.denied(SEP, "GET", "/nodes/pve/status", &[]).await, forbidden("/nodes/pve, Sys.Audit"));
    assert_eq!(lab.denied(SEP, "GET", "/nodes/pve/qemu/90002/config", &[]).await, forbidden("/vms/90002, VM.Audit"));
    let seen = lab.resources(SEP).await;
    assert!(seen.contains(&"qemu/90001".to_string()) && !seen.contains(&"qemu/90002".to_string()), "{seen:?}");
    // What /access/permissions reports agrees.
    let perms = lab.ok(SEP, "GET", "/access/permissions", &[("path", "/vms/90001")]).await;
    assert_eq!(perms, serde_json::json!({ "/vms/90001": { "VM.Audit": 1 } }));
    let full = lab.ok(FULL, "GET", "/access/permissions", &[("path", "/vms/90001")]).await;
    assert_eq!(full["/vms/90001"]["VM.PowerMgmt"], 1);
    // Another user's permissions need Sys.Audit on /access.
    assert_eq!(
        lab.denied(FULL, "GET", "/access/permissions", &[("userid", "root@pam")]).await,
        forbidden("/access, Sys.Audit")
    );
}

#[tokio::test]
async fn the_access_read_endpoints_describe_users_acls_and_roles() {
    let lab = start(config()).await;
    let roles = lab.ok(FULL, "GET", "/access/roles", &[]).await;
    let vm_user = roles.as_array().unwrap().iter().find(|r| r["roleid"] == "PVEVMUser").unwrap();
    assert_eq!(
        vm_user["privs"],
        "VM.Audit,VM.Backup,VM.Config.CDROM,VM.Config.Cloudinit,VM.Console,VM.GuestAgent.Audit,VM.PowerMgmt"
    );
    let ds = lab.ok(FULL, "GET", "/access/roles/PVEDatastoreUser", &[]).await;
    assert_eq!(ds, serde_json::json!({ "Datastore.AllocateSpace": 1, "Datastore.Audit": 1 }));
    let (status, message) = lab.denied(FULL, "GET", "/access/roles/Nope", &[]).await;
    assert_eq!((status, message.as_str()), (500, "role 'Nope' does not exist"));
    // alice sees herself only; root sees everyone and every ACL entry.
    let users = lab.ok(FULL, "GET", "/access/users", &[]).await;
    assert_eq!(users.as_array().unwrap().len(), 1);
    assert_eq!(users[0]["userid"], "alice@pve");
    let all = lab.ok(ROOT, "GET", "/access/users", &[("full", "1")]).await;
    let alice = all.as_array().unwrap().iter().find(|u| u["userid"] == "alice@pve").unwrap();
    assert_eq!(alice["tokens"].as_array().unwrap().len(), 2);
    // Only entries on paths alice may modify permissions on (VM.Allocate on 90001, via her pool).
    let mine = lab.ok(FULL, "GET", "/access/acl", &[]).await;
    let paths: Vec<&str> = mine.as_array().unwrap().iter().map(|a| a["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/vms/90001"]);
    let acl = lab.ok(ROOT, "GET", "/access/acl", &[]).await;
    assert!(acl.as_array().unwrap().iter().any(|a| a["path"] == "/pool/prod"
        && a["roleid"] == "PVEVMAdmin"
        && a["type"] == "user"
        && a["ugid"] == "alice@pve"));
}

#[tokio::test]
async fn each_config_option_needs_its_own_privilege() {
    let lab = start(config()).await;
    // PVEVMUser passes the endpoint's "any VM.Config.*" check (VM.Config.CDROM) but
    // qemu-server checks each option: memory needs VM.Config.Memory, a description VM.Config.Options.
    lab.ok(BOB, "GET", "/nodes/pve/qemu/90002/config", &[]).await;
    assert_eq!(
        lab.denied(BOB, "PUT", "/nodes/pve/qemu/90002/config", &[("memory", "4096")]).await,
        forbidden("/vms/90002, VM.Config.Memory")
    );
    assert_eq!(
        lab.denied(BOB, "POST", "/nodes/pve/qemu/90002/config", &[("description", "x")]).await,
        forbidden("/vms/90002, VM.Config.Options")
    );
    assert_eq!(
        lab.denied(BOB, "PUT", "/nodes/pve/qemu/90002/config", &[("delete", "scsi0")]).await,
        forbidden("/vms/90002, VM.Config.Disk")
    );
    // A user from the config logs in with its password; its ticket carries the same privileges.
    let login = [("username", "bob@pve"), ("password", "bob-password")];
    let r = lab.client.post(format!("{}/access/ticket", lab.url)).form(&login).send().await.unwrap();
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    let cookie = format!("PVEAuthCookie={}", body["data"]["ticket"].as_str().unwrap());
    let r = lab.client.get(format!("{}/cluster/status", lab.url)).header("Cookie", cookie).send().await;
    let r = r.unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(body["message"], "Permission check failed (/, Sys.Audit)\n");
}

#[tokio::test]
async fn and_or_checks_answer_as_pve_does() {
    let lab = start(config()).await;
    // clone: ["and", VM.Clone on the source, ["or", VM.Allocate on newid, VM.Allocate on the pool]].
    // The and's first refusal is the answer ...
    assert_eq!(
        lab.denied(BOB, "POST", "/nodes/pve/qemu/90002/clone", &[("newid", "160")]).await,
        forbidden("/vms/90002, VM.Clone")
    );
    // ... and a failed or names nothing.
    let (status, message) = lab.denied(BOB, "POST", "/nodes/pve/qemu/90001/clone", &[("newid", "160")]).await;
    assert_eq!((status, message.as_str()), (403, "Permission check failed"));
    // download-url: Datastore.AllocateTemplate on the storage, then Sys.Audit+Sys.Modify on / or
    // Sys.AccessNetwork on the node.
    let form = [("content", "iso"), ("filename", "x.iso"), ("url", "http://127.0.0.1:1/x.iso")];
    assert_eq!(
        lab.denied(FULL, "POST", "/nodes/pve/storage/local/download-url", &form).await,
        forbidden("/storage/local, Datastore.AllocateTemplate")
    );
}
