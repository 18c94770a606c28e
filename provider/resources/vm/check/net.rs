//! The network and cloud-init rules of `check` (network devices, addresses,
//! DNS, the cloud-init user and custom files): a part of `check::Checker`, split
//! out to keep files short.
//!
//! Must not: call the API.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::super::args::{Initialization, IpAddressConfig, NetworkDevice, VirtualMachineArgs};
use super::super::format as f;
use super::Checker;

impl Checker {
    pub(super) fn network(&mut self, a: &VirtualMachineArgs) {
        let nics = a.network_devices.as_deref().unwrap_or_default();
        if nics.len() > f::MAX_NET as usize + 1 {
            self.fail(
                format!("networkDevices[{}]", f::MAX_NET + 1),
                format!("a VM has at most {} network devices (net0 to net{})", f::MAX_NET + 1, f::MAX_NET),
            );
        }
        let mut macs: BTreeMap<String, usize> = BTreeMap::new();
        for (i, n) in nics.iter().enumerate() {
            self.nic(i, n);
            if let Some(mac) = &n.mac_address {
                if let Some(j) = macs.insert(mac.to_ascii_uppercase(), i) {
                    self.fail(
                        format!("networkDevices[{i}].macAddress"),
                        format!("{mac} is also used by networkDevices[{j}]"),
                    );
                }
            }
        }
    }

    fn nic(&mut self, i: usize, n: &NetworkDevice) {
        let at = |k: &str| format!("networkDevices[{i}].{k}");
        if let Some(b) = n.bridge.as_deref().filter(|b| !f::is_bridge(b)) {
            self.fail(at("bridge"), format!("{b:?} is not a bridge name: a Linux bridge or SDN VNet such as vmbr0 (letters, digits, '-', '_', '.'; at most 15 characters)"));
        }
        self.one_of(&at("model"), &n.model, f::NET_MODELS);
        if let Some(tag) = n.vlan_id.filter(|t| !(0..=4094).contains(t)) {
            self.fail(at("vlanId"), format!("{tag} is out of range: a VLAN tag must be 1 to 4094 (0: untagged)"));
        }
        if let Some(mtu) = n.mtu.filter(|m| *m != 0) {
            if mtu != 1 && !(576..=65520).contains(&mtu) {
                self.fail(
                    at("mtu"),
                    format!("{mtu} is out of range: use 1 (the bridge's MTU) or 576 to 65520 (0: unset)"),
                );
            } else if n.model.as_deref().is_some_and(|m| m != "virtio") {
                self.fail(at("mtu"), "the MTU can be set only on virtio devices");
            }
        }
        if let Some(mac) = &n.mac_address {
            if let Err(e) = f::check_mac(mac) {
                self.fail(at("macAddress"), format!("{mac:?} {e}"));
            }
        }
        if n.rate_limit.is_some_and(|r| r < 0.0) {
            self.fail(at("rateLimit"), "must be 0 or more MB/s");
        }
        self.range(&at("queues"), n.queues, 0, 64, "packet queues");
        if let Some(t) = n.trunks.as_ref().filter(|t| !t.is_empty()) {
            let ok = t.split(';').all(|r| {
                let mut ends = r.splitn(2, '-').map(|v| v.parse::<u16>().ok().filter(|v| (1..=4094).contains(v)));
                ends.all(|v| v.is_some()) && !r.is_empty()
            });
            if !ok {
                self.fail(
                    at("trunks"),
                    format!("{t:?} is not a VLAN list: ids 1 to 4094 or ranges joined with ';', e.g. 10;20;30-40"),
                );
            }
        }
    }

    pub(super) fn initialization(&mut self, a: &VirtualMachineArgs, init: &Initialization) {
        self.storage("initialization.datastoreId", &init.datastore_id);
        self.one_of("initialization.type", &init.ci_type, f::CI_TYPES);
        let configs = init.ip_configs.as_deref().unwrap_or_default();
        if let Some(nics) = &a.network_devices {
            if configs.len() > nics.len() {
                self.fail(
                    format!("initialization.ipConfigs[{}]", nics.len()),
                    format!(
                        "there are {} ipConfigs but only {} network devices: ipConfigs[N] configures networkDevices[N]",
                        configs.len(),
                        nics.len()
                    ),
                );
            }
        }
        for (i, ip) in configs.iter().enumerate() {
            let at = format!("initialization.ipConfigs[{i}]");
            if let Some(v4) = &ip.ipv4 {
                self.address(&format!("{at}.ipv4"), v4, false);
            }
            if let Some(v6) = &ip.ipv6 {
                self.address(&format!("{at}.ipv6"), v6, true);
            }
        }
        if let Some(dns) = &init.dns {
            for (i, s) in dns.servers.iter().flatten().enumerate() {
                if s.parse::<IpAddr>().is_err() {
                    self.fail(
                        format!("initialization.dns.servers[{i}]"),
                        format!("{s:?} is not an IP address, e.g. 1.1.1.1 or 2606:4700:4700::1111"),
                    );
                }
            }
            if let Some(d) = dns.domain.as_deref().filter(|d| !d.is_empty() && !f::is_dns_name(d)) {
                self.fail("initialization.dns.domain", format!("{d:?} is not a domain name, e.g. home.arpa"));
            }
        }
        if let Some(user) = &init.user_account {
            if init.user_data_file_id.as_deref().is_some_and(|s| !s.is_empty()) {
                self.fail("initialization.userDataFileId", "conflicts with userAccount: with custom user-data PVE ignores the user account; put the user in the user-data file or remove userAccount");
            }
            if let Some(name) =
                user.username.as_deref().filter(|n| n.is_empty() || n.contains(|c: char| c.is_whitespace() || c == ':'))
            {
                self.fail(
                    "initialization.userAccount.username",
                    format!("{name:?} is not a user name: no spaces or ':'"),
                );
            }
            for (i, key) in user.keys.iter().flatten().enumerate() {
                if key.contains('\n') || !f::is_ssh_public_key(key) {
                    self.fail(
                        format!("initialization.userAccount.keys[{i}]"),
                        "is not one OpenSSH public key: `type base64 [comment]`, e.g. ssh-ed25519 AAAAC3Nza... me@host",
                    );
                }
            }
        }
        if init.network_data_file_id.as_deref().is_some_and(|s| !s.is_empty()) && !configs.is_empty() {
            self.fail("initialization.networkDataFileId", "conflicts with ipConfigs: custom network-config replaces the generated one; configure addresses in the file or remove networkDataFileId");
        }
        for (name, v) in [
            ("userDataFileId", &init.user_data_file_id),
            ("vendorDataFileId", &init.vendor_data_file_id),
            ("metaDataFileId", &init.meta_data_file_id),
            ("networkDataFileId", &init.network_data_file_id),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty() && f::volid_content(v) != Some("snippets")) {
                self.fail(
                    format!("initialization.{name}"),
                    format!(
                        "{v:?} is not a snippet volume id: storage:snippets/file, e.g. local:snippets/user-data.yaml"
                    ),
                );
            }
        }
    }

    fn address(&mut self, at: &str, c: &IpAddressConfig, v6: bool) {
        let family = if v6 { "IPv6" } else { "IPv4" };
        let example = if v6 { "fd00::5/64, dhcp or auto" } else { "10.0.0.5/24 or dhcp" };
        let dynamic = match c.address.as_deref() {
            None => None,
            Some("dhcp") => Some(true),
            Some("auto") if v6 => Some(true),
            Some(addr) => match f::parse_cidr(addr) {
                Some((ip, len)) if ip.is_ipv6() == v6 => {
                    if let Some(gw) = c.gateway.as_deref().and_then(|g| g.parse::<IpAddr>().ok()) {
                        if gw.is_ipv6() == v6 && !f::in_subnet(ip, len, gw) {
                            self.fail(
                                format!("{at}.gateway"),
                                format!("{gw} is outside {addr}; the gateway must be in the address's subnet"),
                            );
                        }
                    }
                    Some(false)
                }
                _ => {
                    self.fail(
                        format!("{at}.address"),
                        format!("{addr:?} is not an {family} address with prefix length; use e.g. {example}"),
                    );
                    Some(false)
                }
            },
        };
        if let Some(gw) = &c.gateway {
            if !gw.parse::<IpAddr>().is_ok_and(|g| g.is_ipv6() == v6) {
                self.fail(format!("{at}.gateway"), format!("{gw:?} is not an {family} address"));
            } else if dynamic == Some(true) {
                self.fail(
                    format!("{at}.gateway"),
                    format!("no gateway with {}: it comes from the network", c.address.as_deref().unwrap_or_default()),
                );
            } else if dynamic.is_none() {
                self.fail(format!("{at}.gateway"), "a gateway needs an address: set address too");
            }
        }
    }
}
