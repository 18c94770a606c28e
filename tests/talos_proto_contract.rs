//! Wire-contract test for the hand-written Talos API files under `proto/talos`.
//!
//! The reference is the Talos API as compiled into Sidero's machinery module
//! v1.12.4 (`pkg/machinery/api/{common,machine,storage,cluster}`): the Go tool
//! `tools/talos-fixtures dump-api-descriptors` writes those files'
//! descriptors (imports included) as a FileDescriptorSet, and this test
//! compares the crate's own set (`talos::api::FILE_DESCRIPTOR_SET`) with it.
//!
//! Everything we declare must match upstream exactly: messages (and their
//! nested types), every field's name, number, type, type name, label, proto3
//! `optional` and oneof membership, map-entry flags, reserved numbers and
//! names, enum values, and service methods (input, output, streaming). A
//! declared message must carry every upstream field. Declaring a subset of
//! messages, enums, services or methods is allowed; which file a type lives in
//! is a note only. A second test mutates copies of our descriptors and checks
//! each mutation is reported, so the comparison cannot pass vacuously.
//!
//! Needs `go` on PATH (the tool is built once per test binary).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet,
    ServiceDescriptorProto,
};
use proxmox_talos::talos::api::FILE_DESCRIPTOR_SET;

/// Messages the provider and the lab rely on: an empty or truncated set must
/// not pass because there is nothing to compare.
const REQUIRED_MESSAGES: &[&str] = &[
    "common.Metadata",
    "common.Data",
    "machine.ApplyConfigurationRequest",
    "machine.ApplyConfigurationResponse",
    "machine.BootstrapRequest",
    "machine.BootstrapResponse",
    "machine.EtcdLeaveClusterResponse",
    "machine.EtcdMemberListResponse",
    "machine.EtcdRemoveMemberByIDRequest",
    "machine.EtcdRemoveMemberByIDResponse",
    "machine.ReadRequest",
    "machine.RebootRequest",
    "machine.ResetRequest",
    "machine.ServiceListResponse",
    "machine.UpgradeRequest",
    "machine.UpgradeResponse",
    "machine.VersionResponse",
    "storage.DisksResponse",
    "cluster.HealthCheckRequest",
    "cluster.HealthCheckProgress",
];

const REQUIRED_METHODS: &[(&str, &[&str])] = &[
    (
        "machine.MachineService",
        &[
            "ApplyConfiguration",
            "Bootstrap",
            "EtcdLeaveCluster",
            "EtcdMemberList",
            "EtcdRemoveMemberByID",
            "Kubeconfig",
            "Read",
            "Reboot",
            "Reset",
            "ServiceList",
            "Upgrade",
            "Version",
        ],
    ),
    ("storage.StorageService", &["Disks"]),
    ("cluster.ClusterService", &["HealthCheck"]),
];

/// A declaration found in a descriptor set.
#[derive(Clone, Copy)]
enum Decl<'a> {
    Message(&'a DescriptorProto, bool),
    Enum(&'a EnumDescriptorProto, bool),
    Service(&'a ServiceDescriptorProto),
}

impl Decl<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Decl::Message(..) => "message",
            Decl::Enum(..) => "enum",
            Decl::Service(_) => "service",
        }
    }

    fn top_level(&self) -> bool {
        match self {
            Decl::Message(_, top) | Decl::Enum(_, top) => *top,
            Decl::Service(_) => true,
        }
    }
}

/// Full names (`machine.ApplyConfigurationRequest.Mode`) to declarations and their file.
fn index(files: &[FileDescriptorProto]) -> BTreeMap<String, (Decl<'_>, &str)> {
    fn walk<'a>(
        out: &mut BTreeMap<String, (Decl<'a>, &'a str)>,
        prefix: &str,
        msg: &'a DescriptorProto,
        file: &'a str,
        top: bool,
    ) {
        let full = format!("{prefix}.{}", msg.name());
        for e in &msg.enum_type {
            out.insert(format!("{full}.{}", e.name()), (Decl::Enum(e, false), file));
        }
        for nested in &msg.nested_type {
            walk(out, &full, nested, file, false);
        }
        out.insert(full, (Decl::Message(msg, top), file));
    }
    let mut out = BTreeMap::new();
    for f in files {
        for m in &f.message_type {
            walk(&mut out, f.package(), m, f.name(), true);
        }
        for e in &f.enum_type {
            out.insert(format!("{}.{}", f.package(), e.name()), (Decl::Enum(e, true), f.name()));
        }
        for s in &f.service {
            out.insert(format!("{}.{}", f.package(), s.name()), (Decl::Service(s), f.name()));
        }
    }
    out
}

/// What the contract compares of a field.
fn describe(msg: &DescriptorProto, f: &FieldDescriptorProto) -> BTreeMap<&'static str, String> {
    let oneof =
        f.oneof_index.and_then(|i| msg.oneof_decl.get(i as usize)).map(|o| o.name().to_owned()).unwrap_or_default();
    BTreeMap::from([
        ("name", f.name().to_owned()),
        ("type", Type::try_from(f.r#type.unwrap_or_default()).map(|t| t.as_str_name().to_owned()).unwrap_or_default()),
        ("type_name", f.type_name().to_owned()),
        ("label", Label::try_from(f.label.unwrap_or_default()).map(|l| l.as_str_name().to_owned()).unwrap_or_default()),
        ("proto3_optional", f.proto3_optional().to_string()),
        ("oneof", oneof),
    ])
}

fn compare_message(full: &str, ours: &DescriptorProto, theirs: &DescriptorProto, diffs: &mut Vec<String>) {
    let map_entry = |m: &DescriptorProto| m.options.as_ref().is_some_and(|o| o.map_entry());
    if map_entry(ours) != map_entry(theirs) {
        diffs.push(format!("{full}: map_entry is {}, upstream {}", map_entry(ours), map_entry(theirs)));
    }
    let fields = |m: &DescriptorProto| -> BTreeMap<i32, BTreeMap<&'static str, String>> {
        m.field.iter().map(|f| (f.number(), describe(m, f))).collect()
    };
    let (our_fields, their_fields) = (fields(ours), fields(theirs));
    let numbers: BTreeSet<i32> = our_fields.keys().chain(their_fields.keys()).copied().collect();
    for n in numbers {
        match (our_fields.get(&n), their_fields.get(&n)) {
            (Some(o), None) => diffs.push(format!("{full}: field {} = {n} does not exist upstream", o["name"])),
            (None, Some(t)) => diffs.push(format!(
                "{full}: missing upstream field {} = {n} ({} {} {})",
                t["name"], t["label"], t["type"], t["type_name"]
            )),
            (Some(o), Some(t)) => {
                for key in o.keys() {
                    if o[key] != t[key] {
                        diffs.push(format!(
                            "{full}: field {n} ({}): {key} is {:?}, upstream {:?}",
                            t["name"], o[key], t[key]
                        ));
                    }
                }
            }
            (None, None) => {}
        }
    }
    let oneofs = |m: &DescriptorProto| m.oneof_decl.iter().map(|o| o.name().to_owned()).collect::<BTreeSet<_>>();
    if oneofs(ours) != oneofs(theirs) {
        diffs.push(format!("{full}: oneofs are {:?}, upstream {:?}", oneofs(ours), oneofs(theirs)));
    }
    // protoc may split contiguous ranges differently: compare the numbers.
    let reserved =
        |m: &DescriptorProto| -> BTreeSet<i32> { m.reserved_range.iter().flat_map(|r| r.start()..r.end()).collect() };
    if reserved(ours) != reserved(theirs) {
        diffs.push(format!("{full}: reserved numbers are {:?}, upstream {:?}", reserved(ours), reserved(theirs)));
    }
    let names = |m: &DescriptorProto| m.reserved_name.iter().cloned().collect::<BTreeSet<_>>();
    if names(ours) != names(theirs) {
        diffs.push(format!("{full}: reserved names are {:?}, upstream {:?}", names(ours), names(theirs)));
    }
    let nested: BTreeSet<&str> =
        ours.nested_type.iter().map(|m| m.name()).chain(ours.enum_type.iter().map(|e| e.name())).collect();
    for name in theirs.nested_type.iter().map(|m| m.name()).chain(theirs.enum_type.iter().map(|e| e.name())) {
        if !nested.contains(name) {
            diffs.push(format!("{full}: missing upstream nested type {name}"));
        }
    }
}

fn compare_enum(full: &str, ours: &EnumDescriptorProto, theirs: &EnumDescriptorProto, diffs: &mut Vec<String>) {
    let values = |e: &EnumDescriptorProto| -> BTreeMap<String, i32> {
        e.value.iter().map(|v| (v.name().to_owned(), v.number())).collect()
    };
    let (ov, tv) = (values(ours), values(theirs));
    for name in ov.keys().chain(tv.keys()).collect::<BTreeSet<_>>() {
        match (ov.get(name), tv.get(name)) {
            (Some(o), None) => diffs.push(format!("{full}: value {name} = {o} does not exist upstream")),
            (None, Some(t)) => diffs.push(format!("{full}: missing upstream value {name} = {t}")),
            (Some(o), Some(t)) if o != t => diffs.push(format!("{full}: value {name} is {o}, upstream {t}")),
            _ => {}
        }
    }
}

fn compare_service(
    full: &str,
    ours: &ServiceDescriptorProto,
    theirs: &ServiceDescriptorProto,
    diffs: &mut Vec<String>,
) {
    for m in &ours.method {
        let Some(t) = theirs.method.iter().find(|t| t.name() == m.name()) else {
            diffs.push(format!("{full}: method {} does not exist upstream", m.name()));
            continue;
        };
        let pairs = [
            ("input_type", m.input_type().to_owned(), t.input_type().to_owned()),
            ("output_type", m.output_type().to_owned(), t.output_type().to_owned()),
            ("client_streaming", m.client_streaming().to_string(), t.client_streaming().to_string()),
            ("server_streaming", m.server_streaming().to_string(), t.server_streaming().to_string()),
        ];
        for (key, o, t) in pairs {
            if o != t {
                diffs.push(format!("{full}.{}: {key} is {o}, upstream {t}", m.name()));
            }
        }
    }
}

/// Differences (and notes) between our files and upstream's.
fn compare(ours: &[FileDescriptorProto], theirs: &[FileDescriptorProto]) -> (Vec<String>, Vec<String>) {
    let (mut diffs, mut notes) = (Vec::new(), Vec::new());
    let (our_index, their_index) = (index(ours), index(theirs));
    for f in ours {
        if f.syntax() != "proto3" {
            diffs.push(format!("{}: syntax is {:?}, expected \"proto3\"", f.name(), f.syntax()));
        }
    }
    for (full, (decl, file)) in &our_index {
        let Some((reference, their_file)) = their_index.get(full) else {
            diffs.push(format!("{full}: {} does not exist upstream", decl.kind()));
            continue;
        };
        if decl.top_level() && file != their_file {
            notes.push(format!("{full}: declared in {file}, upstream in {their_file}"));
        }
        match (decl, reference) {
            (Decl::Message(o, _), Decl::Message(t, _)) => compare_message(full, o, t, &mut diffs),
            (Decl::Enum(o, _), Decl::Enum(t, _)) => compare_enum(full, o, t, &mut diffs),
            (Decl::Service(o), Decl::Service(t)) => compare_service(full, o, t, &mut diffs),
            _ => diffs.push(format!("{full}: declared as {}, upstream it is a {}", decl.kind(), reference.kind())),
        }
    }
    for full in REQUIRED_MESSAGES {
        if !matches!(our_index.get(*full), Some((Decl::Message(..), _))) {
            diffs.push(format!("{full}: required message is not declared"));
        }
    }
    for (service, methods) in REQUIRED_METHODS {
        let declared: BTreeSet<&str> = match our_index.get(*service) {
            Some((Decl::Service(s), _)) => s.method.iter().map(|m| m.name()).collect(),
            _ => BTreeSet::new(),
        };
        for m in *methods {
            if !declared.contains(m) {
                diffs.push(format!("{service}.{m}: required method is not declared"));
            }
        }
    }
    (diffs, notes)
}

fn ours() -> Vec<FileDescriptorProto> {
    FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("our descriptor set decodes").file
}

/// machinery v1.12.4's descriptors, dumped by the Go tool.
fn upstream() -> Vec<FileDescriptorProto> {
    static UPSTREAM: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let bytes = UPSTREAM.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("talos-api.bin");
        let out = support::run(
            Command::new(support::talos_fixtures_tool()).args(["dump-api-descriptors", "--out"]).arg(&path),
            300,
        );
        assert!(out.status.success(), "dump-api-descriptors failed:\n{}", String::from_utf8_lossy(&out.stderr));
        std::fs::read(&path).unwrap()
    });
    let files = FileDescriptorSet::decode(bytes.as_slice()).expect("upstream descriptor set decodes").file;
    let names: Vec<&str> = files.iter().map(|f| f.name()).collect();
    for expected in ["common/common.proto", "machine/machine.proto", "storage/storage.proto", "cluster/cluster.proto"] {
        assert!(names.contains(&expected), "upstream set lacks {expected}: {names:?}");
    }
    files
}

#[test]
fn talos_descriptors_match_machinery() {
    let ours = ours();
    let (diffs, notes) = compare(&ours, &upstream());
    let declared = index(&ours);
    let count = |kind: &str| declared.values().filter(|(d, _)| d.kind() == kind).count();
    println!(
        "compared {} messages, {} enums, {} services against machinery v1.12.4",
        count("message"),
        count("enum"),
        count("service")
    );
    for n in &notes {
        println!("note: {n}");
    }
    assert!(diffs.is_empty(), "{} difference(s) from upstream:\n  - {}", diffs.len(), diffs.join("\n  - "));
    // Our files carry the upstream names, so the notes are empty.
    assert!(notes.is_empty(), "declared in other files than upstream: {notes:?}");
}

// ---- self-test: each mutation of a pristine copy must produce a new difference ----

fn message_mut<'a>(files: &'a mut [FileDescriptorProto], full: &str) -> &'a mut DescriptorProto {
    fn find<'a>(prefix: &str, msgs: &'a mut [DescriptorProto], full: &str) -> Option<&'a mut DescriptorProto> {
        for m in msgs {
            let name = format!("{prefix}.{}", m.name());
            if name == full {
                return Some(m);
            }
            if full.starts_with(&format!("{name}.")) {
                return find(&name, &mut m.nested_type, full);
            }
        }
        None
    }
    files
        .iter_mut()
        .find_map(|f| {
            let package = f.package().to_owned();
            find(&package, &mut f.message_type, full)
        })
        .unwrap_or_else(|| panic!("{full} is not declared"))
}

fn field_mut<'a>(files: &'a mut [FileDescriptorProto], msg: &str, field: &str) -> &'a mut FieldDescriptorProto {
    message_mut(files, msg).field.iter_mut().find(|f| f.name() == field).unwrap_or_else(|| panic!("{msg}.{field}"))
}

fn service_mut<'a>(files: &'a mut [FileDescriptorProto], full: &str) -> &'a mut ServiceDescriptorProto {
    files
        .iter_mut()
        .flat_map(|f| {
            let package = f.package().to_owned();
            f.service.iter_mut().map(move |s| (format!("{package}.{}", s.name()), s))
        })
        .find_map(|(name, s)| (name == full).then_some(s))
        .unwrap_or_else(|| panic!("{full} is not declared"))
}

type Mutation = (&'static str, &'static str, fn(&mut [FileDescriptorProto]));

const MUTATIONS: &[Mutation] = &[
    ("field number", "machine.ApplyConfigurationRequest", |f| {
        field_mut(f, "machine.ApplyConfigurationRequest", "mode").number = Some(2)
    }),
    ("field name", "machine.VersionInfo", |f| field_mut(f, "machine.VersionInfo", "tag").name = Some("version".into())),
    ("field type", "storage.Disk", |f| field_mut(f, "storage.Disk", "size").r#type = Some(Type::Int64 as i32)),
    ("field label", "machine.EtcdMember", |f| {
        field_mut(f, "machine.EtcdMember", "peer_urls").label = Some(Label::Optional as i32)
    }),
    ("field type name", "common.Data", |f| {
        field_mut(f, "common.Data", "metadata").type_name = Some(".common.Empty".into())
    }),
    ("missing field", "machine.ResetRequest", |f| {
        message_mut(f, "machine.ResetRequest").field.retain(|x| x.name() != "user_disks_to_wipe")
    }),
    ("extra field", "machine.BootstrapRequest", |f| {
        let mut extra = field_mut(f, "machine.BootstrapRequest", "recover_etcd").clone();
        extra.name = Some("force".into());
        extra.number = Some(9);
        message_mut(f, "machine.BootstrapRequest").field.push(extra);
    }),
    ("enum value", "machine.ApplyConfigurationRequest.Mode", |f| {
        let e = message_mut(f, "machine.ApplyConfigurationRequest").enum_type.first_mut().unwrap();
        e.value.iter_mut().find(|v| v.name() == "AUTO").unwrap().number = Some(0);
    }),
    ("method output", "machine.MachineService.Bootstrap", |f| {
        let s = service_mut(f, "machine.MachineService");
        s.method.iter_mut().find(|m| m.name() == "Bootstrap").unwrap().output_type =
            Some(".machine.BootstrapRequest".into());
    }),
    ("method streaming", "machine.MachineService.Kubeconfig", |f| {
        let s = service_mut(f, "machine.MachineService");
        s.method.iter_mut().find(|m| m.name() == "Kubeconfig").unwrap().server_streaming = Some(false);
    }),
    ("unknown method", "machine.MachineService", |f| {
        let s = service_mut(f, "machine.MachineService");
        let mut extra = s.method[0].clone();
        extra.name = Some("Install".into());
        s.method.push(extra);
    }),
];

#[test]
fn contract_check_detects_mutations() {
    let pristine = ours();
    let reference = upstream();
    let (baseline, _) = compare(&pristine, &reference);
    assert!(baseline.is_empty(), "pristine descriptors differ: {baseline:?}");
    let mut missed = Vec::new();
    for (what, target, mutate) in MUTATIONS {
        let mut files = pristine.clone();
        mutate(&mut files);
        let (diffs, _) = compare(&files, &reference);
        match diffs.iter().find(|d| d.starts_with(target)) {
            Some(d) => println!("ok   {what}: reported as {d:?}"),
            None => missed.push(format!("{what}: mutating {target} was not reported ({diffs:?})")),
        }
    }
    assert!(missed.is_empty(), "undetected mutations:\n{}", missed.join("\n"));
}
