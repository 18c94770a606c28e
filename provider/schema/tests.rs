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

/// No function input declares a schema default, directly or in an object type it
/// uses: the Go SDK's generated `<Function>Output` for such a function passes its
/// arguments as one output, which Pulumi's Go SDK (v3.259) sends as an empty map when
/// it is secret or has dependencies (docs/adr/0009). Functions apply their defaults
/// in the provider and say them in their descriptions.
#[test]
fn function_inputs_declare_no_schema_defaults() {
    let schema = serde_json::to_value(super::package::package(&crate::resources::registry())).unwrap();
    let types = &schema["types"];
    let mut offenders = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (token, function) in schema["functions"].as_object().unwrap() {
        let mut pending: Vec<(String, &serde_json::Value)> = vec![(token.clone(), &function["inputs"])];
        while let Some((path, object)) = pending.pop() {
            for (name, property) in object["properties"].as_object().into_iter().flatten() {
                if property.get("default").is_some() {
                    offenders.push(format!("{path}.{name}"));
                }
                // References, directly or as array items or map values.
                let mut refs = vec![property];
                while let Some(p) = refs.pop() {
                    if let Some(r) = p["$ref"].as_str().and_then(|r| r.strip_prefix("#/types/")) {
                        if seen.insert(r.to_string()) {
                            pending.push((r.to_string(), &types[r]));
                        }
                    }
                    refs.extend([&p["items"], &p["additionalProperties"]].into_iter().filter(|v| v.is_object()));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "function inputs with schema defaults: {offenders:?}");
}

/// A non-`Option` field and an `Option` one marked `#[pulumi(always)]` are required.
#[derive(Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase")]
struct Outputs {
    /// Always there.
    plain: String,
    /// `None` only while unknown in preview.
    #[pulumi(always)]
    computed: Option<String>,
    /// Sometimes there.
    maybe: Option<String>,
}

#[test]
fn non_option_and_always_fields_are_required() {
    let mut reg = TypeRegistry::default();
    let required: Vec<_> = Outputs::properties(&mut reg).iter().filter(|p| p.required).map(|p| p.name).collect();
    assert_eq!(required, vec!["plain", "computed"]);
}

/// Outputs every created resource has are required in the schema, so the SDKs type them
/// as present (TypeScript `Output<T>`, Go without `.Elem()`, Python without Optional);
/// a required input is a required output too (it is echoed into the state).
#[test]
fn always_present_outputs_are_required() {
    let schema = serde_json::to_value(super::package::package(&crate::resources::registry())).unwrap();
    let required = |token: &str| -> Vec<String> {
        let r = &schema["resources"][token]["required"];
        r.as_array().into_iter().flatten().map(|v| v.as_str().unwrap().to_string()).collect()
    };
    let expect = [
        ("proxmox-talos:machine:Secrets", &["clientConfiguration", "machineSecrets", "talosctlSecretsYaml"][..]),
        ("proxmox-talos:imagefactory:Schematic", &["schematicId"]),
        ("proxmox-talos:machine:ConfigurationApply", &["machineConfiguration"]),
        ("proxmox-talos:cluster:Kubeconfig", &["kubeconfigRaw", "kubernetesClientConfiguration"]),
        ("proxmox-talos:download:File", &["volumeId", "size"]),
        ("proxmox-talos:storage:File", &["volumeId", "fileName", "fileSize"]),
        (
            "proxmox-talos:vm:VirtualMachine",
            &["status", "ipv4Addresses", "ipv6Addresses", "macAddresses", "networkInterfaceNames"],
        ),
    ];
    for (token, outputs) in expect {
        let have = required(token);
        for o in outputs {
            assert!(have.contains(&o.to_string()), "{token}: {o} is not a required output: {have:?}");
        }
    }
    for (token, resource) in schema["resources"].as_object().unwrap() {
        let have = required(token);
        for input in resource["requiredInputs"].as_array().into_iter().flatten() {
            assert!(
                have.contains(&input.as_str().unwrap().to_string()),
                "{token}: required input {input} not required"
            );
        }
    }
    // Every function result is present: its outputs' required list names every property
    // (except an optional input echoed back, getHealth's endpoint, absent when skipped, and
    // getDisks' installDisk, absent when no matching disk is installable).
    for (token, function) in schema["functions"].as_object().unwrap() {
        let outputs = &function["outputs"];
        let required: Vec<_> = outputs["required"].as_array().into_iter().flatten().collect();
        for (name, _) in outputs["properties"].as_object().into_iter().flatten() {
            let optional_input = function["inputs"]["properties"].get(name).is_some()
                && !function["inputs"]["required"].as_array().into_iter().flatten().any(|r| r == name);
            let sometimes = (token == "proxmox-talos:cluster:getHealth" && name == "kubernetesEndpoint")
                || (token == "proxmox-talos:machine:getDisks" && name == "installDisk");
            assert!(
                optional_input || sometimes || required.iter().any(|r| *r == name),
                "{token}: result {name} is not required"
            );
        }
    }
}
