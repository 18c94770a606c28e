//! `/nodes/{node}/qemu/...`: the VM calls the provider makes, typed.
//!
//! Owns: one function per PVE call (create, clone, config get/put/post,
//! pending, resize, template, status current/start/stop/shutdown/reboot,
//! migrate, destroy, the guest agent's network interfaces), where each call
//! lives (`/nodes/{node}/qemu/{vmid}/...`), the UPID it returns, and the
//! conversion of PVE's answers (numbers or strings) into strings and typed
//! structs. Also VMID allocation: serialised within the process, probed with
//! `GET /cluster/nextid?vmid=N` (PVE cannot reserve IDs).
//! Must not: retry, wait for tasks, or know Pulumi args (resources do that).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::client::{as_u64, Params, PveClient};
use super::error::ProxmoxError;
use super::task::Upid;

/// A VM's config as PVE stores it: every value as a string.
pub type VmConfig = BTreeMap<String, String>;

fn vm_path(node: &str, vmid: u32) -> String {
    format!("/nodes/{node}/qemu/{vmid}")
}

fn task(path: &str, method: &str, data: Value) -> Result<Upid, ProxmoxError> {
    Upid::from_data(&data, method, path)
}

/// Where a VM is now (it may have moved: HA, manual migration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmLocation {
    pub node: String,
    pub running: bool,
    pub template: bool,
}

/// What `/cluster/resources` says about a VMID.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Listed {
    Vm(VmLocation),
    /// A container (LXC) has the VMID: whatever VM had it is gone; the guest there is not ours.
    Container,
    /// Not listed: gone, or not visible to this token (PVE lists only what it may audit).
    Absent,
}

fn listed(all: &[Value], vmid: u32) -> Listed {
    let Some(v) = all.iter().find(|v| v.get("vmid").and_then(as_u64) == Some(u64::from(vmid))) else {
        return Listed::Absent;
    };
    if v.get("type").and_then(Value::as_str).is_some_and(|t| t != "qemu") {
        return Listed::Container;
    }
    Listed::Vm(VmLocation {
        node: v.get("node").and_then(Value::as_str).unwrap_or_default().to_string(),
        running: v.get("status").and_then(Value::as_str) == Some("running"),
        template: v.get("template").and_then(as_u64) == Some(1),
    })
}

/// Finds VM `vmid` anywhere in the cluster (`GET /cluster/resources?type=vm`; it may have
/// moved), `None` only when it is confirmed gone. PVE lists only the guests the caller may
/// audit, so a VMID missing from the list is asked for directly
/// (`GET /nodes/{node}/qemu/{vmid}/status/current` on `known_node`, else on every node): PVE's
/// "does not exist" is gone; a 403 (the token lacks `VM.Audit` on `/vms/{vmid}`) or any other
/// failure is an error, never "gone". A container (LXC) with the VMID is not the VM.
pub async fn locate(
    client: &PveClient,
    vmid: u32,
    known_node: Option<&str>,
) -> Result<Option<VmLocation>, ProxmoxError> {
    let all: Vec<Value> = client.get("/cluster/resources", &[("type", "vm")]).await?;
    match listed(&all, vmid) {
        Listed::Vm(location) => return Ok(Some(location)),
        Listed::Container => return Ok(None),
        Listed::Absent => {}
    }
    let nodes = match known_node {
        Some(node) => vec![node.to_string()],
        None => super::cluster::node_names(client).await?,
    };
    for node in nodes {
        match status(client, &node, vmid).await {
            Ok(s) => {
                return Ok(Some(VmLocation { node, running: s.status == "running", template: s.template == Some(1) }))
            }
            Err(e) if e.is_not_found() => {}
            Err(e) if e.status() == Some(403) => {
                return Err(ProxmoxError::Api {
                    method: "GET".into(),
                    path: format!("{}/status/current", vm_path(&node, vmid)),
                    status: 403,
                    message: format!(
                        "{} — VM {vmid} is not in /cluster/resources for this token and cannot be checked \
                         directly, so whether it still exists is unknown: grant the token VM.Audit on /vms/{vmid} \
                         (e.g. role PVEAuditor or PVEVMAdmin)",
                        e.message().unwrap_or_default().trim()
                    ),
                    errors: Default::default(),
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// The VMs (VMID, node) whose tags include `tag`, from `/cluster/resources` (containers left out).
pub async fn tagged(client: &PveClient, tag: &str) -> Result<Vec<(u32, String)>, ProxmoxError> {
    listed_where(client, |v| {
        v.get("tags").and_then(Value::as_str).is_some_and(|t| t.split([';', ',', ' ']).any(|t| t == tag))
    })
    .await
}

/// The VMs (VMID, node) named `name`, from `/cluster/resources` (containers left out).
pub async fn named(client: &PveClient, name: &str) -> Result<Vec<(u32, String)>, ProxmoxError> {
    listed_where(client, |v| v.get("name").and_then(Value::as_str) == Some(name)).await
}

async fn listed_where(client: &PveClient, keep: impl Fn(&Value) -> bool) -> Result<Vec<(u32, String)>, ProxmoxError> {
    let all: Vec<Value> = client.get("/cluster/resources", &[("type", "vm")]).await?;
    Ok(all
        .iter()
        .filter(|v| v.get("type").and_then(Value::as_str).is_none_or(|t| t == "qemu"))
        .filter(|v| keep(v))
        .filter_map(|v| {
            let vmid = v.get("vmid").and_then(as_u64)? as u32;
            Some((vmid, v.get("node").and_then(Value::as_str).unwrap_or_default().to_string()))
        })
        .collect())
}

/// Whether `vmid` is free (`GET /cluster/nextid?vmid=N`: 400 "VM N already exists" if not).
pub async fn is_free(client: &PveClient, vmid: u32) -> Result<bool, ProxmoxError> {
    match client.get::<Value>("/cluster/nextid", &[("vmid", &vmid.to_string())]).await {
        Ok(_) => Ok(true),
        Err(e) if e.status() == Some(400) && e.is_already_exists() => Ok(false),
        Err(e) => Err(e),
    }
}

/// The lowest free VMID PVE proposes (`GET /cluster/nextid`).
pub async fn next_id(client: &PveClient) -> Result<u32, ProxmoxError> {
    let v: Value = client.get("/cluster/nextid", &[]).await?;
    as_u64(&v).map(|n| n as u32).ok_or_else(|| ProxmoxError::Decode {
        method: "GET".into(),
        path: "/cluster/nextid".into(),
        reason: format!("expected a VMID, got {v}"),
    })
}

/// `POST /nodes/{node}/qemu`: creates a VM; returns the task.
pub async fn create(client: &PveClient, node: &str, params: &Params) -> Result<Upid, ProxmoxError> {
    let path = format!("/nodes/{node}/qemu");
    let data = client.post(&path, params).await?;
    task(&path, "POST", data)
}

/// `POST .../clone` on the source VM's node.
pub async fn clone(client: &PveClient, node: &str, vmid: u32, params: &Params) -> Result<Upid, ProxmoxError> {
    let path = format!("{}/clone", vm_path(node, vmid));
    let data = client.post(&path, params).await?;
    task(&path, "POST", data)
}

/// `GET .../config` (the current values, not pending ones) as strings.
pub async fn config(client: &PveClient, node: &str, vmid: u32) -> Result<VmConfig, ProxmoxError> {
    let path = format!("{}/config", vm_path(node, vmid));
    let raw: BTreeMap<String, Value> = client.get(&path, &[("current", "1")]).await?;
    Ok(raw.into_iter().map(|(k, v)| (k, stringify(&v))).collect())
}

/// One `GET .../pending` entry: a key with its current and pending value or deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChange {
    pub key: String,
    pub value: Option<String>,
    pub pending: Option<String>,
    pub delete: bool,
}

/// `GET .../pending`: the keys whose change waits for the next start.
pub async fn pending(client: &PveClient, node: &str, vmid: u32) -> Result<Vec<PendingChange>, ProxmoxError> {
    let path = format!("{}/pending", vm_path(node, vmid));
    let raw: Vec<Value> = client.get(&path, &[]).await?;
    Ok(raw
        .iter()
        .filter_map(|e| {
            let key = e.get("key")?.as_str()?.to_string();
            let value = e.get("value").map(stringify);
            let pending = e.get("pending").map(stringify);
            let delete = e.get("delete").and_then(as_u64).is_some_and(|d| d > 0);
            (pending.is_some() || delete).then_some(PendingChange { key, value, pending, delete })
        })
        .collect())
}

/// `PUT .../config`: a synchronous change (no task).
pub async fn set_config(client: &PveClient, node: &str, vmid: u32, params: &Params) -> Result<(), ProxmoxError> {
    client.put(&format!("{}/config", vm_path(node, vmid)), params).await.map(|_| ())
}

/// `PUT .../cloudinit`: regenerate the cloud-init drive from the current configuration.
pub async fn regenerate_cloudinit(client: &PveClient, node: &str, vmid: u32) -> Result<(), ProxmoxError> {
    client.put(&format!("{}/cloudinit", vm_path(node, vmid)), &Params::new()).await.map(|_| ())
}

/// `POST .../config`: an asynchronous change (allocations, imports); returns the task.
pub async fn update_config(client: &PveClient, node: &str, vmid: u32, params: &Params) -> Result<Upid, ProxmoxError> {
    let path = format!("{}/config", vm_path(node, vmid));
    let data = client.post(&path, params).await?;
    task(&path, "POST", data)
}

/// `PUT .../resize` to an absolute size such as `32G`; a task on PVE 9 (and `null` on older PVE).
pub async fn resize(
    client: &PveClient,
    node: &str,
    vmid: u32,
    disk: &str,
    size: &str,
) -> Result<Option<Upid>, ProxmoxError> {
    let path = format!("{}/resize", vm_path(node, vmid));
    let params = vec![("disk".to_string(), disk.to_string()), ("size".to_string(), size.to_string())];
    let data = client.put(&path, &params).await?;
    Ok(data.as_str().and_then(Upid::parse))
}

/// `POST .../move_disk` (task `qmmove`): moves `disk` to `storage`, deleting the
/// source volume after the copy (PVE would otherwise keep it as an `unused` disk).
pub async fn move_disk(
    client: &PveClient,
    node: &str,
    vmid: u32,
    disk: &str,
    storage: &str,
) -> Result<Upid, ProxmoxError> {
    let path = format!("{}/move_disk", vm_path(node, vmid));
    let params = vec![
        ("disk".to_string(), disk.to_string()),
        ("storage".to_string(), storage.to_string()),
        ("delete".to_string(), "1".to_string()),
    ];
    let data = client.post(&path, &params).await?;
    task(&path, "POST", data)
}

/// `POST .../template`: converts the VM into a template.
pub async fn convert_to_template(client: &PveClient, node: &str, vmid: u32) -> Result<Option<Upid>, ProxmoxError> {
    let path = format!("{}/template", vm_path(node, vmid));
    let data = client.post(&path, &Vec::new()).await?;
    Ok(data.as_str().and_then(Upid::parse))
}

/// What `GET .../status/current` tells.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct VmStatus {
    /// `running` or `stopped`.
    pub status: String,
    #[serde(default)]
    pub lock: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// 1 for a template.
    #[serde(default)]
    pub template: Option<u64>,
}

/// `GET .../status/current`.
pub async fn status(client: &PveClient, node: &str, vmid: u32) -> Result<VmStatus, ProxmoxError> {
    client.get(&format!("{}/status/current", vm_path(node, vmid)), &[]).await
}

/// A power action: `start`, `stop`, `shutdown`, `reboot`, `reset`, with its parameters.
pub async fn power(
    client: &PveClient,
    node: &str,
    vmid: u32,
    action: &str,
    params: &Params,
) -> Result<Upid, ProxmoxError> {
    let path = format!("{}/status/{action}", vm_path(node, vmid));
    let data = client.post(&path, params).await?;
    task(&path, "POST", data)
}

/// `POST .../migrate` to `target` (online if running; local disks move along).
pub async fn migrate(client: &PveClient, node: &str, vmid: u32, params: &Params) -> Result<Upid, ProxmoxError> {
    let path = format!("{}/migrate", vm_path(node, vmid));
    let data = client.post(&path, params).await?;
    task(&path, "POST", data)
}

/// `DELETE /nodes/{node}/qemu/{vmid}` with purge and unreferenced disks.
pub async fn destroy(client: &PveClient, node: &str, vmid: u32) -> Result<Upid, ProxmoxError> {
    let path = vm_path(node, vmid);
    let params =
        vec![("purge".to_string(), "1".to_string()), ("destroy-unreferenced-disks".to_string(), "1".to_string())];
    let data = client.delete(&path, &params).await?;
    task(&path, "DELETE", data)
}

/// One guest interface as the QEMU guest agent reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestInterface {
    pub name: String,
    pub mac: Option<String>,
    /// `(address, prefix)` pairs.
    pub ipv4: Vec<(String, u8)>,
    pub ipv6: Vec<(String, u8)>,
}

/// `GET .../agent/network-get-interfaces`, in the agent's order (`lo` first).
pub async fn guest_interfaces(client: &PveClient, node: &str, vmid: u32) -> Result<Vec<GuestInterface>, ProxmoxError> {
    let path = format!("{}/agent/network-get-interfaces", vm_path(node, vmid));
    let data: Value = client.get(&path, &[]).await?;
    let result = data.get("result").and_then(Value::as_array).cloned().unwrap_or_default();
    Ok(result
        .iter()
        .map(|i| {
            let mut iface = GuestInterface {
                name: i.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
                mac: i.get("hardware-address").and_then(Value::as_str).map(str::to_string),
                ipv4: Vec::new(),
                ipv6: Vec::new(),
            };
            for a in i.get("ip-addresses").and_then(Value::as_array).into_iter().flatten() {
                let Some(ip) = a.get("ip-address").and_then(Value::as_str) else { continue };
                let prefix = a.get("prefix").and_then(as_u64).unwrap_or(0) as u8;
                match a.get("ip-address-type").and_then(Value::as_str) {
                    Some("ipv6") => iface.ipv6.push((ip.to_string(), prefix)),
                    _ => iface.ipv4.push((ip.to_string(), prefix)),
                }
            }
            iface
        })
        .collect())
}

/// Whether an agent error only means "not ready yet" (keep waiting).
pub fn agent_not_ready(e: &ProxmoxError) -> bool {
    let ready_texts = ["guest agent is not running", "QEMU guest agent is not running", "not running", "got timeout"];
    e.status() != Some(403) && ready_texts.iter().any(|t| e.mentions(t))
}

/// A config value as a string (PVE sends numbers for some keys).
fn stringify(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_cluster_list_tells_vms_containers_and_absence_apart() {
        let all = vec![
            json!({ "id": "qemu/100", "type": "qemu", "vmid": 100, "node": "pve", "status": "running", "template": 0 }),
            json!({ "id": "lxc/101", "type": "lxc", "vmid": 101, "node": "pve", "status": "running" }),
            json!({ "id": "qemu/9000", "type": "qemu", "vmid": 9000, "node": "pve2", "status": "stopped", "template": 1 }),
        ];
        assert_eq!(listed(&all, 100), Listed::Vm(VmLocation { node: "pve".into(), running: true, template: false }));
        assert_eq!(listed(&all, 9000), Listed::Vm(VmLocation { node: "pve2".into(), running: false, template: true }));
        // A container with the VMID is not the VM (and must never be destroyed as one).
        assert_eq!(listed(&all, 101), Listed::Container);
        // Not listed: gone, or hidden from this token; `locate` asks the node before saying gone.
        assert_eq!(listed(&all, 102), Listed::Absent);
    }
}
