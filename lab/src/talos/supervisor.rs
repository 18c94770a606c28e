//! The loop that keeps the Talos nodes in step with the PVE model, every
//! [`TICK`](super::TICK).
//!
//! Owns, per tick: which VMs have a node (running, booted, Talos image; a VM
//! restart is a new boot), scheduled reboots and TRY-mode reverts, power-off
//! after a Reset, each node's listener (address and certificate; rebuilt when
//! either changes; workers wait for a live control plane with their OS CA and
//! token, as trustd makes them), etcd membership (live control planes join a
//! bootstrapped cluster), and the Kubernetes API on each bootstrapped
//! cluster's VIP (held by its first live control plane).
//! Must not: answer API calls (that is `api`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use super::machine_config::MachineConfig;
use super::node::{phase_of, ListenerKey, Node};
use super::{api, kube_api, pki, server, TalosNodes, APID_PORT, KUBERNETES_API_PORT};
use crate::pve::qemu::agent;

/// The OS CAs live control planes hold (certificate, trustd token, key).
type Trustd = Vec<(String, String, String)>;

pub(super) fn tick(nodes: &TalosNodes) {
    let pve = nodes.pve();
    let now = Instant::now();
    let booted: BTreeMap<u32, (Option<u64>, String)> = pve.read(|m| {
        m.vms
            .values()
            .filter_map(|vm| {
                let origin = agent::guest_os(m, vm)?;
                (origin.to_ascii_lowercase().contains("talos") && agent::booted(pve, m, vm))
                    .then_some((vm.vmid, (vm.started_at_ms, origin)))
            })
            .collect()
    });
    let mut map = nodes.lock();
    map.retain(|vmid, _| booted.contains_key(vmid));

    // Reset without reboot: the machine powers off.
    let off: Vec<u32> = map.values().filter(|n| n.power_off_at.is_some_and(|t| now >= t)).map(|n| n.vmid).collect();
    if !off.is_empty() {
        pve.write(|m| off.iter().for_each(|vmid| crate::pve::qemu::stopped(m, *vmid)));
        map.retain(|vmid, _| !off.contains(vmid));
    }

    for (vmid, (started, origin)) in &booted {
        if map.get(vmid).is_none_or(|n| n.vm_started_at != *started) {
            if let Some(node) = pve.write(|m| m.vms.get(vmid).cloned().map(|vm| Node::boot(m, &vm, origin))) {
                map.insert(*vmid, node);
            }
        }
    }

    for node in map.values_mut() {
        if let Some(reboot) = node.reboot {
            if now >= reboot.up_at {
                pve.write(|m| node.reboot_done(m));
            } else if now >= reboot.down_at {
                node.listener = None;
                node.up_since = None;
            }
        }
        if node.try_until.is_some_and(|t| now >= t) {
            node.try_until = None;
            let install = pve.read(|m| node.install(m));
            node.phase = phase_of(install.as_ref(), &node.image);
        }
    }

    let trustd: Trustd = map
        .values()
        .filter(|n| n.listener.is_some())
        .filter_map(|n| {
            let c = n.config()?;
            Some((c.os_ca.crt_pem.clone(), c.token.clone(), c.os_ca.key_pem.clone()?))
        })
        .collect();
    for node in map.values_mut().filter(|n| n.reboot.is_none_or(|r| now < r.down_at)) {
        ensure_listener(nodes, node, &trustd, now);
    }

    // etcd: live control planes of a bootstrapped cluster join it.
    let control_planes: Vec<(u32, Arc<MachineConfig>)> = map
        .values()
        .filter(|n| n.listener.is_some())
        .filter_map(|n| n.config().filter(|c| c.machine_type.is_control_plane()).map(|c| (n.vmid, c.clone())))
        .collect();
    let with_etcd: BTreeSet<u32> = pve.read(|m| {
        control_planes.iter().filter(|(v, _)| map[v].install(m).is_some_and(|i| i.etcd)).map(|(v, _)| *v).collect()
    });
    let bootstrapped: BTreeSet<&str> =
        control_planes.iter().filter(|(v, _)| with_etcd.contains(v)).map(|(_, c)| c.cluster_id.as_str()).collect();
    let joining: Vec<u32> = control_planes
        .iter()
        .filter(|(v, c)| bootstrapped.contains(c.cluster_id.as_str()) && !with_etcd.contains(v))
        .filter(|(v, _)| !map[v].etcd_stopped)
        .map(|(v, _)| *v)
        .collect();
    if !joining.is_empty() {
        pve.write(|m| {
            for vmid in &joining {
                if let Some(node) = map.get_mut(vmid) {
                    node.update_install(m, |i| {
                        if let Some(i) = i {
                            i.etcd = true;
                        }
                    });
                }
            }
        });
    }

    // The VIP of each bootstrapped cluster, on its first live control plane.
    let mut vips: BTreeMap<Ipv4Addr, (u32, Arc<MachineConfig>)> = BTreeMap::new();
    for (vmid, config) in &control_planes {
        if let (Some(vip), true) = (config.vip, bootstrapped.contains(config.cluster_id.as_str())) {
            vips.entry(vip).or_insert((*vmid, config.clone()));
        }
    }
    drop(map);
    update_vips(nodes, vips);
}

/// Makes `node` listen where and as it should (or not at all).
fn ensure_listener(nodes: &TalosNodes, node: &mut Node, trustd: &Trustd, now: Instant) {
    let config = node.config().cloned();
    let address = match config.as_ref().and_then(|c| c.static_address) {
        Some(a) => Some(a),
        None => agent::guest_address(nodes.pve(), node.vmid),
    };
    let Some(address) = address else {
        fail(node, "the guest has no address on the lab network".into());
        return;
    };
    let key = ListenerKey {
        address,
        apid: config.as_ref().map(|c| (c.os_ca.crt_pem.clone(), node.hostname(), c.cert_sans.clone())),
    };
    if node.listener.is_some() && node.listener_key.as_ref() == Some(&key) {
        return;
    }
    let tls = match &config {
        None => pki::maintenance_tls(address),
        Some(c) => {
            let key_pem = c.os_ca.key_pem.clone().or_else(|| {
                trustd.iter().find(|(crt, token, _)| *crt == c.os_ca.crt_pem && *token == c.token).map(|t| t.2.clone())
            });
            let Some(key_pem) = key_pem else {
                node.listener = None;
                fail(node, "waiting for trustd: no live control plane has this node's OS CA and token".into());
                return;
            };
            pki::Ca::load(&c.os_ca.crt_pem, &key_pem)
                .and_then(|ca| pki::apid_tls(&ca, address, &node.hostname(), &c.cert_sans))
        }
    };
    let tls = match tls {
        Ok(tls) => tls,
        Err(e) => return fail(node, format!("apid certificate: {e}")),
    };
    // Same address, new certificate (hostname, SANs): the listener stays.
    if let (Some(listener), Some(old)) = (&node.listener, &node.listener_key) {
        if old.address == key.address && old.apid.is_some() == key.apid.is_some() {
            listener.set_tls(tls);
            node.listener_key = Some(key);
            return;
        }
    }
    let was_up = node.listener.is_some();
    node.listener = None;
    let addr = SocketAddr::new(address.into(), APID_PORT);
    match server::serve_grpc(addr, tls, api::router(nodes.clone(), node.vmid)) {
        Ok(listener) => {
            node.listener = Some(listener);
            node.listener_key = Some(key);
            node.last_error = None;
            if !was_up {
                node.up_since = Some(now);
            }
        }
        Err(e) => fail(node, format!("cannot listen on {addr}: {e}")),
    }
}

/// Records why a node does not answer; prints it when it changes.
fn fail(node: &mut Node, error: String) {
    if node.last_error.as_ref() != Some(&error) {
        eprintln!("proxmox-talos-lab: Talos node of VM {}: {error}", node.vmid);
        node.last_error = Some(error);
    }
}

/// Starts, moves and stops the Kubernetes API listeners on VIPs.
fn update_vips(nodes: &TalosNodes, desired: BTreeMap<Ipv4Addr, (u32, Arc<MachineConfig>)>) {
    let mut vips = nodes.inner.vips.lock().unwrap_or_else(|e| e.into_inner());
    vips.retain(|vip, (holder, _, _)| desired.get(vip).is_some_and(|(h, _)| h == holder));
    for (vip, (holder, config)) in desired {
        let version = kube_api::kubernetes_version(&config.text);
        if let Some((_, _, reported)) = vips.get(&vip) {
            // The holder's apiserver was upgraded (its configuration names another image).
            *reported.lock().unwrap_or_else(|e| e.into_inner()) = version;
            continue;
        }
        let reported = Arc::new(std::sync::Mutex::new(version));
        match kubernetes_api(vip, &config, reported.clone()) {
            Ok(listener) => {
                vips.insert(vip, (holder, listener, reported));
            }
            Err(e) => {
                let mut map = nodes.lock();
                if let Some(node) = map.get_mut(&holder) {
                    fail(node, format!("Kubernetes API on {vip}: {e}"));
                }
            }
        }
    }
}

fn kubernetes_api(
    vip: Ipv4Addr,
    config: &MachineConfig,
    version: Arc<std::sync::Mutex<String>>,
) -> Result<server::Listener, String> {
    let ca = config
        .kubernetes_ca
        .as_ref()
        .and_then(|ca| Some((ca.crt_pem.as_str(), ca.key_pem.as_deref()?)))
        .ok_or("the configuration has no Kubernetes CA key (.cluster.ca)")?;
    let ca = pki::Ca::load(ca.0, ca.1)?;
    let (host, port) = endpoint_host_port(&config.endpoint);
    let port = if host == vip.to_string() { port } else { KUBERNETES_API_PORT };
    let tls = pki::kube_apiserver_tls(&ca, vip, &host)?;
    let router = kube_api::router(version);
    server::serve_http(SocketAddr::new(vip.into(), port), tls, router).map_err(|e| format!("cannot listen: {e}"))
}

/// `https://host:port` → (host, port); the port defaults to 6443.
fn endpoint_host_port(endpoint: &str) -> (String, u16) {
    let rest = endpoint.split("://").nth(1).unwrap_or(endpoint);
    let authority = rest.split('/').next().unwrap_or_default();
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || p.parse::<u16>().is_ok() => {
            (h.trim_matches(['[', ']']).to_string(), p.parse().unwrap_or(KUBERNETES_API_PORT))
        }
        _ => (authority.trim_matches(['[', ']']).to_string(), KUBERNETES_API_PORT),
    }
}

#[cfg(test)]
mod tests {
    use super::super::node::Phase;
    use super::*;

    #[test]
    fn endpoints_split_into_host_and_port() {
        assert_eq!(endpoint_host_port("https://127.20.0.10:6443"), ("127.20.0.10".into(), 6443));
        assert_eq!(endpoint_host_port("https://cp.lab:7443/"), ("cp.lab".into(), 7443));
        assert_eq!(endpoint_host_port("https://cp.lab"), ("cp.lab".into(), 6443));
    }

    #[test]
    fn maintenance_is_the_phase_without_a_configuration() {
        let image = super::super::node::Image::from_origin("local:import/talos-v1.12.4-nocloud-amd64.raw");
        assert!(matches!(phase_of(None, &image), Phase::Maintenance));
        assert_eq!(image.tag, "v1.12.4");
        assert_eq!(image.platform, "nocloud");
    }
}
