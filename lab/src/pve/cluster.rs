//! Cluster- and node-level endpoints: what `pvesh get /cluster/...` and
//! `/nodes/{node}/...` answer about the lab's hardware.
//!
//! Owns: `/nodes`, `/nodes/{node}/status`, `/nodes/{node}/network`,
//! `/nodes/{node}/hardware/pci`, `/cluster/status`, `/cluster/resources`,
//! `/cluster/nextid` (400 "VM N already exists"), `/cluster/mapping/pci`,
//! `/storage` and `/storage/{storage}`; and [`node_of`], the check every
//! node-scoped handler makes ("hostname lookup ... failed" for an unknown node).
//! Must not: change VMs or storage content (that is `qemu/` and `storage/`).

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::model::{Model, PciMapping};
use super::server::{ApiError, Call, Handlers};
use super::state::{now_ms, storage_path, PveState};

pub fn register(h: &mut Handlers) {
    h.sync("GET", "/nodes", nodes);
    h.sync("GET", "/nodes/{node}/status", node_status);
    h.sync("GET", "/nodes/{node}/network", network);
    h.sync("GET", "/nodes/{node}/hardware/pci", pci_devices);
    h.sync("GET", "/cluster/status", cluster_status);
    h.sync("GET", "/cluster/resources", resources);
    h.sync("GET", "/cluster/nextid", next_id);
    h.sync("GET", "/cluster/mapping/pci", list_mappings);
    h.sync("POST", "/cluster/mapping/pci", create_mapping);
    h.sync("GET", "/cluster/mapping/pci/{id}", get_mapping);
    h.sync("DELETE", "/cluster/mapping/pci/{id}", delete_mapping);
    h.sync("GET", "/storage", storages);
    h.sync("GET", "/storage/{storage}", storage);
}

/// The `{node}` of a node-scoped call, if the cluster has it; else PVE's
/// answer for a name it cannot resolve.
pub fn node_of(state: &PveState, call: &Call) -> Result<String, ApiError> {
    let node = call.str("node").to_string();
    if state.read(|m| m.nodes.contains_key(&node)) {
        Ok(node)
    } else {
        Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "hostname lookup '{node}' failed - failed to get address info for: {node}: Name or service not known"
            ),
        ))
    }
}

fn nodes(state: &PveState, _: &Call) -> Result<Value, ApiError> {
    Ok(state.read(|m| {
        m.nodes
            .values()
            .map(|n| {
                json!({
                    "node": n.name, "id": format!("node/{}", n.name), "type": "node", "status": "online",
                    "level": "", "cpu": 0.02, "maxcpu": n.cpus, "mem": used_memory(m, &n.name) << 20,
                    "maxmem": n.memory_mib << 20, "disk": 4_294_967_296u64, "maxdisk": 107_374_182_400u64,
                    "uptime": 86_400, "ssl_fingerprint": "",
                })
            })
            .collect()
    }))
}

/// MiB of memory the node's running VMs use.
fn used_memory(m: &Model, node: &str) -> u64 {
    m.vms
        .values()
        .filter(|vm| vm.node == node && vm.running)
        .map(|vm| vm.config.get("memory").and_then(|v| v.parse::<u64>().ok()).unwrap_or(512))
        .sum()
}

fn node_status(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let node = node_of(state, call)?;
    Ok(state.read(|m| {
        let n = &m.nodes[&node];
        let used = used_memory(m, &node) << 20;
        let total = n.memory_mib << 20;
        json!({
            "uptime": 86_400, "cpu": 0.02, "wait": 0, "idle": 0,
            "loadavg": ["0.10", "0.08", "0.05"],
            "kversion": "Linux 6.17.2-1-pve #1 SMP PREEMPT_DYNAMIC PMX 6.17.2-1 x86_64",
            "pveversion": format!("pve-manager/{}/lab", state.pve_version()),
            "cpuinfo": { "cpus": n.cpus, "cores": n.cpus / 2, "sockets": 1, "model": "Lab CPU", "mhz": "3000.000",
                         "hvm": "1", "flags": "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr aes avx avx2", "user_hz": 100 },
            "memory": { "total": total, "used": used, "free": total.saturating_sub(used), "available": total.saturating_sub(used) },
            "swap": { "total": 0, "used": 0, "free": 0 },
            "rootfs": { "total": 107_374_182_400u64, "used": 4_294_967_296u64, "free": 103_079_215_104u64, "avail": 103_079_215_104u64 },
            "boot-info": { "mode": "efi", "secureboot": 0 },
            "current-kernel": { "sysname": "Linux", "release": "6.17.2-1-pve", "machine": "x86_64",
                                "version": "#1 SMP PREEMPT_DYNAMIC PMX 6.17.2-1" },
        })
    }))
}

fn network(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let node = node_of(state, call)?;
    let address = state.read(|m| m.nodes[&node].address);
    let wanted = call.opt_str("type");
    let mut ifaces = vec![json!({
        "iface": "eno1", "type": "eth", "method": "manual", "method6": "manual", "active": 1,
        "autostart": 1, "exists": 1, "families": ["inet"], "priority": 3,
    })];
    for (i, b) in state.bridges().iter().enumerate() {
        let mut bridge = json!({
            "iface": b.name, "type": "bridge", "method": "static", "method6": "manual", "active": 1,
            "autostart": 1, "bridge_ports": if i == 0 { "eno1" } else { "" }, "bridge_stp": "off", "bridge_fd": "0",
            "families": ["inet"], "priority": 4 + i,
        });
        if b.vlan_aware {
            bridge["bridge_vlan_aware"] = json!(1);
            bridge["bridge_vids"] = json!("2-4094");
        }
        if i == 0 {
            bridge["address"] = json!(address.to_string());
            bridge["netmask"] = json!("8");
            bridge["cidr"] = json!(format!("{address}/8"));
            bridge["gateway"] = json!(b.gateway.to_string());
        }
        ifaces.push(bridge);
    }
    Ok(Value::Array(
        ifaces
            .into_iter()
            .filter(|i| match wanted {
                None => true,
                Some("any_bridge" | "any_local_bridge") => i["type"] == "bridge",
                Some(t) => i["type"] == t,
            })
            .collect(),
    ))
}

fn pci_devices(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let node = node_of(state, call)?;
    Ok(state.read(|m| {
        m.nodes[&node]
            .pci_devices
            .iter()
            .map(|d| {
                json!({
                    "id": d.id, "class": "0x030000", "vendor": d.vendor, "device": d.device,
                    "vendor_name": d.vendor_name, "device_name": d.device_name, "iommugroup": d.iommu_group,
                    "subsystem_vendor": d.vendor, "subsystem_device": "0x0000", "mdev": false,
                })
            })
            .collect()
    }))
}

fn cluster_status(state: &PveState, _: &Call) -> Result<Value, ApiError> {
    Ok(state.read(|m| {
        // A standalone node has no cluster entry; a cluster lists it first.
        let mut entries = Vec::new();
        if m.nodes.len() > 1 {
            entries.push(json!({
                "type": "cluster", "name": "lab", "id": "cluster", "nodes": m.nodes.len(), "quorate": 1, "version": 3,
            }));
        }
        entries.extend(m.nodes.values().enumerate().map(|(i, n)| {
            json!({
                "type": "node", "name": n.name, "id": format!("node/{}", n.name), "nodeid": i + 1,
                "ip": n.address.to_string(), "online": 1, "local": u8::from(i == 0), "level": "",
            })
        }));
        Value::Array(entries)
    }))
}

fn resources(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let wanted = call.opt_str("type");
    Ok(state.read(|m| {
        let mut out = Vec::new();
        if wanted.is_none() || wanted == Some("vm") {
            for vm in m.vms.values() {
                out.push(vm_resource(m, vm));
            }
        }
        if wanted.is_none() || wanted == Some("node") {
            for n in m.nodes.values() {
                out.push(json!({
                    "id": format!("node/{}", n.name), "type": "node", "node": n.name, "status": "online",
                    "maxcpu": n.cpus, "maxmem": n.memory_mib << 20, "mem": used_memory(m, &n.name) << 20,
                    "cpu": 0.02, "uptime": 86_400, "level": "", "cgroup-mode": 2,
                    "disk": 4_294_967_296u64, "maxdisk": 107_374_182_400u64,
                }));
            }
        }
        if wanted.is_none() || wanted == Some("storage") {
            for n in m.nodes.values() {
                for s in m.storages.values() {
                    out.push(storage_resource(m, &n.name, s));
                }
            }
        }
        if wanted.is_none() {
            for id in m.pools.keys() {
                out.push(json!({ "id": format!("/pool/{id}"), "type": "pool", "pool": id }));
            }
        }
        Value::Array(out)
    }))
}

/// A storage's `/cluster/resources` entry on `node` (also a pool member).
pub(crate) fn storage_resource(m: &Model, node: &str, s: &super::lab_config::StorageConfig) -> Value {
    let used: u64 = m
        .volumes
        .values()
        .filter(|v| v.storage == s.id && (s.shared || v.node.as_deref() == Some(node)))
        .map(|v| v.size)
        .sum();
    json!({
        "id": format!("storage/{node}/{}", s.id), "type": "storage", "storage": s.id,
        "node": node, "status": "available", "content": s.content.join(","),
        "plugintype": s.kind, "shared": u8::from(s.shared), "disk": used,
        "maxdisk": s.capacity_gib << 30,
    })
}

/// A guest's `/cluster/resources` entry (also a pool member).
pub(crate) fn vm_resource(m: &Model, vm: &super::model::Vm) -> Value {
    let cfg = |k: &str| vm.config.get(k).cloned();
    let memory: u64 = cfg("memory").and_then(|v| v.parse().ok()).unwrap_or(512);
    let cores: u64 = cfg("cores").and_then(|v| v.parse().ok()).unwrap_or(1);
    let sockets: u64 = cfg("sockets").and_then(|v| v.parse().ok()).unwrap_or(1);
    let disk: u64 = m.volumes_of(vm.vmid).filter(|v| !v.volid.contains("cloudinit")).map(|v| v.size).max().unwrap_or(0);
    let uptime = vm.started_at_ms.filter(|_| vm.running).map(|t| now_ms().saturating_sub(t) / 1000).unwrap_or(0);
    let mut v = json!({
        "id": format!("qemu/{}", vm.vmid), "type": "qemu", "vmid": vm.vmid, "node": vm.node,
        "name": cfg("name").unwrap_or_else(|| format!("VM {}", vm.vmid)),
        "status": if vm.running { "running" } else { "stopped" }, "template": u8::from(vm.is_template()),
        "maxmem": memory << 20, "mem": if vm.running { (memory << 20) / 2 } else { 0 }, "maxcpu": cores * sockets,
        "cpu": if vm.running { 0.01 } else { 0.0 }, "maxdisk": disk, "disk": 0, "uptime": uptime,
        "netin": 0, "netout": 0, "diskread": 0, "diskwrite": 0,
    });
    if let Some(tags) = cfg("tags") {
        v["tags"] = json!(tags);
    }
    if let Some(pool) = m.pool_of(vm.vmid) {
        v["pool"] = json!(pool);
    }
    if let Some(lock) = &vm.lock {
        v["lock"] = json!(lock);
    }
    v
}

/// The lowest free VMID from 100, or a check of the one asked for. PVE
/// cannot reserve IDs: two callers may both be told an ID is free.
fn next_id(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let used: Vec<u32> = state.read(|m| m.vms.keys().copied().collect());
    if let Some(vmid) = call.int("vmid") {
        let vmid = vmid as u32;
        if used.contains(&vmid) {
            return Err(ApiError::params([("vmid".to_string(), format!("VM {vmid} already exists"))].into()));
        }
        return Ok(json!(vmid.to_string()));
    }
    let free = (100u32..1_000_000_000).find(|id| !used.contains(id)).unwrap_or(100);
    Ok(json!(free.to_string()))
}

fn list_mappings(state: &PveState, _: &Call) -> Result<Value, ApiError> {
    Ok(state.read(|m| m.pci_mappings.values().map(mapping_json).collect()))
}

fn mapping_json(p: &PciMapping) -> Value {
    let mut v = json!({ "id": p.id, "map": p.map, "type": "pci" });
    if let Some(d) = &p.description {
        v["description"] = json!(d);
    }
    v
}

fn create_mapping(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let id = call.str("id").to_string();
    let map: Vec<String> = match call.params.get("map") {
        Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    for (i, entry) in map.iter().enumerate() {
        let keys: Vec<(&str, &str)> = entry.split(',').filter_map(|kv| kv.split_once('=')).collect();
        let get = |k: &str| keys.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        let (Some(node), Some(path)) = (get("node"), get("path")) else {
            return Err(ApiError::params(
                [(format!("map[{i}]"), "invalid format - missing key 'node' or 'path'".to_string())].into(),
            ));
        };
        let known = state.read(|m| m.nodes.get(node).is_some_and(|n| n.pci_devices.iter().any(|d| d.id == path)));
        if !known {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("map[{i}]: no PCI device '{path}' on node '{node}'"),
            ));
        }
    }
    state.write(|m| {
        if m.pci_mappings.contains_key(&id) {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("pci mapping '{id}' already defined"),
            ));
        }
        let description = call.opt_str("description").map(str::to_string);
        m.pci_mappings.insert(id.clone(), PciMapping { id: id.clone(), description, map });
        Ok(Value::Null)
    })
}

fn get_mapping(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let id = call.str("id");
    state.read(|m| m.pci_mappings.get(id).map(mapping_json)).ok_or_else(|| no_mapping(id))
}

fn delete_mapping(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let id = call.str("id").to_string();
    state.write(|m| m.pci_mappings.remove(&id)).map(|_| Value::Null).ok_or_else(|| no_mapping(&id))
}

fn no_mapping(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("PCI mapping '{id}' not found"))
}

fn storage_json(s: &super::lab_config::StorageConfig) -> Value {
    let mut v = json!({
        "storage": s.id, "type": s.kind, "content": s.content.join(","), "shared": u8::from(s.shared),
        "digest": "0000000000000000000000000000000000000000",
    });
    match s.kind.as_str() {
        "dir" => v["path"] = json!(storage_path(&s.id)),
        "lvmthin" => {
            v["vgname"] = json!("pve");
            v["thinpool"] = json!("data");
        }
        "zfspool" => {
            v["pool"] = json!("rpool/data");
            v["sparse"] = json!(1);
        }
        "rbd" => {
            v["pool"] = json!(s.id);
            v["krbd"] = json!(0);
        }
        _ => {}
    }
    v
}

fn storages(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let wanted = call.opt_str("type");
    Ok(state.read(|m| m.storages.values().filter(|s| wanted.is_none_or(|t| t == s.kind)).map(storage_json).collect()))
}

fn storage(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let id = call.str("storage");
    state
        .read(|m| m.storages.get(id).map(storage_json))
        .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("storage '{id}' does not exist")))
}
