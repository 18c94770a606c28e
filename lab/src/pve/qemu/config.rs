//! A VM's configuration: `GET .../config` (with `current` and `snapshot`),
//! `GET .../pending`, `PUT .../config` (synchronous, waits for the config
//! lock), `POST .../config` (task `qmconfig`, `background_delay`), and the
//! cloud-init endpoints `GET|PUT .../cloudinit` and `GET .../cloudinit/dump`.
//!
//! Owns: `update_vm_api` (parameter checks before locking, `digest` and lock
//! checks before and under the lock, `delete`/`revert`/`force`, writing
//! changes to the pending section with disks allocated at once, then
//! applying them: all at once on a stopped VM, by PVE's hotplug rules on a
//! running one), and what the config endpoints show.
//! Must not: decide hotplug rules (see `pending`) or allocate volumes itself
//! (see `drive`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::checks::{self, UPDATE_EXTRA};
use super::drive::{self, Drive};
use super::pending::{self, add_pending_delete, remove_pending_delete};
use super::volume::{self, DiskTarget};
use super::{check_lock, fail, param_error, root_only, sync_holder, typed_value, vm_on_node};
use crate::pve::cluster::node_of;
use crate::pve::model::{Model, Vm};
use crate::pve::server::{ApiError, Call, HandlerFuture, Handlers};
use crate::pve::state::PveState;
use crate::pve::tasks::{self, Worker};

pub fn register(h: &mut Handlers) {
    h.sync("GET", "/nodes/{node}/qemu/{vmid}/config", get_config);
    h.sync("GET", "/nodes/{node}/qemu/{vmid}/pending", get_pending);
    h.r#async("PUT", "/nodes/{node}/qemu/{vmid}/config", put_config);
    h.r#async("POST", "/nodes/{node}/qemu/{vmid}/config", post_config);
    h.sync("GET", "/nodes/{node}/qemu/{vmid}/cloudinit", get_cloudinit);
    h.r#async("PUT", "/nodes/{node}/qemu/{vmid}/cloudinit", put_cloudinit);
    h.sync("GET", "/nodes/{node}/qemu/{vmid}/cloudinit/dump", dump_cloudinit);
}

const MASKED: &str = "**********";

/// The config as PVE's `load_current_config` shows it (pending applied unless `current`).
fn shown_config(vm: &Vm, current: bool) -> BTreeMap<String, String> {
    let mut conf = vm.config.clone();
    if !current {
        for (k, v) in &vm.pending {
            conf.insert(k.clone(), v.clone());
        }
        for (k, _) in pending::pending_deletes(vm) {
            conf.remove(&k);
        }
    }
    if let Some(lock) = &vm.lock {
        conf.insert("lock".into(), lock.clone());
    }
    conf
}

fn get_config(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let current = call.flag("current");
    if call.opt_str("snapshot").is_some() && current {
        let msg = "cannot use 'snapshot' parameter with 'current'";
        return Err(ApiError::params([("snapshot".into(), msg.into()), ("current".into(), msg.into())].into()));
    }
    let (_, vmid) = vm_on_node(state, call)?;
    if let Some(snap) = call.opt_str("snapshot") {
        return Err(fail(format!("snapshot '{snap}' does not exist")));
    }
    let (conf, digest) = state.read(|m| {
        let vm = &m.vms[&vmid];
        (shown_config(vm, current), vm.digest())
    });
    let mut out = Map::new();
    for (k, v) in conf {
        let v = if k == "cipassword" { MASKED.to_string() } else { v };
        out.insert(k.clone(), typed_value(state, &k, &v));
    }
    out.insert("digest".into(), json!(digest));
    Ok(Value::Object(out))
}

fn get_pending(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let (_, vmid) = vm_on_node(state, call)?;
    let vm = state.read(|m| m.vms[&vmid].clone());
    let deletes: BTreeMap<String, bool> = pending::pending_deletes(&vm).into_iter().collect();
    let mut conf = vm.config.clone();
    if let Some(lock) = &vm.lock {
        conf.insert("lock".into(), lock.clone());
    }
    conf.insert("digest".into(), vm.digest());
    let mut keys: Vec<&String> = conf.keys().chain(vm.pending.keys()).chain(deletes.keys()).collect();
    keys.sort();
    keys.dedup();
    let mask = |k: &str, v: &str| if k == "cipassword" { MASKED.to_string() } else { v.to_string() };
    let items = keys
        .into_iter()
        .map(|k| {
            let mut item = json!({ "key": k });
            if let Some(v) = conf.get(k) {
                item["value"] = json!(mask(k, v));
            }
            if let Some(v) = vm.pending.get(k) {
                item["pending"] = json!(mask(k, v));
            }
            if let Some(force) = deletes.get(k) {
                item["delete"] = json!(if *force { 2 } else { 1 });
            }
            item
        })
        .collect();
    Ok(Value::Array(items))
}

/// A checked config update, ready to be applied under the lock.
struct Update {
    node: String,
    vmid: u32,
    root: bool,
    set: BTreeMap<String, String>,
    delete: Vec<String>,
    revert: Vec<String>,
    force: bool,
    digest: Option<String>,
    skiplock: bool,
}

/// `update_vm_api` up to the early `load_and_check_config`.
fn prepare(state: &PveState, call: &Call) -> Result<Update, ApiError> {
    let node = node_of(state, call)?;
    let vmid = call.vmid();
    let root = call.is_root_ticket();
    root_only(call, &["skiplock"])?;
    let mut set = checks::config_params(call, &UPDATE_EXTRA);
    checks::validate_sshkeys(&set)?;
    let delete_raw = checks::split_list(call.params.get("delete"));
    let revert = checks::split_list(call.params.get("revert"));
    if delete_raw.is_empty() && revert.is_empty() && set.is_empty() {
        return Err(fail("no options specified"));
    }
    for opt in &revert {
        if !checks::option_exists(state, opt) {
            return Err(param_error("revert", format!("unknown option '{opt}'")));
        }
        if set.contains_key(opt) {
            return Err(param_error("delete", format!("you can't use '-{opt}' and -revert {opt}' at the same time")));
        }
    }
    let mut delete = Vec::new();
    for opt in delete_raw {
        let opt = if opt == "cdrom" { "ide2".to_string() } else { opt };
        if set.contains_key(&opt) {
            return Err(param_error("delete", format!("you can't use '-{opt}' and -delete {opt}' at the same time")));
        }
        if revert.contains(&opt) {
            return Err(param_error(
                "revert",
                format!("you can't use '-delete {opt}' and -revert {opt}' at the same time"),
            ));
        }
        if !checks::option_exists(state, &opt) {
            return Err(param_error("delete", format!("unknown option '{opt}'")));
        }
        delete.push(opt);
    }
    state.read(|m| checks::check_drive_param(m, &mut set))?;
    let current = state.read(|m| m.vms.get(&vmid).map(|vm| vm.config.clone()).unwrap_or_default());
    state.read(|m| checks::add_macs(m, vmid, &mut set, &current));
    if set.get("vmgenid").is_some_and(|v| v == "1") {
        set.insert("vmgenid".into(), checks::random_uuid());
    }
    checks::check_modify_perm(root, delete.iter())?;
    checks::check_modify_perm(root, set.keys())?;
    state.read(|m| checks::check_storage_access(m, &set, None, root))?;
    let update = Update {
        node,
        vmid,
        root,
        set,
        delete,
        revert,
        force: call.flag("force"),
        digest: call.opt_str("digest").map(str::to_string),
        skiplock: call.flag("skiplock"),
    };
    // Early checks before forking or locking.
    vm_on_node(state, call)?;
    state.read(|m| load_and_check(&m.vms[&vmid], &update)).map_err(fail)?;
    Ok(update)
}

/// `$load_and_check_config`: digest, lock, balloon.
fn load_and_check(vm: &Vm, u: &Update) -> Result<(), String> {
    if u.digest.as_deref().is_some_and(|d| d != vm.digest()) {
        return Err("checksum mismatch (file change by other user?)".into());
    }
    if !u.skiplock {
        check_lock(vm)?;
    }
    if u.set.contains_key("memory") || u.set.contains_key("balloon") {
        let num = |v: Option<&String>| v.and_then(|v| v.trim_start_matches("current=").parse::<u64>().ok());
        let memory = num(u.set.get("memory")).or(num(vm.pending.get("memory"))).or(num(vm.config.get("memory")));
        let balloon = num(u.set.get("balloon")).or(num(vm.pending.get("balloon"))).or(num(vm.config.get("balloon")));
        if let (Some(b), m) = (balloon, memory.unwrap_or(512)) {
            if b > m {
                return Err("balloon value too large (must be smaller than assigned memory)".into());
            }
        }
    }
    Ok(())
}

/// The update under the config lock (`$updatefn`). Returns log lines.
fn apply(state: &PveState, m: &mut Model, u: &Update) -> Result<Vec<String>, ApiError> {
    let vmid = u.vmid;
    let Some(vm) = m.vms.get(&vmid).filter(|vm| vm.node == u.node) else {
        return Err(crate::pve::state::no_such_vm(vmid, Some(&u.node)));
    };
    load_and_check(vm, u).map_err(fail)?;
    let mut vm = vm.clone();
    let mut set = u.set.clone();
    let mut delete = u.delete.clone();
    for opt in &u.revert {
        if let Some(v) = vm.config.get(opt) {
            set.insert(opt.clone(), v.clone());
        } else if vm.pending.contains_key(opt) {
            delete.push(opt.clone());
        }
    }
    let mut lines = Vec::new();
    let mut args: Vec<String> = Vec::new();
    for (k, v) in &set {
        args.push(format!("-{k} {}", if k == "cipassword" { "<hidden>" } else { v }));
    }
    if !u.delete.is_empty() {
        args.push(format!("-delete {}", u.delete.join(",")));
    }
    lines.push(format!("update VM {vmid}: {}", args.join(" ")));
    let result = update_vm(state, m, &mut vm, u, &set, &delete, &mut lines);
    m.vms.insert(vmid, vm);
    result.map(|_| lines)
}

fn update_vm(
    state: &PveState,
    m: &mut Model,
    vm: &mut Vm,
    u: &Update,
    set: &BTreeMap<String, String>,
    delete: &[String],
    lines: &mut Vec<String>,
) -> Result<(), ApiError> {
    let protected = vm.config.get("protection").is_some_and(|p| p == "1");
    let mut order = drive::boot_order(&vm.config);
    for opt in delete {
        let Some(val) = vm.config.get(opt).or(vm.pending.get(opt)).cloned() else {
            lines.push(format!("cannot delete '{opt}' - not set in current configuration!"));
            continue;
        };
        let pending_val = vm.pending.remove(opt);
        if order.contains(opt) && !delete.iter().any(|d| d == "boot") {
            order.retain(|d| d != opt);
            vm.pending.insert("boot".into(), format!("order={}", order.join(";")));
        }
        if opt.starts_with("unused") {
            let file = Drive::parse(&val).file;
            if protected {
                return Err(fail(format!("can't remove unused disk '{file}' - protection mode enabled")));
            }
            if m.volumes.get(&file).is_some_and(|v| v.vmid == vm.vmid) {
                m.volumes.remove(&file);
            }
            vm.config.remove(opt);
        } else if drive::is_drive_key(opt) {
            if protected {
                return Err(fail(format!("can't remove drive '{opt}' - protection mode enabled")));
            }
            if let Some(p) = pending_val {
                pending::register_unused(vm, &mut m.volumes, &p);
            }
            add_pending_delete(vm, opt, u.force);
        } else if drive::index_of(opt, "serial").is_some() && val != "socket" && !u.root {
            return Err(fail(format!("only root can delete '{opt}' config for real devices")));
        } else if opt == "tags" {
            vm.config.remove("tags");
        } else {
            checks::check_device_perm(u.root, opt, &val)?;
            add_pending_delete(vm, opt, u.force);
        }
    }
    let target = DiskTarget { state, node: &u.node, vmid: vm.vmid, default_storage: None, template: vm.is_template() };
    for (opt, value) in set {
        if vm.pending.get(opt) == Some(value) {
            continue;
        }
        if drive::is_drive_key(opt) {
            if let Some(p) = vm.pending.remove(opt) {
                pending::register_unused(vm, &mut m.volumes, &p);
            }
            if Drive::parse(value).is_cloudinit() {
                let other = vm
                    .config
                    .iter()
                    .chain(vm.pending.iter())
                    .find(|(k, v)| *k != opt && drive::is_drive_key(k) && Drive::parse(v).is_cloudinit())
                    .map(|(k, _)| k.clone());
                if let Some(other) = other {
                    return Err(fail(format!("{opt} - cloud-init drive is already attached at '{other}'")));
                }
            }
            let mut created = Vec::new();
            let printed = volume::create_disk(m, &target, opt, value, &mut created, lines).map_err(fail)?;
            let cdrom = Drive::parse(&printed).is_cdrom();
            vm.pending.insert(opt.clone(), printed);
            if !order.is_empty() && cdrom && !order.contains(opt) {
                order.push(opt.clone());
                vm.pending.insert("boot".into(), format!("order={}", order.join(";")));
            }
        } else if drive::index_of(opt, "serial").is_some() {
            let old_socket = vm.config.get(opt).is_none_or(|o| o == "socket");
            if !(u.root || old_socket && value == "socket") {
                return Err(fail(format!("only root can modify '{opt}' config for real devices")));
            }
            vm.pending.insert(opt.clone(), value.clone());
        } else if drive::index_of(opt, "usb").is_some() || drive::index_of(opt, "hostpci").is_some() {
            if let Some(old) = vm.config.get(opt) {
                checks::check_device_perm(u.root, opt, old)?;
            }
            checks::check_device_perm(u.root, opt, value)?;
            vm.pending.insert(opt.clone(), value.clone());
        } else if opt == "tags" {
            vm.pending.insert(opt.clone(), checks::unique_tags(value));
        } else if opt == "cipassword" {
            vm.config.insert(opt.clone(), crypt_password(value));
        } else if opt == "boot" {
            let wanted = drive::boot_order(&BTreeMap::from([("boot".to_string(), value.clone())]));
            for dev in &wanted {
                let exists = vm.config.contains_key(dev) || vm.pending.contains_key(dev) || set.contains_key(dev);
                if !exists || delete.contains(dev) {
                    return Err(fail(format!("invalid bootorder: device '{dev}' does not exist'")));
                }
            }
            vm.pending.insert(
                opt.clone(),
                if wanted.is_empty() { value.clone() } else { format!("order={}", wanted.join(";")) },
            );
            if vm.config.contains_key("bootdisk") {
                add_pending_delete(vm, "bootdisk", false);
            }
        } else {
            vm.pending.insert(opt.clone(), value.clone());
        }
        remove_pending_delete(vm, opt);
    }
    pending::cleanup_pending(vm);
    if vm.pending.is_empty() && vm.pending_delete.is_empty() {
        return Ok(());
    }
    if vm.running {
        let errors = pending::hotplug_pending(vm, &mut m.volumes, state.bridges());
        if !errors.is_empty() {
            return Err(ApiError::params(errors));
        }
    } else {
        pending::apply_pending(vm, &mut m.volumes);
    }
    Ok(())
}

/// `encrypt_pw`: a salted SHA-512-crypt-shaped hash (unless already hashed).
fn crypt_password(pw: &str) -> String {
    if pw.starts_with("$1$") || pw.starts_with("$5$") || pw.starts_with("$6$") || pw.starts_with("$2") {
        return pw.to_string();
    }
    use sha2::Digest as _;
    let salt: String = checks::random_uuid().replace('-', "")[..16].to_string();
    let hash = sha2::Sha512::digest(format!("{salt}{pw}").as_bytes());
    let text: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("$6${salt}${}", &text[..86])
}

/// An `ApiError` as a task's error text (PVE::Exception stringified).
fn task_error(e: ApiError) -> String {
    match e.errors {
        Some(errors) => errors.iter().fold(format!("{}\n", e.message), |acc, (k, v)| format!("{acc}{k}: {v}\n")),
        None => e.message,
    }
}

fn put_config(state: PveState, call: Call) -> HandlerFuture {
    Box::pin(async move {
        let update = prepare(&state, &call)?;
        let holder = sync_holder("update_vm");
        state.lock_vm(update.vmid, &holder).await?;
        let result = state.write(|m| apply(&state, m, &update));
        state.unlock_vm(update.vmid, &holder);
        result.map(|_| Value::Null)
    })
}

fn post_config(state: PveState, call: Call) -> HandlerFuture {
    Box::pin(async move {
        let update = prepare(&state, &call)?;
        let vmid = update.vmid;
        let st = state.clone();
        let worker =
            Worker { node: update.node.clone(), kind: "qmconfig", id: vmid.to_string(), lock_vmid: Some(vmid) };
        let upid = tasks::start(&state, &call, worker, move |log| async move {
            let lines = st.write(|m| apply(&st, m, &update)).map_err(task_error)?;
            for line in lines {
                log.line(line);
            }
            Ok(())
        });
        if let Some(delay) = call.int("background_delay") {
            let waited =
                tokio::time::timeout(Duration::from_secs(delay.max(0) as u64), tasks::wait(&state, &upid)).await;
            match waited {
                Ok(Ok(())) => return Ok(Value::Null),
                Ok(Err(status)) => return Err(fail(format!("failed to update VM {vmid}: {status}"))),
                Err(_) => {}
            }
        }
        Ok(json!(upid))
    })
}

/// Keys whose values the cloud-init image reflects, as `GET .../cloudinit` lists them.
fn cloudinit_keys(conf: &BTreeMap<String, String>) -> Vec<String> {
    let mut keys: Vec<String> = checks::CLOUDINIT_OPTIONS.iter().map(|s| s.to_string()).collect();
    keys.extend(conf.keys().filter(|k| drive::index_of(k, "ipconfig").is_some()).cloned());
    keys
}

fn get_cloudinit(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let (_, vmid) = vm_on_node(state, call)?;
    let vm = state.read(|m| m.vms[&vmid].clone());
    let mut ci = vm.cloudinit.clone();
    let mask = |k: &str, v: &str| if k == "cipassword" { MASKED.to_string() } else { v.to_string() };
    let added: Vec<String> = ci.remove("added").map(|a| a.split(',').map(str::to_string).collect()).unwrap_or_default();
    let mut res = Vec::new();
    for key in &added {
        let mut item = json!({ "key": key });
        if let Some(v) = vm.config.get(key) {
            item["pending"] = json!(mask(key, v));
        }
        res.push(item);
    }
    for key in cloudinit_keys(&vm.config) {
        let Some(value) = vm.config.get(&key) else { continue };
        if added.contains(&key) {
            continue;
        }
        let item = match ci.get(&key) {
            Some(old) => json!({ "key": key, "value": mask(&key, old), "pending": mask(&key, value) }),
            None => json!({ "key": key, "value": mask(&key, value) }),
        };
        res.push(item);
    }
    for key in ci.keys().filter(|k| !vm.config.contains_key(*k)) {
        res.push(json!({ "key": key, "delete": 1 }));
    }
    Ok(Value::Array(res))
}

fn put_cloudinit(state: PveState, call: Call) -> HandlerFuture {
    Box::pin(async move {
        let (_, vmid) = vm_on_node(&state, &call)?;
        let holder = sync_holder("cloudinit_update");
        state.lock_vm(vmid, &holder).await?;
        let result = state.write(|m| {
            let vm = m.vms.get_mut(&vmid).ok_or_else(|| fail("VM vanished"))?;
            check_lock(vm).map_err(fail)?;
            let has_drive = vm.config.iter().any(|(k, v)| drive::is_drive_key(k) && Drive::parse(v).is_cloudinit());
            if has_drive {
                vm.cloudinit.clear();
            }
            Ok(Value::Null)
        });
        state.unlock_vm(vmid, &holder);
        result
    })
}

fn dump_cloudinit(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let (_, vmid) = vm_on_node(state, call)?;
    let vm = state.read(|m| m.vms[&vmid].clone());
    let conf = &vm.config;
    let name = conf.get("name").cloned().unwrap_or_else(|| format!("VM{vmid}"));
    let text = match call.str("type") {
        "user" => {
            let mut s = format!("#cloud-config\nhostname: {name}\nmanage_etc_hosts: true\nfqdn: {name}\n");
            if let Some(user) = conf.get("ciuser") {
                s.push_str(&format!("user: {user}\n"));
            }
            if conf.contains_key("cipassword") {
                s.push_str(&format!("password: {MASKED}\n"));
            }
            if let Some(keys) = conf.get("sshkeys") {
                s.push_str("ssh_authorized_keys:\n");
                for key in crate::pve::apidoc::percent_decode(keys).lines().filter(|l| !l.trim().is_empty()) {
                    s.push_str(&format!("  - {key}\n"));
                }
            }
            s.push_str("chpasswd:\n  expire: False\nusers:\n  - default\n");
            let upgrade = conf.get("ciupgrade").is_none_or(|u| u == "1");
            s.push_str(&format!("package_upgrade: {upgrade}\n"));
            s
        }
        "network" => network_config(conf),
        _ => {
            use sha2::Digest as _;
            let id: String = sha2::Sha256::digest(format!("{vmid}{conf:?}").as_bytes())[..20]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("instance-id: {id}\n")
        }
    };
    Ok(json!(text))
}

/// The NoCloud v1 network config PVE generates from `netN`/`ipconfigN`.
fn network_config(conf: &BTreeMap<String, String>) -> String {
    let mut s = String::from("version: 1\nconfig:\n");
    for i in 0..32 {
        let Some(net) = conf.get(&format!("net{i}")).map(|n| drive::Net::parse(n)) else { continue };
        let mac = net.mac.unwrap_or_default().to_ascii_lowercase();
        s.push_str(&format!("    - type: physical\n      name: eth{i}\n      mac_address: '{mac}'\n"));
        let ip = conf
            .get(&format!("ipconfig{i}"))
            .and_then(|c| crate::pve::validate::parse_ipconfig(c).ok())
            .unwrap_or_default();
        if ip.is_empty() {
            continue;
        }
        s.push_str("      subnets:\n");
        match ip.get("ip").map(String::as_str) {
            Some("dhcp") => s.push_str("      - type: dhcp4\n"),
            Some(cidr) => {
                let (addr, prefix) = cidr.split_once('/').unwrap_or((cidr, "24"));
                let bits: u32 = prefix.parse().unwrap_or(24);
                let mask = std::net::Ipv4Addr::from(u32::MAX.checked_shl(32 - bits).unwrap_or(0));
                s.push_str(&format!("      - type: static\n        address: '{addr}'\n        netmask: '{mask}'\n"));
                if let Some(gw) = ip.get("gw") {
                    s.push_str(&format!("        gateway: '{gw}'\n"));
                }
            }
            None => {}
        }
        if let Some(ip6) = ip.get("ip6") {
            s.push_str(&format!("      - type: {}\n", if ip6 == "dhcp" { "dhcp6" } else { "static6" }));
        }
    }
    let dns: Vec<&str> = conf.get("nameserver").map(|n| n.split_whitespace().collect()).unwrap_or_default();
    let search: Vec<&str> = conf.get("searchdomain").map(|n| n.split_whitespace().collect()).unwrap_or_default();
    if !dns.is_empty() || !search.is_empty() {
        s.push_str("    - type: nameserver\n      address:\n");
        for d in dns {
            s.push_str(&format!("      - '{d}'\n"));
        }
        s.push_str("      search:\n");
        for d in search {
            s.push_str(&format!("      - '{d}'\n"));
        }
    }
    s
}
