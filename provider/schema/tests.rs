//! Tests of `#[derive(PulumiType)]` and the schema path queries: what a type
//! declares is exactly what the schema and the runtime see.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::paths::{expand, replace_patterns, secret_patterns};
use super::{PulumiObject, PulumiType, TypeRegistry, TypeSpec};
use crate::value::PropertyPath;

/// A disk.
#[derive(Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase")]
#[pulumi(token = "vm:Disk")]
struct Disk {
    /// Size in GiB.
    size_gb: u32,
    /// Encryption passphrase.
    #[pulumi(secret)]
    passphrase: Option<String>,
}

/// Bus kind.
#[derive(Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "lowercase")]
#[pulumi(token = "vm:Bus")]
#[allow(dead_code)]
enum Bus {
    /// VirtIO SCSI.
    Scsi,
    /// Plain VirtIO.
    #[serde(rename = "virtio")]
    VirtIo,
}

/// Common fields.
#[derive(Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase")]
struct Common {
    /// Node name.
    #[pulumi(replace_on_changes, env = "PVE_NODE")]
    node_name: String,
}

/// A machine.
#[derive(Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase")]
struct Machine {
    #[serde(flatten)]
    common: Common,
    /// Disks, in order.
    disks: Vec<Disk>,
    /// Labels.
    labels: Option<BTreeMap<String, String>>,
    /// Bus.
    #[pulumi(default = "\"scsi\"")]
    bus: Option<Bus>,
    /// Kept out of the schema.
    #[serde(skip)]
    #[allow(dead_code)]
    internal: u8,
    /// Renamed on the wire.
    #[serde(rename = "vmid")]
    vm_id: Option<i64>,
}

#[test]
fn derive_reads_serde_names_docs_and_options() {
    let mut reg = TypeRegistry::default();
    let props = Machine::properties(&mut reg);
    let names: Vec<_> = props.iter().map(|p| p.name).collect();
    assert_eq!(names, vec!["nodeName", "disks", "labels", "bus", "vmid"]);
    let node = &props[0];
    assert!(node.required && node.replace_on_changes);
    assert_eq!(node.env, &["PVE_NODE"]);
    assert_eq!(node.description, "Node name.");
    assert_eq!(props[1].type_spec, TypeSpec::array(TypeSpec::reference("#/types/proxmox-talos:vm:Disk")));
    assert!(!props[2].required);
    assert_eq!(props[2].type_spec, TypeSpec::map(TypeSpec::primitive("string")));
    assert_eq!(props[3].to_spec().default, Some(json!("scsi")));
    assert_eq!(Machine::description(), "A machine.");

    let disk = reg.get("proxmox-talos:vm:Disk").unwrap();
    assert_eq!(disk.required, vec!["sizeGb"]);
    assert!(disk.properties["passphrase"].secret);
    let bus = reg.get("proxmox-talos:vm:Bus").unwrap();
    let values: Vec<_> = bus.enum_values.iter().map(|v| (v.name.as_str(), v.value.as_str())).collect();
    assert_eq!(values, vec![("Scsi", "scsi"), ("VirtIo", "virtio")]);
}

#[test]
fn secret_and_replace_paths_come_from_the_declarations() {
    let mut reg = TypeRegistry::default();
    let props = Machine::properties(&mut reg);
    let secrets: Vec<String> = secret_patterns(&props, &reg).iter().map(|p| p.to_string()).collect();
    assert_eq!(secrets, vec!["disks[*].passphrase"]);
    let replace: Vec<String> = replace_patterns(&props, &reg).iter().map(|p| p.to_string()).collect();
    assert_eq!(replace, vec!["nodeName"]);

    let value = json!({"disks": [{"sizeGb": 1}, {"sizeGb": 2, "passphrase": "x"}]});
    let concrete: Vec<String> =
        expand(&PropertyPath::parse("disks[*].passphrase").unwrap(), &value).iter().map(|p| p.to_string()).collect();
    assert_eq!(concrete, vec!["disks[1].passphrase"]);
}
