//! The property-string formats PVE registers by name and the apidoc only
//! names (`"format": "pve-qm-ipconfig"` with a `typetext`), defined as
//! qemu-server 9 defines them, with the validators PVE attaches to some.
//!
//! Owns: the definitions, in the apidoc's own shape for object formats so
//! that [`super::parse_property_string`] checks them (`pve-qm-ipconfig`,
//! `pve-qm-hostpci`, `pve-qm-cicustom`, `pve-qm-boot`, `pve-vm-cpu-conf`,
//! `pve-cpu-conf`, `pve-qemu-sev-fmt`, `pve-qemu-tdx-fmt`, `pve-qm-rng`,
//! `pve-qm-smbios1`, `pve-qm-watchdog`, `pve-qm-ide`, `pve-qm-usb`); the
//! CPU validators; and the checks qemu-server makes of two of these strings
//! outside parameter verification ([`parse_hostpci`], [`parse_ipconfig`]),
//! for handlers.
//! Must not: know endpoints or HTTP.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use super::{parse_named, parse_property_string};

/// A named property-string format's definition (key → property schema).
pub fn named(name: &str) -> Option<&'static Map<String, Value>> {
    static FORMATS: OnceLock<BTreeMap<&'static str, Map<String, Value>>> = OnceLock::new();
    FORMATS.get_or_init(definitions).get(name)
}

/// Parses and checks `s` as the named format `name` (which must exist), then
/// runs the format's validator, as PVE's `parse_property_string` does.
pub(super) fn parse(path: &str, name: &str, s: &str) -> Result<BTreeMap<String, String>, String> {
    let format = named(name).ok_or_else(|| format!("unknown format: {name}\n"))?;
    let res = parse_property_string(path, format, s)?;
    match name {
        "pve-cpu-conf" => validate_cpu_conf(&res),
        "pve-vm-cpu-conf" => validate_vm_cpu_conf(&res),
        _ => Ok(()),
    }?;
    Ok(res)
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("format definitions are objects"),
    }
}

/// qemu-server's `$PCIRE`: `[domain:]bus:device[.function]`, lower-case hex.
const PCI_ID: &str = r"(?:[a-f0-9]{4,}:)?[a-f0-9]{2}:[a-f0-9]{2}(?:\.[a-f0-9])?";
/// qemu-server's `HOSTUSBDEVICE|spice` (as the apidoc prints the `qr//`).
const USB_HOST: &str =
    r"(?^:(?:(?:(?^:(0x)?([0-9A-Fa-f]{4}):(0x)?([0-9A-Fa-f]{4})))|(?:(?^:(\d+)\-(\d+(\.\d+)*)))|[Ss][Pp][Ii][Cc][Ee]))";
/// An SMBIOS1 text field (base64).
const BASE64: &str = r"[A-Za-z0-9+\/]+={0,2}";
/// `[+-]FLAG`.
const CPU_FLAG: &str = r"[+-][a-zA-Z0-9\-_\.]+";
/// The `-cpu` flags a VM config may set itself (`$supported_cpu_flags`).
const VM_CPU_FLAGS: [&str; 13] = [
    "nested-virt",
    "md-clear",
    "pcid",
    "spec-ctrl",
    "ssbd",
    "ibpb",
    "virt-ssbd",
    "amd-ssbd",
    "amd-no-ssb",
    "pdpe1gb",
    "hv-tlbflush",
    "hv-evmcs",
    "aes",
];
/// The x86-64-vN models qemu-server adds on top of QEMU's.
const BUILTIN_CPU_MODELS: [&str; 4] = ["x86-64-v2", "x86-64-v2-AES", "x86-64-v3", "x86-64-v4"];
/// QEMU's CPU models as qemu-server lists them (`$cpu_vendor_list`).
const CPU_MODELS: &[&str] = &[
    "486",
    "pentium",
    "pentium2",
    "pentium3",
    "coreduo",
    "core2duo",
    "Conroe",
    "Penryn",
    "Nehalem",
    "Nehalem-IBRS",
    "Westmere",
    "Westmere-IBRS",
    "SandyBridge",
    "SandyBridge-IBRS",
    "IvyBridge",
    "IvyBridge-IBRS",
    "Haswell",
    "Haswell-IBRS",
    "Haswell-noTSX",
    "Haswell-noTSX-IBRS",
    "Broadwell",
    "Broadwell-IBRS",
    "Broadwell-noTSX",
    "Broadwell-noTSX-IBRS",
    "Skylake-Client",
    "Skylake-Client-IBRS",
    "Skylake-Client-noTSX-IBRS",
    "Skylake-Client-v4",
    "Skylake-Server",
    "Skylake-Server-IBRS",
    "Skylake-Server-noTSX-IBRS",
    "Skylake-Server-v4",
    "Skylake-Server-v5",
    "Cascadelake-Server",
    "Cascadelake-Server-v2",
    "Cascadelake-Server-noTSX",
    "Cascadelake-Server-v4",
    "Cascadelake-Server-v5",
    "Cooperlake",
    "Cooperlake-v2",
    "KnightsMill",
    "Icelake-Client",
    "Icelake-Client-noTSX",
    "Icelake-Server",
    "Icelake-Server-noTSX",
    "Icelake-Server-v3",
    "Icelake-Server-v4",
    "Icelake-Server-v5",
    "Icelake-Server-v6",
    "Icelake-Server-v7",
    "SapphireRapids",
    "SapphireRapids-v2",
    "SapphireRapids-v3",
    "SapphireRapids-v4",
    "GraniteRapids",
    "GraniteRapids-v2",
    "GraniteRapids-v3",
    "SierraForest",
    "SierraForest-v2",
    "SierraForest-v3",
    "ClearwaterForest",
    "athlon",
    "phenom",
    "Opteron_G1",
    "Opteron_G2",
    "Opteron_G3",
    "Opteron_G4",
    "Opteron_G5",
    "EPYC",
    "EPYC-IBPB",
    "EPYC-v3",
    "EPYC-v4",
    "EPYC-v5",
    "EPYC-Rome",
    "EPYC-Rome-v2",
    "EPYC-Rome-v3",
    "EPYC-Rome-v4",
    "EPYC-Rome-v5",
    "EPYC-Milan",
    "EPYC-Milan-v2",
    "EPYC-Milan-v3",
    "EPYC-Genoa",
    "EPYC-Genoa-v2",
    "EPYC-Turin",
    "host",
    "kvm32",
    "kvm64",
    "qemu32",
    "qemu64",
    "max",
];

fn definitions() -> BTreeMap<&'static str, Map<String, Value>> {
    let opt_bool = json!({ "type": "boolean", "optional": 1 });
    let volume = json!({ "type": "string", "format": "pve-volume-id", "optional": 1 });
    let hex_id = json!({ "type": "string", "pattern": "^0x[0-9a-fA-F]{4}$", "optional": 1 });
    let base64 = json!({ "type": "string", "pattern": BASE64, "optional": 1 });
    let mut models: Vec<&str> = CPU_MODELS.to_vec();
    models.sort_by_key(|m| m.to_lowercase());
    let cpu = object(json!({
        "cputype": { "type": "string", "default_key": 1, "optional": 1 },
        "reported-model": { "type": "string", "enum": models, "optional": 1 },
        "hidden": opt_bool,
        "hv-vendor-id": { "type": "string", "pattern": "[a-zA-Z0-9]{1,12}", "optional": 1 },
        "flags": { "type": "string", "pattern": format!("{CPU_FLAG}(;{CPU_FLAG})*"), "optional": 1 },
        "guest-phys-bits": { "type": "integer", "minimum": 32, "maximum": 64, "optional": 1 },
        "phys-bits": { "type": "string", "format": "pve-phys-bits", "optional": 1 },
    }));
    let mut ide = object(json!({
        "file": { "type": "string", "format": "pve-volume-id-or-qm-path", "default_key": 1 },
        "volume": { "alias": "file" },
        "media": { "type": "string", "enum": ["cdrom", "disk"], "optional": 1 },
        "cache": {
            "type": "string", "enum": ["none", "writethrough", "writeback", "unsafe", "directsync"], "optional": 1
        },
        "format": { "type": "string", "enum": ["raw", "qcow", "qed", "qcow2", "vmdk", "cloop"], "optional": 1 },
        "aio": { "type": "string", "enum": ["native", "threads", "io_uring"], "optional": 1 },
        "discard": { "type": "string", "enum": ["ignore", "on"], "optional": 1 },
        "rerror": { "type": "string", "enum": ["ignore", "report", "stop"], "optional": 1 },
        "werror": { "type": "string", "enum": ["enospc", "ignore", "report", "stop"], "optional": 1 },
        "size": { "type": "string", "format": "disk-size", "optional": 1 },
        "model": { "type": "string", "format": "urlencoded", "maxLength": 120, "optional": 1 },
        "serial": { "type": "string", "format": "urlencoded", "maxLength": 60, "optional": 1 },
        "wwn": { "type": "string", "pattern": "(?^:^(0x)[0-9a-fA-F]{16})", "optional": 1 },
        "backup": opt_bool, "detect_zeroes": opt_bool, "replicate": opt_bool, "shared": opt_bool,
        "snapshot": opt_bool, "ssd": opt_bool,
    }));
    // The throttling keys of `%drivedesc_base`, with their legacy aliases.
    for dir in ["", "_rd", "_wr"] {
        for (key, ty) in [("bps", "integer"), ("iops", "integer"), ("mbps", "number")] {
            ide.insert(format!("{key}{dir}"), json!({ "type": ty, "optional": 1 }));
            if key != "bps" {
                ide.insert(format!("{key}{dir}_max"), json!({ "type": ty, "optional": 1 }));
            }
            if key != "mbps" {
                let length = format!("{key}{dir}_max_length");
                ide.insert(length.clone(), json!({ "type": "integer", "minimum": 1, "optional": 1 }));
                if !dir.is_empty() {
                    ide.insert(format!("{key}{dir}_length"), json!({ "alias": length }));
                }
            }
        }
    }
    BTreeMap::from([
        (
            "pve-qm-ipconfig",
            object(json!({
                "ip": { "type": "string", "format": "pve-ipv4-config", "optional": 1 },
                "gw": { "type": "string", "format": "ipv4", "optional": 1, "requires": "ip" },
                "ip6": { "type": "string", "format": "pve-ipv6-config", "optional": 1 },
                "gw6": { "type": "string", "format": "ipv6", "optional": 1, "requires": "ip6" },
            })),
        ),
        (
            "pve-qm-hostpci",
            object(json!({
                "host": {
                    "type": "string", "default_key": 1, "optional": 1, "pattern": format!("{PCI_ID}(;{PCI_ID})*")
                },
                "mapping": { "type": "string", "format": "pve-configid", "optional": 1 },
                "rombar": opt_bool, "pcie": opt_bool, "x-vga": opt_bool, "legacy-igd": opt_bool,
                "romfile": { "type": "string", "pattern": "[^,;]+", "optional": 1 },
                "mdev": { "type": "string", "pattern": r"[^/\.:]+", "optional": 1 },
                "driver": { "type": "string", "enum": ["vfio", "keep"], "optional": 1 },
                "vendor-id": hex_id, "device-id": hex_id, "sub-vendor-id": hex_id, "sub-device-id": hex_id,
            })),
        ),
        ("pve-qm-cicustom", object(json!({ "meta": volume, "network": volume, "user": volume, "vendor": volume }))),
        (
            "pve-qm-boot",
            object(json!({
                "legacy": { "type": "string", "default_key": 1, "optional": 1, "pattern": "[acdn]{1,4}" },
                "order": { "type": "string", "format": "pve-qm-bootdev-list", "optional": 1 },
            })),
        ),
        ("pve-vm-cpu-conf", cpu.clone()),
        ("pve-cpu-conf", cpu),
        (
            "pve-qemu-sev-fmt",
            object(json!({
                "type": { "type": "string", "default_key": 1, "enum": ["std", "es", "snp"], "maxLength": 3 },
                "no-debug": opt_bool, "no-key-sharing": opt_bool, "allow-smt": opt_bool, "kernel-hashes": opt_bool,
            })),
        ),
        (
            "pve-qemu-tdx-fmt",
            object(json!({
                "type": { "type": "string", "default_key": 1, "enum": ["tdx"] },
                "attestation": { "type": "boolean" },
                "vsock-cid": { "type": "integer", "minimum": 2, "optional": 1 },
                "vsock-port": { "type": "integer", "minimum": 0, "optional": 1 },
            })),
        ),
        (
            "pve-qm-rng",
            object(json!({
                "source": { "type": "string", "default_key": 1, "enum": ["/dev/urandom", "/dev/random", "/dev/hwrng"] },
                "max_bytes": { "type": "integer", "optional": 1 },
                "period": { "type": "integer", "optional": 1 },
            })),
        ),
        (
            "pve-qm-smbios1",
            object(json!({
                "uuid": {
                    "type": "string", "pattern": "[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}", "optional": 1
                },
                "version": base64, "serial": base64, "manufacturer": base64, "product": base64, "sku": base64,
                "family": base64, "base64": opt_bool,
            })),
        ),
        (
            "pve-qm-watchdog",
            object(json!({
                "model": { "type": "string", "default_key": 1, "enum": ["i6300esb", "ib700"], "optional": 1 },
                "action": {
                    "type": "string", "enum": ["reset", "shutdown", "poweroff", "pause", "debug", "none"], "optional": 1
                },
            })),
        ),
        ("pve-qm-ide", ide),
        (
            "pve-qm-usb",
            object(json!({
                "host": {
                    "type": "string", "default_key": 1, "optional": 1,
                    "pattern": USB_HOST,
                },
                "mapping": { "type": "string", "format": "pve-configid", "optional": 1 },
                "usb3": opt_bool,
            })),
        ),
    ])
}

/// `validate_cpu_conf`: a CPU model definition needs its `cputype`.
fn validate_cpu_conf(cpu: &BTreeMap<String, String>) -> Result<(), String> {
    match cpu.get("cputype") {
        Some(t) if !t.is_empty() && t != "0" => Ok(()),
        _ => Err("CPU is missing cputype\n".to_string()),
    }
}

/// `validate_vm_cpu_conf`: a VM's `cpu` must name a known model (the lab has
/// no custom models, `/etc/pve/virtual-guest/cpu-models.conf`), may only set
/// the VM-specific flags and no `reported-model`.
fn validate_vm_cpu_conf(cpu: &BTreeMap<String, String>) -> Result<(), String> {
    validate_cpu_conf(cpu)?;
    let cputype = &cpu["cputype"];
    if let Some(custom) = cputype.strip_prefix("custom-") {
        return Err(format!("Custom cputype '{custom}' not found\n"));
    }
    if !CPU_MODELS.contains(&cputype.as_str()) && !BUILTIN_CPU_MODELS.contains(&cputype.as_str()) {
        return Err(format!("Built-in cputype '{cputype}' is not defined (missing 'custom-' prefix?)\n"));
    }
    if let Some(flags) = cpu.get("flags").filter(|f| !f.is_empty() && *f != "0") {
        let supported = flags.split(';').all(|flag| {
            let name = flag.strip_prefix('+').or_else(|| flag.strip_prefix('-'));
            name.is_some_and(|n| VM_CPU_FLAGS.contains(&n))
        });
        if !supported {
            return Err(format!("VM-specific CPU flags must be a subset of: {}\n", VM_CPU_FLAGS.join(", ")));
        }
    }
    if cpu.contains_key("reported-model") {
        return Err("Property 'reported-model' not allowed in VM-specific CPU config.\n".to_string());
    }
    Ok(())
}

/// qemu-server's `parse_hostpci` checks (made when the VM starts and, for
/// non-root users, by the permission check of create and update): exactly
/// one of `host` and `mapping`. Returns the parsed keys, or PVE's message.
pub fn parse_hostpci(value: &str) -> Result<BTreeMap<String, String>, String> {
    let res = parse_named("pve-qm-hostpci", value)?;
    match (res.contains_key("host"), res.contains_key("mapping")) {
        (true, true) => Err("Cannot set both 'host' and 'mapping'.\n".to_string()),
        (false, false) => Err("Either 'host' or 'mapping' must be set.\n".to_string()),
        _ => Ok(res),
    }
}

/// qemu-server's `parse_ipconfig`, used when it writes the cloud-init
/// network config: the keys (defaulting to `ip=dhcp,ip6=dhcp` when neither
/// address is set), or the reason PVE ignores the value (it warns, the API
/// call itself succeeds).
pub fn parse_ipconfig(value: &str) -> Result<BTreeMap<String, String>, String> {
    let mut res = parse_named("pve-qm-ipconfig", value)?;
    let (ip, ip6) = (res.get("ip").cloned(), res.get("ip6").cloned());
    if res.contains_key("gw") && ip.is_none() {
        return Err("gateway specified without specifying an IP address".to_string());
    }
    if res.contains_key("gw6") && ip6.is_none() {
        return Err("IPv6 gateway specified without specifying an IPv6 address".to_string());
    }
    if res.contains_key("gw") && ip.as_deref() == Some("dhcp") {
        return Err("gateway specified together with DHCP".to_string());
    }
    if let (true, Some(ip6)) = (res.contains_key("gw6"), &ip6) {
        let address = ip6.split('/').next().unwrap_or_default();
        if address.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("IPv6 gateway specified together with {ip6} address"));
        }
    }
    if ip.is_none() && ip6.is_none() {
        res.insert("ip".to_string(), "dhcp".to_string());
        res.insert("ip6".to_string(), "dhcp".to_string());
    }
    Ok(res)
}
