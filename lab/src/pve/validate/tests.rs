//! Unit tests of the named formats against the PVE 9.1 schema: valid and
//! invalid values of every format a VM, a storage download and a PCI mapping
//! use, with PVE's texts as `{"errors": {param: msg}}` carries them.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::*;
use crate::pve::apidoc::ApiDoc;

fn apidoc() -> &'static ApiDoc {
    static DOC: OnceLock<ApiDoc> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::load(&ApiDoc::locate().expect("schema")).expect("schema loads"))
}

const CREATE: (&str, &str) = ("POST", "/nodes/{node}/qemu");

/// Valid values of the parameters the tested endpoints require.
const REQUIRED: [(&str, &str); 9] = [
    ("node", "pve"),
    ("vmid", "100"),
    ("storage", "local"),
    ("id", "gpu"),
    ("target", "pve2"),
    ("content", "iso"),
    ("filename", "talos.iso"),
    ("url", "https://factory.talos.dev/image/x/v1.11.0/nocloud-amd64.iso"),
    ("newid", "101"),
];

/// The error of parameter `name` = `value` (with the endpoint's required
/// parameters given valid values), or `None` if it passes.
fn error_of(endpoint: (&str, &str), name: &str, value: &str) -> Option<String> {
    let e = apidoc().endpoint(endpoint.0, endpoint.1).expect("endpoint");
    let mut input: Vec<(String, Raw)> = Vec::new();
    for (k, v) in REQUIRED {
        let schema = &e.parameters()["properties"][k];
        if schema.is_object() && schema.get("optional").is_none() && k != name {
            input.push((k.to_string(), Raw::Text(v.to_string())));
        }
    }
    input.push((name.to_string(), Raw::Text(value.to_string())));
    let mut errors = validate(e.parameters(), input).err()?;
    let mine = errors.remove(name);
    assert!(errors.is_empty(), "{name}={value}: unexpected errors {errors:?}");
    mine
}

fn vm(name: &str, value: &str) -> Option<String> {
    error_of(CREATE, name, value)
}

fn invalid(msg: &str) -> Option<String> {
    Some(format!("invalid format - {msg}"))
}

fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn ipconfig() {
    for ok in ["ip=10.0.0.5/24,gw=10.0.0.1", "ip=dhcp", "ip6=auto", "ip6=fd00::5/64,gw6=fd00::1", "ip=manual,ip6=dhcp"]
    {
        assert_eq!(vm("ipconfig0", ok), None, "{ok}");
    }
    assert_eq!(
        vm("ipconfig0", "ip=10.0.0.5,gw=10.0.0.1"),
        invalid(
            "format error\nipconfig0.ip: invalid format - \
             value does not look like a valid ipv4 network configuration\n\n"
        )
    );
    assert_eq!(
        vm("ipconfig3", "ip=10.0.0.5/33"),
        invalid(
            "format error\nipconfig3.ip: invalid format - \
             value does not look like a valid ipv4 network configuration\n\n"
        )
    );
    assert_eq!(
        vm("ipconfig0", "ip=10.0.0.5/24,gw=10.0.0.256"),
        invalid("format error\nipconfig0.gw: invalid format - value does not look like a valid IPv4 address\n\n")
    );
    assert_eq!(
        vm("ipconfig0", "gw=10.0.0.1"),
        invalid("format error\nipconfig0.ip: missing property - 'ipconfig0.gw' requires this property\n")
    );
    assert_eq!(
        vm("ipconfig0", "ip6=fd00::5/64,gw6=fd00::zz"),
        invalid("format error\nipconfig0.gw6: invalid format - value does not look like a valid IPv6 address\n\n")
    );
    assert_eq!(vm("ipconfig0", "ip=dhcp,dns=1.1.1.1"), invalid("invalid key in comma-separated list property: dns\n"));
    assert_eq!(
        vm("ipconfig0", "10.0.0.5/24"),
        invalid("value without key, but schema does not define a default key\n")
    );
    assert_eq!(
        parse_named("pve-qm-ipconfig", "ip=10.0.0.5/24,gw=10.0.0.1"),
        Ok(keys(&[("gw", "10.0.0.1"), ("ip", "10.0.0.5/24")]))
    );
    // What cloud-init generation ignores (PVE warns; the API call succeeds).
    assert_eq!(vm("ipconfig0", "ip=dhcp,gw=10.0.0.1"), None);
    assert_eq!(parse_ipconfig("ip=dhcp,gw=10.0.0.1"), Err("gateway specified together with DHCP".into()));
    assert_eq!(parse_ipconfig("ip6=auto,gw6=fd00::1"), Err("IPv6 gateway specified together with auto address".into()));
    assert_eq!(parse_ipconfig(""), Ok(keys(&[("ip", "dhcp"), ("ip6", "dhcp")])));
}

#[test]
fn hostpci() {
    for ok in [
        "host=0000:28:00.0,pcie=1,x-vga=1",
        "0000:28:00.0",
        "28:00",
        "28:00.0;28:00.1,pcie=on",
        "mapping=gpu,pcie=1",
        "host=01:00.0,rombar=0,romfile=vbios.bin,vendor-id=0x10de,sub-device-id=0xABCD,driver=vfio,mdev=nvidia-63",
    ] {
        assert_eq!(vm("hostpci0", ok), None, "{ok}");
    }
    let pattern =
        |key: &str| invalid(&format!("format error\nhostpci0.{key}: value does not match the regex pattern\n"));
    assert_eq!(vm("hostpci0", "host=28-00.0"), pattern("host"));
    assert_eq!(vm("hostpci0", "host=0000:28:00.0:1"), pattern("host"));
    // qemu-server's PCI ID pattern is lower-case hex only.
    assert_eq!(vm("hostpci0", "0000:0A:00.0"), pattern("host"));
    assert_eq!(vm("hostpci0", "host=01:00.0,vendor-id=10de"), pattern("vendor-id"));
    assert_eq!(
        vm("hostpci0", "mapping=1gpu"),
        invalid("format error\nhostpci0.mapping: invalid format - invalid configuration ID '1gpu'\n\n")
    );
    assert_eq!(
        vm("hostpci0", "host=01:00.0,pcie=maybe"),
        invalid("format error\nhostpci0.pcie: type check ('boolean') failed - got 'maybe'\n")
    );
    assert_eq!(
        vm("hostpci0", "host=01:00.0,iommu=1"),
        invalid("invalid key in comma-separated list property: iommu\n")
    );
    // Both or neither of host and mapping pass verification; qemu-server refuses them later.
    assert_eq!(vm("hostpci0", "host=01:00.0,mapping=gpu"), None);
    assert_eq!(parse_hostpci("host=01:00.0,mapping=gpu"), Err("Cannot set both 'host' and 'mapping'.\n".into()));
    assert_eq!(parse_hostpci("pcie=1"), Err("Either 'host' or 'mapping' must be set.\n".into()));
    assert_eq!(
        parse_hostpci("0000:28:00.0,pcie=yes,x-vga=1"),
        Ok(keys(&[("host", "0000:28:00.0"), ("pcie", "1"), ("x-vga", "1")]))
    );
}

#[test]
fn cicustom() {
    assert_eq!(vm("cicustom", "user=local:snippets/node1.yaml"), None);
    assert_eq!(
        vm(
            "cicustom",
            "user=local:snippets/u.yaml,network=local:snippets/n.yaml,\
             meta=local:snippets/m.yaml,vendor=nfs-1:snippets/v.yaml"
        ),
        None
    );
    assert_eq!(
        vm("cicustom", "user=snippets/node1.yaml"),
        invalid("format error\ncicustom.user: invalid format - unable to parse volume ID 'snippets/node1.yaml'\n\n")
    );
    assert_eq!(
        vm("cicustom", "local:snippets/node1.yaml"),
        invalid("value without key, but schema does not define a default key\n")
    );
    assert_eq!(
        vm("cicustom", "userdata=local:snippets/x"),
        invalid("invalid key in comma-separated list property: userdata\n")
    );
}

#[test]
fn boot_order_and_bootdisk() {
    for ok in
        ["order=scsi0;ide2;net0", "order=virtio15;sata5;hostpci0;usb13", "cdn", "legacy=dc", "order=scsi0,legacy=c"]
    {
        assert_eq!(vm("boot", ok), None, "{ok}");
    }
    let bad_device =
        |d: &str| invalid(&format!("format error\nboot.order: invalid format - invalid boot device '{d}'\n\n"));
    assert_eq!(vm("boot", "order=scsi0;floppy0"), bad_device("floppy0"));
    assert_eq!(vm("boot", "order=efidisk0"), bad_device("efidisk0"));
    assert_eq!(vm("boot", "order=scsi31;net0"), bad_device("scsi31"));
    assert_eq!(vm("boot", "order=net32"), bad_device("net32"));
    assert_eq!(vm("boot", "cdnx"), invalid("format error\nboot.legacy: value does not match the regex pattern\n"));
    assert_eq!(vm("bootdisk", "scsi0"), None);
    // The format (any drive) is checked before the pattern (no efidisk).
    assert_eq!(vm("bootdisk", "scsi31"), invalid("invalid boot disk 'scsi31'\n"));
    assert_eq!(vm("bootdisk", "efidisk0").as_deref(), Some("value does not match the regex pattern"));
}

#[test]
fn cpu() {
    for ok in [
        "host",
        "cputype=host,flags=+aes;-pcid",
        "x86-64-v2-AES",
        "kvm64,hidden=1,hv-vendor-id=proxmox",
        "host,phys-bits=host,guest-phys-bits=40",
        "EPYC-Rome,flags=+nested-virt;+md-clear",
    ] {
        assert_eq!(vm("cpu", ok), None, "{ok}");
    }
    assert_eq!(
        vm("cpu", "cputype=nosuchcpu"),
        invalid("Built-in cputype 'nosuchcpu' is not defined (missing 'custom-' prefix?)\n")
    );
    assert_eq!(vm("cpu", "custom-talos"), invalid("Custom cputype 'talos' not found\n"));
    assert_eq!(
        vm("cpu", "host,flags=+aes;+avx2"),
        invalid(
            "VM-specific CPU flags must be a subset of: nested-virt, md-clear, pcid, spec-ctrl, ssbd, ibpb, \
             virt-ssbd, amd-ssbd, amd-no-ssb, pdpe1gb, hv-tlbflush, hv-evmcs, aes\n"
        )
    );
    assert_eq!(
        vm("cpu", "host,flags=aes"),
        invalid("format error\ncpu.flags: value does not match the regex pattern\n")
    );
    assert_eq!(
        vm("cpu", "host,reported-model=EPYC"),
        invalid("Property 'reported-model' not allowed in VM-specific CPU config.\n")
    );
    assert!(vm("cpu", "host,reported-model=Zen9").unwrap().contains(
        "cpu.reported-model: value 'Zen9' does not have a value in the enumeration '486, athlon, Broadwell,"
    ));
    assert_eq!(
        vm("cpu", "host,phys-bits=7"),
        invalid(
            "format error\ncpu.phys-bits: invalid format - value must be an integer between 8 and 64 or 'host'\n\n"
        )
    );
    assert_eq!(
        vm("cpu", "host,guest-phys-bits=70"),
        invalid("format error\ncpu.guest-phys-bits: value must have a maximum value of 64\n")
    );
    assert_eq!(vm("cpu", "flags=+aes"), invalid("CPU is missing cputype\n"));
    assert_eq!(parse_named("pve-vm-cpu-conf", "host,hidden=yes"), Ok(keys(&[("cputype", "host"), ("hidden", "1")])));
}

#[test]
fn startup_tags_and_nameservers() {
    for ok in ["order=1,up=10,down=30", "1", "up=5", "order=2,"] {
        assert_eq!(vm("startup", ok), None, "{ok}");
    }
    for bad in ["order=x", "0", "first=1", "order=1,up=", " 1"] {
        assert_eq!(vm("startup", bad), invalid("unable to parse startup options\n"), "{bad}");
    }
    assert_eq!(parse_named("pve-startup-order", "order=1,up=10"), Ok(keys(&[("order", "1"), ("up", "10")])));
    for ok in ["a;b", "talos,k8s prod", "a;b;", "Talos_1.11+x"] {
        assert_eq!(vm("tags", ok), None, "{ok}");
    }
    assert_eq!(vm("tags", "ok bad!"), invalid("invalid characters in tag\n"));
    for ok in ["1.1.1.1 8.8.8.8", "1.1.1.1,2606:4700::1111", "dns.example.com"] {
        assert_eq!(vm("nameserver", ok), None, "{ok}");
    }
    assert_eq!(
        vm("nameserver", "1.1.1.1 not_a_host!"),
        invalid("value does not look like a valid address: not_a_host!\n")
    );
    assert_eq!(split_list(" a,b;;c  d\te "), ["a", "b", "c", "d", "e"]);
    assert_eq!(split_list("a b\0c\0\0"), ["a b", "c"]);
}

const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPOdRGiG4z/eNZSNZWqTos2Syf6Vj9KjpiEXq0dlYobX me@host";
const ECDSA: &str = concat!(
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBF1q/d8OA3OfuQcQVngJUM64XIas4CTw",
    "td6l5/x01Yhl9oYX1wRdlUaYlUiLIUF9lUEbqS+kKSbeuqG+IaTeaiM= x",
);
const RSA: &str = concat!(
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDwtufno83arWgGz2NnU5yYwmgl32EwzLXwEI/3jLXUsl0GpWfdw4WOFz+l1sAXqKN+",
    "+faSD9prGXpRyWaSD5k3WnsOW0mGT18/uA4CmPS6jXtKc+efyC7GrigLtmggx4rFDajxw9WgqTKUTI8iTQE75Nl1v0NO1NGiPy0oWSu1",
    "ZQ== x",
);

/// `encodeURIComponent`-style encoding, as clients send `sshkeys`.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn sshkeys() {
    let encoded = urlencode(&format!("{ED25519}\n{RSA}\n\n{ECDSA}\n"));
    assert!(encoded.starts_with("ssh-ed25519%20AAAAC3NzaC1lZDI1NTE5AAAAIPOdRGiG4z%2FeNZSNZ"), "{encoded}");
    assert_eq!(vm("sshkeys", &encoded), None);
    assert_eq!(vm("sshkeys", "ssh-ed25519%20AAAA%20me%40host"), None, "the key itself is checked by the handler");
    assert_eq!(vm("sshkeys", ED25519), invalid(&format!("invalid urlencoded string: {ED25519}\n")));
    assert_eq!(uri_unescape(&encoded), format!("{ED25519}\n{RSA}\n\n{ECDSA}\n"));
    assert_eq!(validate_ssh_public_keys(&uri_unescape(&encoded)), Ok(()));
    for ok in
        [format!("command=\"ls\" {ED25519}"), format!("host.example {ED25519}"), format!("  {ED25519} more words")]
    {
        assert_eq!(validate_ssh_public_keys(&ok), Ok(()), "{ok}");
    }
    let truncated = &ED25519[..40];
    let mismatched = ED25519.replace("ssh-ed25519", "ssh-rsa");
    let dsa =
        "ssh-dss AAAAB3NzaC1kc3MAAACBAP1/U4EddRIpUt9KnC7s5Of2EbdSPO9EAMMeP4C2USZpRV1AIlH7WT2NWPq/xfW6MPbLm1Vs14E7";
    for bad in ["not a key", truncated, &mismatched, &format!("# {ED25519}"), dsa, "ssh-ed25519 !!!!"] {
        let keys = format!("{ED25519}\n{bad}\n");
        assert_eq!(validate_ssh_public_keys(&keys), Err("SSH public key validation error\n".into()), "{bad}");
    }
}

#[test]
fn storage_content_and_targets() {
    let download = ("POST", "/nodes/{node}/storage/{storage}/download-url");
    assert_eq!(error_of(download, "content", "iso"), None);
    assert_eq!(error_of(download, "content", "isos"), invalid("invalid content type 'isos'\n"));
    // A valid content type that the endpoint does not take fails on its enum.
    assert_eq!(
        error_of(download, "content", "images").as_deref(),
        Some("value 'images' does not have a value in the enumeration 'iso, vztmpl, import'")
    );
    let migrate = ("POST", "/nodes/{node}/qemu/{vmid}/migrate");
    for ok in ["local-lvm", "local:local-lvm,nfs:ceph", "1"] {
        assert_eq!(error_of(migrate, "targetstorage", ok), None, "{ok}");
    }
    assert_eq!(
        error_of(migrate, "targetstorage", "local:9bad"),
        invalid("entry 'local:9bad' contains invalid ID - storage ID '9bad' contains illegal characters\n\n\n")
    );
    assert_eq!(error_of(migrate, "migration_network", "10.0.0.0/24"), None);
    assert_eq!(
        error_of(migrate, "migration_network", "10.0.0.0"),
        invalid("value does not look like a valid CIDR network\n")
    );
    let clone = ("POST", "/nodes/{node}/qemu/{vmid}/clone");
    assert_eq!(error_of(clone, "pool", "prod/talos"), None);
    assert_eq!(error_of(clone, "pool", "a b"), invalid("pool name 'a b' contains invalid characters\n"));
}

#[test]
fn other_vm_formats() {
    for (name, ok) in [
        ("watchdog", "model=i6300esb,action=reset"),
        ("watchdog", "ib700"),
        ("rng0", "source=/dev/urandom,max_bytes=1024,period=1000"),
        ("rng0", "/dev/hwrng"),
        ("smbios1", "uuid=5b0f0c5e-3c39-4a4e-9f5e-0f5a3c2b1a00,base64=1,serial=dGFsb3M="),
        ("amd-sev", "type=std"),
        ("amd-sev", "snp,allow-smt=0"),
        ("intel-tdx", "tdx,attestation=1"),
        ("cdrom", "local:iso/talos.iso,media=cdrom"),
        ("cdrom", "none"),
        ("affinity", "0,5,8-11"),
        ("hotplug", "network,disk,usb"),
        ("hotplug", "0"),
        ("hookscript", "local:snippets/hook.pl"),
    ] {
        assert_eq!(vm(name, ok), None, "{name}={ok}");
    }
    assert!(vm("watchdog", "action=explode")
        .unwrap()
        .starts_with("invalid format - format error\nwatchdog.action: value 'explode' does not have a value"));
    assert!(vm("rng0", "/dev/zero").unwrap().contains("rng0.source: value '/dev/zero' does not have a value"));
    assert_eq!(
        vm("rng0", "max_bytes=1"),
        invalid("format error\nrng0.source: property is missing and it is not optional\n")
    );
    assert_eq!(
        vm("smbios1", "uuid=not-a-uuid"),
        invalid("format error\nsmbios1.uuid: value does not match the regex pattern\n")
    );
    assert_eq!(
        vm("intel-tdx", "tdx"),
        invalid("format error\nintel-tdx.attestation: property is missing and it is not optional\n")
    );
    assert_eq!(
        vm("cdrom", "talos.iso"),
        invalid("format error\ncdrom.file: invalid format - unable to parse volume ID 'talos.iso'\n\n")
    );
    assert!(vm("cdrom", "local:iso/x.iso,media=floppy").unwrap().contains("cdrom.media: value 'floppy'"));
    assert_eq!(vm("affinity", "8-3"), invalid("unable to parse cpuset option\n"));
    assert_eq!(vm("hotplug", "network,gpu"), invalid("invalid hotplug feature 'gpu'\n"));
    let update = ("PUT", "/nodes/{node}/qemu/{vmid}/config");
    assert_eq!(error_of(update, "delete", "ipconfig0,cicustom"), None);
    assert_eq!(error_of(update, "delete", "ipconfig0,-x"), invalid("invalid configuration ID '-x'\n"));
    assert_eq!(error_of(update, "ipconfig1", "ip=10.0.0.5/24,gw=10.0.0.1"), None);
}

#[test]
fn parse_named_takes_named_property_strings_apart() {
    assert_eq!(parse_named("pve-qm-boot", "order=scsi0;ide2;net0"), Ok(keys(&[("order", "scsi0;ide2;net0")])));
    // An alias stores under its target (PVE checks duplicates before resolving aliases).
    assert_eq!(
        parse_named("pve-qm-ide", "volume=local:iso/talos.iso,media=cdrom"),
        Ok(keys(&[("file", "local:iso/talos.iso"), ("media", "cdrom")]))
    );
    assert_eq!(
        parse_named("pve-qm-ide", "local:iso/a.iso,file=local:iso/b.iso"),
        Err("duplicate key in comma-separated list property: file\n".into())
    );
    // Errors name the keys without a parameter prefix.
    assert_eq!(
        parse_named("pve-qm-ipconfig", "gw=10.0.0.1"),
        Err("format error\nip: missing property - 'gw' requires this property\n".into())
    );
    assert_eq!(
        parse_named("pve-node", "pve"),
        Err("parse_property_string only accepts hash based named formats\n".into())
    );
    assert_eq!(parse_named("pve-nope", "x"), Err("unknown format: pve-nope\n".into()));
    assert_eq!(
        check_format("x", "pve-qm-ipconfig-list", "ip=dhcp"),
        Err("'-list' format must have code ref, not hash\n".into())
    );
    assert!(is_known_format("pve-configid-list") && is_known_format("email-opt") == is_known_format("email"));
}

/// Every named format in a parameters schema, by parameter path (`net[n].bridge`, `list[]`).
fn formats_of(parameters: &Value) -> Vec<(String, String)> {
    fn walk(schema: &Value, path: &str, out: &mut Vec<(String, String)>) {
        match &schema["format"] {
            Value::String(f) => out.push((path.to_string(), f.clone())),
            Value::Object(keys) => keys.iter().for_each(|(k, s)| walk(s, &format!("{path}.{k}"), out)),
            _ => {}
        }
        if schema.get("items").is_some() {
            walk(&schema["items"], &format!("{path}[]"), out);
        }
    }
    let mut out = Vec::new();
    for (name, schema) in parameters["properties"].as_object().into_iter().flatten() {
        walk(schema, name, &mut out);
    }
    out
}

const VM_ENDPOINTS: [(&str, &str); 12] = [
    ("POST", "/nodes/{node}/qemu"),
    ("POST", "/nodes/{node}/qemu/{vmid}/config"),
    ("PUT", "/nodes/{node}/qemu/{vmid}/config"),
    ("POST", "/nodes/{node}/qemu/{vmid}/clone"),
    ("PUT", "/nodes/{node}/qemu/{vmid}/resize"),
    ("POST", "/nodes/{node}/qemu/{vmid}/migrate"),
    ("POST", "/nodes/{node}/storage/{storage}/download-url"),
    ("POST", "/nodes/{node}/storage/{storage}/upload"),
    ("GET", "/cluster/nextid"),
    ("GET", "/cluster/mapping/pci"),
    ("POST", "/cluster/mapping/pci"),
    ("PUT", "/cluster/mapping/pci/{id}"),
];

#[test]
fn task_status_and_privilege_formats() {
    let e = |format: &str, s: &str| check_format("p", format, s).err();
    assert_eq!(e("pve-task-status-type-list", "ok,ERROR warning;unknown"), None);
    assert_eq!(e("pve-task-status-type-list", "ok,running").as_deref(), Some("invalid status 'running'\n"));
    assert_eq!(e("pve-priv-list", "VM.Audit,Sys.Audit"), None);
    assert_eq!(e("pve-priv-list", "VM.Audit,VM.Monitor").as_deref(), Some("invalid privilege 'VM.Monitor'\n"));
    // Every privilege the schema's permissions name is one.
    let text = crate::pve::apidoc::EMBEDDED;
    let named =
        regex::Regex::new(r#""((?:VM|Sys|Datastore|SDN|Mapping|Pool|Realm|User|Group|Permissions)\.[A-Za-z.]+)""#)
            .expect("regex");
    for c in named.captures_iter(text) {
        assert!(formats::PRIVILEGES.contains(&&c[1]), "{} is not a privilege", &c[1]);
    }
}

/// The named formats in `endpoints`' parameters the lab does not check, as
/// "METHOD TEMPLATE parameter.key: format"; an endpoint missing from the schema is reported too.
fn unchecked_formats(doc: &ApiDoc, endpoints: &[(&str, &str)]) -> Vec<String> {
    let mut unknown = Vec::new();
    for (method, template) in endpoints {
        let Some(e) = doc.endpoint(method, template) else {
            unknown.push(format!("{method} {template}: not in the schema"));
            continue;
        };
        for (path, format) in formats_of(e.parameters()) {
            if !is_known_format(&format) {
                unknown.push(format!("{method} {template} {path}: {format}"));
            }
        }
    }
    unknown
}

#[test]
fn every_format_of_every_implemented_endpoint_is_checked() {
    // Every handler's endpoint, and the VM endpoints the provider uses even where the lab has no handler.
    let mut endpoints = crate::pve::server::implemented_endpoints();
    assert!(endpoints.len() > 30, "{} implemented endpoints", endpoints.len());
    endpoints.extend(VM_ENDPOINTS.iter().filter(|e| !endpoints.contains(e)).collect::<Vec<_>>());
    let unknown = unchecked_formats(apidoc(), &endpoints);
    assert!(unknown.is_empty(), "named formats the lab does not check: {unknown:#?}");
}

#[test]
fn an_unknown_format_on_an_implemented_endpoint_fails_the_guard() {
    // The guard itself: a schema whose implemented endpoint uses a format the lab lacks.
    let doc = ApiDoc::from_json(&serde_json::json!([{
        "path": "/version",
        "info": {"GET": {"parameters": {"properties": {
            "known": {"type": "string", "format": "pve-node"},
            "nested": {"type": "string", "format": {"k": {"type": "string", "format": "pve-no-such-format"}}},
            "list": {"type": "array", "items": {"type": "string", "format": "pve-other-unknown-list"}}
        }}}}
    }]))
    .unwrap();
    assert_eq!(
        unchecked_formats(&doc, &[("GET", "/version"), ("POST", "/version")]),
        vec![
            "GET /version nested.k: pve-no-such-format".to_string(),
            "GET /version list[]: pve-other-unknown-list".to_string(),
            "POST /version: not in the schema".to_string(),
        ]
    );
}

/// The keys a `typetext` documents (`[gw=<GatewayIPv4>] [,gw6=<...>]`, `[[host=]<...>]`).
fn typetext_keys(typetext: &str) -> Vec<String> {
    let key = regex::Regex::new(r"([a-z][a-z0-9_\-]*)=\]?<").expect("regex");
    let mut keys: Vec<String> = key.captures_iter(typetext).map(|c| c[1].to_string()).collect();
    keys.sort();
    keys
}

#[test]
fn named_property_formats_match_the_schema() {
    // The keys each parameter's typetext documents are the keys the lab defines.
    let mut checked = 0;
    for (method, template) in VM_ENDPOINTS {
        let e = apidoc().endpoint(method, template).expect("endpoint");
        for (name, schema) in e.parameters()["properties"].as_object().into_iter().flatten() {
            let Some(format) = schema["format"].as_str().and_then(property_formats::named) else { continue };
            let documented = typetext_keys(schema["typetext"].as_str().unwrap_or(""));
            if documented.is_empty() {
                continue; // `cdrom`: "<volume>"
            }
            let mut defined: Vec<String> =
                format.iter().filter(|(_, s)| s.get("alias").is_none()).map(|(k, _)| k.clone()).collect();
            defined.sort();
            assert_eq!(defined, documented, "{method} {template} {name}");
            checked += 1;
        }
    }
    assert!(checked >= 30, "checked {checked} parameters");
    // `pve-qm-ide` (cdrom) is `ide[n]` without the allocation key; `pve-qm-usb` is `usb[n]`.
    let create = apidoc().endpoint("POST", "/nodes/{node}/qemu").expect("endpoint");
    let strip = |format: &Value| -> Map<String, Value> {
        let keep = [
            "type",
            "enum",
            "pattern",
            "format",
            "optional",
            "default_key",
            "alias",
            "minimum",
            "maximum",
            "maxLength",
        ];
        format
            .as_object()
            .expect("object format")
            .iter()
            .map(|(k, s)| {
                (
                    k.clone(),
                    Value::Object(
                        s.as_object()
                            .expect("key")
                            .iter()
                            .filter(|(a, _)| keep.contains(&a.as_str()))
                            .map(|(a, b)| (a.clone(), b.clone()))
                            .collect(),
                    ),
                )
            })
            .collect()
    };
    let mut ide = strip(&create.parameters()["properties"]["ide[n]"]["format"]);
    ide.remove("import-from");
    assert_eq!(&ide, property_formats::named("pve-qm-ide").unwrap());
    assert_eq!(
        &strip(&create.parameters()["properties"]["usb[n]"]["format"]),
        property_formats::named("pve-qm-usb").unwrap()
    );
}
