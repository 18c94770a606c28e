//! The QEMU guest agent (`/nodes/{node}/qemu/{vmid}/agent/...`) and the
//! addresses guests have on the lab network.
//!
//! Owns: when a guest has booted and when its agent answers (running, not
//! paused, an OS on a boot disk, `boot_ms` and then `agent_ms` after start,
//! `agent` enabled in the running config), the agent endpoints with PVE's
//! errors ("No QEMU guest agent configured", "VM N is not running", "QEMU
//! guest agent is not running"), the guest's NICs (each without `link_down`;
//! the links around them are [`guest_links`]'s), DHCP leases by MAC from
//! the NIC's bridge subnet (`.100` upwards, stable), and [`guest_address`].
//! Must not: change VM configs or run states.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde_json::{json, Value};

use super::drive::{self, Drive, Net};
use super::guest_links::{self, Image, Nic};
use super::{fail, vm_on_node};
use crate::pve::lab_config::BridgeConfig;
use crate::pve::model::{Model, Vm};
use crate::pve::server::{ApiError, Call, Handlers};
use crate::pve::state::{now_ms, PveState};

pub fn register(h: &mut Handlers) {
    h.sync("GET", "/nodes/{node}/qemu/{vmid}/agent", index);
    h.sync("POST", "/nodes/{node}/qemu/{vmid}/agent/ping", ping);
    h.sync("GET", "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces", interfaces);
    h.sync("GET", "/nodes/{node}/qemu/{vmid}/agent/get-osinfo", osinfo);
    h.sync("GET", "/nodes/{node}/qemu/{vmid}/agent/get-host-name", host_name);
}

/// The address the guest of `vmid` has on the lab network (its first NIC's,
/// as its agent reports it), once it runs; allocates the DHCP lease if needed.
/// The Talos node simulation listens there.
pub fn guest_address(state: &PveState, vmid: u32) -> Option<Ipv4Addr> {
    addresses(state, vmid).into_iter().find_map(|(_, _, ip)| ip)
}

/// What the guest boots, following the boot order as the firmware does: the
/// `origin` of the first disk that holds an OS (`local:import/talos-v1.12.4.raw`,
/// `template:pkr-ubuntu-noble-1`), or the first ISO in a CD-ROM drive
/// (`local:iso/talos-v1.12.4-metal-amd64.iso`). Blank disks do not boot.
pub fn guest_os(m: &Model, vm: &Vm) -> Option<String> {
    let mut order = drive::boot_order(&vm.config);
    if order.is_empty() {
        let names = drive::boot_drive_names();
        let (cdroms, disks): (Vec<String>, Vec<String>) = names
            .into_iter()
            .filter(|k| vm.config.contains_key(k))
            .partition(|k| Drive::parse(&vm.config[k]).is_cdrom());
        order = disks.into_iter().chain(cdroms).collect();
    }
    order.iter().filter_map(|k| vm.config.get(k)).map(|v| Drive::parse(v)).find_map(|d| {
        if d.is_cloudinit() {
            None
        } else if d.is_cdrom() {
            drive::split_volid(&d.file).map(|_| d.file.clone())
        } else {
            m.volumes.get(&d.file).and_then(|v| v.origin.clone())
        }
    })
}

/// The guest's NICs with their addresses, leasing what is missing (a write
/// only when a lease is new).
fn addresses(state: &PveState, vmid: u32) -> Vec<(u32, String, Option<Ipv4Addr>)> {
    let bridges = state.bridges().to_vec();
    let leased = |m: &Model| m.vms.get(&vmid).map(|vm| nic_addresses(m, vm, &bridges)).unwrap_or_default();
    let nics = state.read(leased);
    let on_lab = |i: u32| {
        state.read(|m| {
            m.vms
                .get(&vmid)
                .and_then(|vm| vm.config.get(&format!("net{i}")).map(|v| Net::parse(v)))
                .is_some_and(|n| n.bridge().is_some_and(|b| bridges.iter().any(|x| x.name == b)))
        })
    };
    if nics.iter().any(|(i, _, ip)| ip.is_none() && on_lab(*i)) {
        return state.write(|m| {
            allocate_leases(m, &bridges, vmid);
            leased(m)
        });
    }
    nics
}

/// Milliseconds the guest has been up (not counting a pause).
fn up_ms(vm: &Vm) -> Option<u64> {
    vm.started_at_ms.filter(|_| vm.running && !vm.paused).map(|t| now_ms().saturating_sub(t))
}

/// Whether the guest OS has booted (it answers ACPI, its network is up).
pub fn booted(state: &PveState, m: &Model, vm: &Vm) -> bool {
    up_ms(vm).is_some_and(|up| up >= state.timing().boot_ms) && guest_os(m, vm).is_some()
}

/// `agent` enabled in a config (`get_qga_key($conf, 'enabled')`).
pub fn agent_enabled(config: &BTreeMap<String, String>) -> bool {
    config.get("agent").is_some_and(|a| {
        drive::parse_kv(a, Some("enabled"), &["enabled", "freeze-fs-on-backup", "fstrim_cloned_disks", "type"])
            .ok()
            .and_then(|m| m.get("enabled").and_then(|e| crate::pve::validate::parse_boolean(e)))
            .unwrap_or(false)
    })
}

/// Whether the agent answers (`qga_check_running`).
pub fn agent_running(state: &PveState, m: &Model, vm: &Vm) -> bool {
    let t = state.timing();
    agent_enabled(&vm.config)
        && guest_os(m, vm).is_some()
        && up_ms(vm).is_some_and(|up| up >= t.boot_ms.saturating_add(t.agent_ms))
}

/// PVE's `assert_agent_available` for an agent call.
/// Returns the VM and what its disks hold.
fn available(state: &PveState, call: &Call) -> Result<(Vm, Option<String>), ApiError> {
    let (_, vmid) = vm_on_node(state, call)?;
    let (vm, running, os) = state.read(|m| {
        let vm = &m.vms[&vmid];
        (vm.clone(), agent_running(state, m, vm), guest_os(m, vm))
    });
    if !vm.config.contains_key("agent") {
        return Err(fail("No QEMU guest agent configured"));
    }
    if !vm.running {
        return Err(fail(format!("VM {vmid} is not running")));
    }
    if !running {
        return Err(fail("QEMU guest agent is not running"));
    }
    Ok((vm, os))
}

fn index(_: &PveState, _: &Call) -> Result<Value, ApiError> {
    let mut names = vec![
        "exec",
        "exec-status",
        "file-read",
        "file-write",
        "fsfreeze-freeze",
        "fsfreeze-status",
        "fsfreeze-thaw",
        "fstrim",
        "get-fsinfo",
        "get-host-name",
        "get-memory-block-info",
        "get-memory-blocks",
        "get-osinfo",
        "get-time",
        "get-timezone",
        "get-users",
        "get-vcpus",
        "info",
        "network-get-interfaces",
        "ping",
        "set-user-password",
        "shutdown",
        "suspend-disk",
        "suspend-hybrid",
        "suspend-ram",
    ];
    names.sort_unstable();
    Ok(Value::Array(names.into_iter().map(|n| json!({ "name": n })).collect()))
}

fn ping(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    available(state, call)?;
    Ok(json!({ "result": {} }))
}

fn host_name(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let (vm, _) = available(state, call)?;
    let name = vm.config.get("name").cloned().unwrap_or_else(|| format!("vm{}", vm.vmid));
    Ok(json!({ "result": { "host-name": name } }))
}

fn osinfo(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let (_, os) = available(state, call)?;
    let origin = os.unwrap_or_default().to_ascii_lowercase();
    let version = version_in(&origin);
    let result = if origin.contains("talos") {
        let v = version.unwrap_or_else(|| "1.12.0".into());
        json!({
            "id": "talos", "name": "Talos", "pretty-name": format!("Talos (v{v})"), "version": format!("v{v}"),
            "version-id": format!("v{v}"), "kernel-release": "6.12.57-talos", "kernel-version": "#1 SMP",
            "machine": "x86_64",
        })
    } else {
        json!({
            "id": "ubuntu", "name": "Ubuntu", "pretty-name": "Ubuntu 24.04.3 LTS",
            "version": "24.04.3 LTS (Noble Numbat)", "version-id": "24.04", "kernel-release": "6.8.0-88-generic",
            "kernel-version": "#89-Ubuntu SMP PREEMPT_DYNAMIC", "machine": "x86_64",
        })
    };
    Ok(json!({ "result": result }))
}

/// `1.12.4` out of `talos-v1.12.4-nocloud-amd64.raw`.
fn version_in(s: &str) -> Option<String> {
    let re = regex::Regex::new(r"(\d+\.\d+\.\d+)").ok()?;
    re.captures(s).map(|c| c[1].to_string())
}

fn interfaces(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let (vm, os) = available(state, call)?;
    let nics: Vec<Nic> = addresses(state, vm.vmid).into_iter().map(|(_, mac, ipv4)| Nic { mac, ipv4 }).collect();
    let configured = state.read(|m| m.volumes_of(vm.vmid).any(|v| v.talos.is_some()));
    let image = Image::of(os.as_deref(), configured);
    Ok(json!({ "result": guest_links::interfaces(image, vm.vmid, vm.boots, &nics) }))
}

/// The guest's NICs in order (index, MAC, IPv4): those without `link_down`.
/// The address: `ipconfigN`'s `ip=` if it is in 127.0.0.0/8, else (first NIC)
/// the static address of an installed Talos configuration, else the DHCP
/// lease of the MAC on the NIC's bridge.
pub fn nic_addresses(m: &Model, vm: &Vm, bridges: &[BridgeConfig]) -> Vec<(u32, String, Option<Ipv4Addr>)> {
    let mut out = Vec::new();
    for i in 0..32u32 {
        let Some(value) = vm.config.get(&format!("net{i}")) else { continue };
        let net = Net::parse(value);
        if net.link_down() {
            continue;
        }
        let mac = net.mac.clone().unwrap_or_default().to_ascii_uppercase();
        let talos = if out.is_empty() { talos_ip(m, vm) } else { None };
        let ip = static_ip(vm, i).or(talos).or_else(|| {
            net.bridge().filter(|b| bridges.iter().any(|x| x.name == *b)).and_then(|_| m.leases.get(&mac).copied())
        });
        out.push((i, mac, ip));
    }
    out
}

/// The static address (in 127.0.0.0/8) of the Talos configuration installed
/// on one of the VM's disks: a configured Talos machine has it on its first NIC.
fn talos_ip(m: &Model, vm: &Vm) -> Option<Ipv4Addr> {
    m.volumes_of(vm.vmid)
        .filter_map(|v| v.talos.as_ref())
        .find_map(|t| crate::talos::machine_config::static_address(&t.config))
}

/// A loopback `ip=` from `ipconfigN` (the only static addresses the lab can serve).
fn static_ip(vm: &Vm, index: u32) -> Option<Ipv4Addr> {
    let cfg = crate::pve::validate::parse_ipconfig(vm.config.get(&format!("ipconfig{index}"))?).ok()?;
    let ip: Ipv4Addr = cfg.get("ip")?.split('/').next()?.parse().ok()?;
    ip.is_loopback().then_some(ip)
}

/// DHCP: a lease for each NIC of `vmid` on a lab bridge that has none yet.
pub fn allocate_leases(m: &mut Model, bridges: &[BridgeConfig], vmid: u32) {
    let Some(vm) = m.vms.get(&vmid) else { return };
    let wanted: Vec<(String, BridgeConfig)> = (0..32)
        .filter_map(|i| vm.config.get(&format!("net{i}")).map(|v| (i, Net::parse(v))))
        .filter(|(i, _)| static_ip(vm, *i).is_none())
        .filter_map(|(_, net)| {
            let bridge = bridges.iter().find(|b| Some(b.name.as_str()) == net.bridge())?.clone();
            Some((net.mac?.to_ascii_uppercase(), bridge))
        })
        .collect();
    for (mac, bridge) in wanted {
        if m.leases.contains_key(&mac) {
            continue;
        }
        let [a, b, c, _] = bridge.subnet.octets();
        let free = (100u8..=254).map(|d| Ipv4Addr::new(a, b, c, d)).find(|ip| !m.leases.values().any(|l| l == ip));
        if let Some(ip) = free {
            m.leases.insert(mac, ip);
        }
    }
}

/// Frees the leases of a VM's NICs (when it is destroyed).
pub fn release_leases(m: &mut Model, vm: &Vm) {
    for value in vm.config.iter().filter(|(k, _)| drive::index_of(k, "net").is_some()).map(|(_, v)| v) {
        if let Some(mac) = Net::parse(value).mac {
            m.leases.remove(&mac.to_ascii_uppercase());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_image_names() {
        assert_eq!(version_in("local:import/talos-v1.12.4-nocloud.raw").as_deref(), Some("1.12.4"));
    }
}
