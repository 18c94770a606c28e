//! Which guest address a program should use, without indexing the agent's list.
//!
//! The QEMU guest agent lists the guest's interfaces in the guest's own order
//! (`lo`, bonds, bridges, CNI links, the NICs), which differs between images and
//! may change after a reboot, so `ipv4Addresses[1][0]` is not an address anyone
//! can rely on. The outputs here are keyed by what the VM's config fixes: the MAC
//! address of a NIC.
//!
//! Usable: on an interface that is not the loopback interface, and not
//! unspecified, multicast, broadcast or link-local (169.254.0.0/16, fe80::/10).
//! Nothing else is special: an address on the NIC is the NIC's address.
//!
//! Must not: call the API.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::proxmox::qemu::GuestInterface;

/// The MAC address of a `netN` config value (`virtio=BC:24:11:4A:2F:01,bridge=vmbr0`),
/// upper case; `None` without one.
pub fn nic_mac(value: &str) -> Option<String> {
    value
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| {
            !matches!(*k, "bridge" | "firewall" | "link_down" | "mtu" | "queues" | "rate" | "tag" | "trunks")
        })
        .map(|(_, m)| m)
        .find(|m| m.len() == 17 && m.split(':').count() == 6 && m.split(':').all(|b| u8::from_str_radix(b, 16).is_ok()))
        .map(str::to_ascii_uppercase)
}

/// The loopback interface: `lo`, or a link whose hardware address is all zeros.
pub fn is_loopback_interface(i: &GuestInterface) -> bool {
    i.name == "lo" || i.mac.as_deref().is_some_and(|m| m.split(':').all(|b| b == "00"))
}

/// A usable IPv4 address on a non-loopback interface.
pub fn usable_v4(ip: &str) -> bool {
    ip.parse::<Ipv4Addr>()
        .is_ok_and(|a| !a.is_link_local() && !a.is_unspecified() && !a.is_multicast() && !a.is_broadcast())
}

/// A usable IPv6 address on a non-loopback interface.
pub fn usable_v6(ip: &str) -> bool {
    ip.parse::<Ipv6Addr>().is_ok_and(|a| {
        !a.is_loopback() && !a.is_unspecified() && !a.is_multicast() && (a.segments()[0] & 0xffc0) != 0xfe80
    })
}

/// The non-loopback interfaces whose hardware address is `mac` (case-insensitive),
/// in agent order (a bond or VLAN link may share its NIC's MAC).
fn with_mac<'a>(interfaces: &'a [GuestInterface], mac: &'a str) -> impl Iterator<Item = &'a GuestInterface> + 'a {
    interfaces
        .iter()
        .filter(move |i| !is_loopback_interface(i) && i.mac.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(mac)))
}

/// The first usable IPv4 (`v6` false) or IPv6 address of the interface with `mac`.
pub fn primary_address(interfaces: &[GuestInterface], mac: &str, v6: bool) -> Option<String> {
    with_mac(interfaces, mac).find_map(|i| {
        if v6 {
            i.ipv6.iter().map(|(ip, _)| ip).find(|ip| usable_v6(ip)).cloned()
        } else {
            i.ipv4.iter().map(|(ip, _)| ip).find(|ip| usable_v4(ip)).cloned()
        }
    })
}

/// Usable addresses per MAC (upper case), for every non-loopback interface that
/// has a hardware address; an interface without a usable address maps to `[]`.
pub fn by_mac(interfaces: &[GuestInterface], v6: bool) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in interfaces.iter().filter(|i| !is_loopback_interface(i)) {
        let Some(mac) = i.mac.as_deref().filter(|m| !m.is_empty()) else { continue };
        let list = out.entry(mac.to_ascii_uppercase()).or_default();
        let usable: Vec<&String> = if v6 {
            i.ipv6.iter().map(|(ip, _)| ip).filter(|ip| usable_v6(ip)).collect()
        } else {
            i.ipv4.iter().map(|(ip, _)| ip).filter(|ip| usable_v4(ip)).collect()
        };
        for ip in usable {
            if !list.contains(ip) {
                list.push(ip.clone());
            }
        }
    }
    out
}

/// Whether the interfaces have a usable address of the wanted families: on the
/// interface with `mac` when the guest reports one, else on any non-loopback one.
pub fn has_usable(interfaces: &[GuestInterface], mac: Option<&str>, want_v4: bool, want_v6: bool) -> bool {
    let candidates: Vec<&GuestInterface> = match mac {
        Some(mac) if with_mac(interfaces, mac).next().is_some() => with_mac(interfaces, mac).collect(),
        _ => interfaces.iter().filter(|i| !is_loopback_interface(i)).collect(),
    };
    let v4 = candidates.iter().flat_map(|i| &i.ipv4).any(|(ip, _)| usable_v4(ip));
    let v6 = candidates.iter().flat_map(|i| &i.ipv6).any(|(ip, _)| usable_v6(ip));
    match (want_v4, want_v6) {
        (false, false) => v4 || v6,
        (true, false) => v4,
        (false, true) => v6,
        (true, true) => v4 && v6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, mac: Option<&str>, v4: &[&str], v6: &[&str]) -> GuestInterface {
        GuestInterface {
            name: name.into(),
            mac: mac.map(str::to_string),
            ipv4: v4.iter().map(|a| (a.to_string(), 24)).collect(),
            ipv6: v6.iter().map(|a| (a.to_string(), 64)).collect(),
        }
    }

    const NET0: &str = "BC:24:11:4A:2F:01";

    /// A Talos node as its agent lists it after a reboot: the NIC is not second.
    fn talos() -> Vec<GuestInterface> {
        vec![
            iface("cilium_host", Some("6e:1f:22:33:44:55"), &["10.244.0.12"], &["fe80::6c1f:22ff:fe33:4455"]),
            iface("bond0", Some("ca:fe:00:00:00:01"), &[], &[]),
            iface("lo", Some("00:00:00:00:00:00"), &["127.0.0.1"], &["::1"]),
            iface("dummy0", Some("2a:11:22:33:44:55"), &[], &["fe80::2811:22ff:fe33:4455"]),
            iface(
                "eth0",
                Some("bc:24:11:4a:2f:01"),
                &["169.254.7.7", "192.168.1.50", "192.168.1.51"],
                &["fe80::be24:11ff:fe4a:2f01", "2001:db8::50"],
            ),
        ]
    }

    #[test]
    fn the_address_is_the_first_usable_one_of_net0s_interface_wherever_it_is_listed() {
        let ifaces = talos();
        assert_eq!(primary_address(&ifaces, NET0, false).as_deref(), Some("192.168.1.50"));
        assert_eq!(primary_address(&ifaces, NET0, true).as_deref(), Some("2001:db8::50"));
        assert_eq!(primary_address(&ifaces, &NET0.to_ascii_lowercase(), false).as_deref(), Some("192.168.1.50"));
        // Another interface's address is never net0's.
        assert_eq!(primary_address(&ifaces, "BC:24:11:00:00:99", false), None);
    }

    #[test]
    fn link_local_loopback_unspecified_and_multicast_are_not_usable() {
        let ifaces = vec![
            iface("lo", Some("00:00:00:00:00:00"), &["127.0.0.1"], &["::1"]),
            iface("eth0", Some(NET0), &["169.254.3.4", "0.0.0.0", "224.0.0.1"], &["fe80::1", "ff02::1", "::"]),
        ];
        assert_eq!(primary_address(&ifaces, NET0, false), None);
        assert_eq!(primary_address(&ifaces, NET0, true), None);
        assert!(!has_usable(&ifaces, Some(NET0), false, false));
        assert!(!has_usable(&ifaces, None, false, false), "lo's 127.0.0.1 is the loopback interface's");
    }

    #[test]
    fn an_address_on_the_nic_is_the_nics_whatever_its_range() {
        // The lab's guests have 127.42.x addresses on their NIC: no special case either way.
        let ifaces = vec![
            iface("lo", Some("00:00:00:00:00:00"), &["127.0.0.1"], &[]),
            iface("ens18", Some(NET0), &["127.42.0.100"], &["fe80::be24:11ff:fe4a:2f01"]),
        ];
        assert_eq!(primary_address(&ifaces, NET0, false).as_deref(), Some("127.42.0.100"));
        assert!(has_usable(&ifaces, Some(NET0), true, false) && !has_usable(&ifaces, Some(NET0), false, true));
    }

    #[test]
    fn the_map_has_each_mac_once_with_usable_addresses_in_order() {
        let mut ifaces = talos();
        // A VLAN link on the NIC shares its MAC.
        ifaces.push(iface("eth0.20", Some("BC:24:11:4A:2F:01"), &["10.20.0.5", "192.168.1.50"], &[]));
        let v4 = by_mac(&ifaces, false);
        assert_eq!(v4[NET0], vec!["192.168.1.50", "192.168.1.51", "10.20.0.5"]);
        assert_eq!(v4["CA:FE:00:00:00:01"], Vec::<String>::new());
        assert!(!v4.contains_key("00:00:00:00:00:00"));
        assert_eq!(v4.len(), 4);
        assert_eq!(by_mac(&ifaces, true)[NET0], vec!["2001:db8::50"]);
    }

    #[test]
    fn waiting_looks_at_net0s_interface_when_the_guest_lists_it() {
        let ifaces = vec![
            iface("docker0", Some("02:42:ac:11:00:01"), &["172.17.0.1"], &[]),
            iface("ens18", Some(NET0), &[], &["fe80::be24:11ff:fe4a:2f01"]),
        ];
        assert!(!has_usable(&ifaces, Some(NET0), true, false), "docker0's address is not net0's");
        assert!(has_usable(&ifaces, Some("BC:24:11:00:00:99"), true, false), "MAC not listed: any interface");
        assert!(has_usable(&ifaces, None, true, false));
    }

    #[test]
    fn macs_come_from_the_model_key_of_a_net_value() {
        assert_eq!(nic_mac("virtio=bc:24:11:4a:2f:01,bridge=vmbr0,firewall=1").as_deref(), Some(NET0));
        assert_eq!(nic_mac("e1000=BC:24:11:4A:2F:01,bridge=vmbr0").as_deref(), Some(NET0));
        assert_eq!(nic_mac("model=virtio,macaddr=BC:24:11:4A:2F:01").as_deref(), Some(NET0));
        assert_eq!(nic_mac("bridge=vmbr0"), None);
    }
}
