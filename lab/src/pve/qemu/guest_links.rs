//! The links a guest's agent lists in `network-get-interfaces`, per image.
//!
//! Owns: what a booted guest shows besides its NICs, shaped as qemu-guest-agent
//! answers (`name`, `hardware-address`, `ip-addresses[{ip-address-type,
//! ip-address, prefix}]`, `statistics`), and their order.
//! - Talos: `lo`, the kernel's `bond0` and `dummy0` (down: a MAC, no address),
//!   the NICs as `ethN`; once a configuration is installed, the CNI's
//!   `cilium_host`/`cilium_net` (IPv6 link-local only) and `kube-ipvs0` (no address:
//!   its service addresses are not on the lab network).
//! - Ubuntu and other cloud images: `lo`, the NICs as `ens18`, `ens19`, … and a
//!   down `docker0` (a MAC, no address).
//!
//! `lo` comes first; the other links rotate by VMID and boot count, so each boot
//! of a VM lists them in another (deterministic) order and no client can take
//! "the second interface" for the NIC. Up links carry the EUI-64 IPv6 link-local
//! address of their MAC; IPv4 addresses stay in 127.0.0.0/8 (ADR 0006).
//! Must not: allocate addresses (the caller passes each NIC's).

use std::net::Ipv4Addr;

use serde_json::{json, Value};

/// One NIC as the guest sees it: its MAC (upper case) and IPv4 address.
pub struct Nic {
    pub mac: String,
    pub ipv4: Option<Ipv4Addr>,
}

/// What the guest is, as far as its links go.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Image {
    Talos { configured: bool },
    CloudImage,
}

impl Image {
    /// From what the VM boots (`guest_os`): Talos images name themselves.
    pub fn of(origin: Option<&str>, configured: bool) -> Image {
        if origin.is_some_and(|o| o.to_ascii_lowercase().contains("talos")) {
            Image::Talos { configured }
        } else {
            Image::CloudImage
        }
    }
}

/// The agent's `result` array for a guest with `nics` (in `netN` order).
pub fn interfaces(image: Image, vmid: u32, boots: u32, nics: &[Nic]) -> Vec<Value> {
    let mut links: Vec<Value> = Vec::new();
    let virtual_mac = |k: u8| {
        let b = [0x0e, k, 0x5e, (vmid >> 16) as u8, (vmid >> 8) as u8, vmid as u8];
        b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":")
    };
    let nic_name = |i: usize| match image {
        Image::Talos { .. } => format!("eth{i}"),
        Image::CloudImage => format!("ens{}", 18 + i),
    };
    if let Image::Talos { .. } = image {
        links.push(link("bond0", &virtual_mac(1), vec![], 0));
        links.push(link("dummy0", &virtual_mac(2), vec![], 0));
    }
    for (i, nic) in nics.iter().enumerate() {
        let mut addresses = Vec::new();
        if let Some(ip) = nic.ipv4 {
            addresses.push(json!({ "ip-address-type": "ipv4", "ip-address": ip.to_string(), "prefix": 24 }));
        }
        addresses.push(json!({ "ip-address-type": "ipv6", "ip-address": link_local(&nic.mac), "prefix": 64 }));
        links.push(link(&nic_name(i), &nic.mac.to_ascii_lowercase(), addresses, 1_048_576));
    }
    match image {
        Image::Talos { configured: true } => {
            for (k, name) in [(3u8, "cilium_host"), (4, "cilium_net")] {
                let mac = virtual_mac(k);
                let v6 = json!({ "ip-address-type": "ipv6", "ip-address": link_local(&mac), "prefix": 64 });
                links.push(link(name, &mac, vec![v6], 65_536));
            }
            links.push(link("kube-ipvs0", &virtual_mac(5), vec![], 0));
        }
        Image::Talos { configured: false } => {}
        Image::CloudImage => links.push(link("docker0", &format!("02:42:{}", &virtual_mac(6)[6..]), vec![], 0)),
    }
    if !links.is_empty() {
        let turn = (vmid as usize).wrapping_add(boots as usize) % links.len();
        links.rotate_left(turn);
    }
    let lo = link(
        "lo",
        "00:00:00:00:00:00",
        vec![
            json!({ "ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8 }),
            json!({ "ip-address-type": "ipv6", "ip-address": "::1", "prefix": 128 }),
        ],
        4096,
    );
    std::iter::once(lo).chain(links).collect()
}

fn link(name: &str, mac: &str, addresses: Vec<Value>, rx: u64) -> Value {
    json!({
        "name": name, "hardware-address": mac, "ip-addresses": addresses,
        "statistics": {
            "rx-bytes": rx, "rx-dropped": 0, "rx-errs": 0, "rx-packets": rx / 600,
            "tx-bytes": rx / 3, "tx-dropped": 0, "tx-errs": 0, "tx-packets": rx / 1800,
        },
    })
}

/// The EUI-64 link-local address of a MAC (`fe80::be24:11ff:fe12:3456`).
pub fn link_local(mac: &str) -> String {
    let b: Vec<u8> = mac.split(':').filter_map(|x| u8::from_str_radix(x, 16).ok()).collect();
    if b.len() != 6 {
        return "fe80::1".into();
    }
    let g = [
        u16::from_be_bytes([b[0] ^ 0x02, b[1]]),
        u16::from_be_bytes([b[2], 0xff]),
        u16::from_be_bytes([0xfe, b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
    ];
    format!("fe80::{:x}:{:x}:{:x}:{:x}", g[0], g[1], g[2], g[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[Value]) -> Vec<&str> {
        v.iter().map(|i| i["name"].as_str().unwrap()).collect()
    }

    #[test]
    fn link_local_addresses_follow_eui64() {
        assert_eq!(link_local("BC:24:11:12:34:56"), "fe80::be24:11ff:fe12:3456");
    }

    #[test]
    fn the_order_changes_per_boot_and_lo_stays_first() {
        let nics = [Nic { mac: "BC:24:11:12:34:56".into(), ipv4: Some(Ipv4Addr::new(127, 42, 0, 100)) }];
        let talos = Image::Talos { configured: true };
        let orders: Vec<Vec<String>> = (0..6)
            .map(|b| names(&interfaces(talos, 100, b, &nics)).into_iter().map(str::to_string).collect())
            .collect();
        assert!(orders.iter().all(|o| o[0] == "lo" && o.len() == 7), "{orders:?}");
        assert!(orders.windows(2).all(|w| w[0] != w[1]), "{orders:?}");
        assert!(orders.iter().any(|o| o[1] != "eth0"), "{orders:?}");
        assert_eq!(interfaces(talos, 100, 3, &nics), interfaces(talos, 100, 3, &nics));
        let cloud = names(&interfaces(Image::CloudImage, 100, 0, &nics)).join(",");
        assert!(cloud.starts_with("lo,") && cloud.contains("ens18") && cloud.contains("docker0"), "{cloud}");
        let fresh = names(&interfaces(Image::Talos { configured: false }, 7, 0, &nics)).join(",");
        assert!(!fresh.contains("cilium") && fresh.contains("bond0"), "{fresh}");
    }
}
