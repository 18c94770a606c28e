//! Disk volumes behind drives: VM disks, cloud-init drives and EFI vars on
//! block storages, and the files of `dir` storages they come from.
//!
//! Owns: what a volume id means on its storage (`parse_volname`: images,
//! ISOs, import images, snippets), volume names per storage type
//! (`local-zfs:vm-100-disk-0`, `local:100/vm-100-disk-0.qcow2`, linked clones
//! `local-zfs:base-9000-disk-0/vm-101-disk-0`; on `lvmthin` a linked clone is a
//! plain `local-lvm:vm-101-disk-0`, as PVE's LvmThinPlugin does not record the
//! base in the name), allocating volumes, turning
//! them into base volumes, linked clones, image sizes from qcow2/VMDK
//! headers, and [`create_disk`], qemu-server's `create_disks` for one drive
//! (`storage:N`, `storage:0,import-from=...`, `storage:cloudinit`,
//! `efidisk0`, `tpmstate0`, existing volumes).
//! Must not: know HTTP, locks or the VM lifecycle (see the sibling modules).

use std::path::Path;
use std::sync::OnceLock;

use regex::Regex;

use super::drive::{new_disk, re, split_volid, Drive, CLOUDINIT_SIZE, EFI_VARS_2M, EFI_VARS_4M, TPMSTATE_SIZE};
use crate::pve::model::{Model, Volume};
use crate::pve::state::{storage_path, PveState};

/// What a volume name means on its storage (PVE's `parse_volname`).
#[derive(Debug, Clone, PartialEq)]
pub struct VolInfo {
    /// `images`, `iso`, `import`, `snippets`, `vztmpl`, `backup`.
    pub vtype: String,
    /// The owning VM of an `images` volume.
    pub owner: Option<u32>,
    pub format: String,
    /// The file under the `dir` storage, for file content (`template/iso/x.iso`).
    pub file: Option<String>,
}

pub fn parse_volname(model: &Model, volid: &str) -> Result<VolInfo, String> {
    static DIR_IMAGE: OnceLock<Regex> = OnceLock::new();
    static BLOCK_IMAGE: OnceLock<Regex> = OnceLock::new();
    let (storage, name) = split_volid(volid).ok_or_else(|| format!("unable to parse volume ID '{volid}'"))?;
    let scfg = model.storages.get(storage).ok_or_else(|| format!("storage '{storage}' does not exist"))?;
    let info = |vtype: &str, owner: Option<u32>, format: &str, file: Option<String>| VolInfo {
        vtype: vtype.into(),
        owner,
        format: format.into(),
        file,
    };
    if scfg.kind == "dir" {
        let image = re(
            &DIR_IMAGE,
            r"^\d+/(?:base-\d+-disk-\d+\.(?:raw|qcow2|vmdk)/\d+/)?(?:base|vm)-(\d+)-[^/]+\.(raw|qcow2|vmdk)$",
        );
        if let Some(c) = image.captures(name) {
            return Ok(info("images", c[1].parse().ok(), &c[2], None));
        }
        for (content, sub) in crate::pve::admin::DIR_CONTENT {
            let Some(file) = name.strip_prefix(content).and_then(|r| r.strip_prefix('/')) else { continue };
            if file.is_empty() || file.contains('/') {
                break;
            }
            let lower = file.to_ascii_lowercase();
            let format = match content {
                "iso" if lower.ends_with(".iso") || lower.ends_with(".img") => "raw",
                "import" if lower.ends_with(".raw") || lower.ends_with(".img") => "raw",
                "import" if lower.ends_with(".qcow2") => "qcow2",
                "import" if lower.ends_with(".vmdk") => "vmdk",
                "iso" | "import" => break,
                _ => "raw",
            };
            return Ok(info(content, None, format, Some(format!("{sub}/{file}"))));
        }
        return Err(format!("unable to parse directory volume name '{name}'"));
    }
    if scfg.kind == "lvmthin" {
        lvm_name(name)?;
        return match name.strip_prefix("vm-").or_else(|| name.strip_prefix("base-")) {
            Some(rest) if rest.split_once('-').is_some_and(|(id, _)| id.parse::<u32>().is_ok()) => {
                Ok(info("images", rest.split('-').next().and_then(|id| id.parse().ok()), "raw", None))
            }
            _ => Err(format!("unable to parse lvm volume name '{name}'")),
        };
    }
    let image = re(&BLOCK_IMAGE, r"^(?:base-\d+-[^/\s]+/)?(?:base|vm)-(\d+)-[^/\s]+$");
    match image.captures(name) {
        Some(c) => Ok(info("images", c[1].parse().ok(), "raw", None)),
        None if scfg.kind == "zfspool" => Err(format!("unable to parse zfs volume name '{name}'")),
        None => Err(format!("unable to parse rbd volume name '{name}'")),
    }
}

/// PVE's `parse_lvm_name`: a logical volume name of letters, digits, `-_.`.
pub fn lvm_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    let ok = name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(ok_char);
    if ok {
        Ok(())
    } else {
        Err(format!("lvm name '{name}' contains illegal characters"))
    }
}

/// The last path component of a volume name without extension: `vm-101-disk-0`.
fn stem(volid: &str) -> &str {
    let name = split_volid(volid).map(|(_, n)| n).unwrap_or(volid);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.split('.').next().unwrap_or(last)
}

/// Whether a volume is a template's base volume.
pub fn is_base(volid: &str) -> bool {
    stem(volid).starts_with("base-")
}

/// Linked clones made from a base volume.
pub fn linked_clones<'a>(model: &'a Model, volid: &str) -> impl Iterator<Item = &'a Volume> {
    let prefix = format!("{volid}/");
    model.volumes.values().filter(move |v| v.volid.starts_with(&prefix))
}

/// The first free `vm-VMID-disk-N` on a storage (also skipping `base-VMID-disk-N`).
fn next_disk_name(model: &Model, storage: &str, vmid: u32) -> String {
    let used: Vec<&str> =
        model.volumes.values().filter(|v| v.storage == storage && v.vmid == vmid).map(|v| stem(&v.volid)).collect();
    (0..)
        .map(|n| (format!("vm-{vmid}-disk-{n}"), format!("base-{vmid}-disk-{n}")))
        .find(|(vm, base)| !used.contains(&vm.as_str()) && !used.contains(&base.as_str()))
        .map(|(vm, _)| vm)
        .unwrap_or_default()
}

/// Allocates a volume (PVE's `vdisk_alloc`): `name` without extension
/// (`vm-100-cloudinit`), or the next free disk name. Returns the volid.
#[allow(clippy::too_many_arguments)]
pub fn alloc(
    model: &mut Model,
    storage: &str,
    node: &str,
    vmid: u32,
    name: Option<&str>,
    format: Option<&str>,
    size: u64,
    origin: Option<String>,
) -> Result<String, String> {
    let scfg = model.storages.get(storage).cloned().ok_or_else(|| format!("storage '{storage}' does not exist"))?;
    let format = match (scfg.kind.as_str(), format) {
        ("dir", f) => f.unwrap_or("qcow2").to_string(),
        (_, None | Some("raw")) => "raw".to_string(),
        (_, Some(f)) => return Err(format!("unsupported format '{f}'")),
    };
    let stem = name.map(str::to_string).unwrap_or_else(|| next_disk_name(model, storage, vmid));
    let volid =
        if scfg.kind == "dir" { format!("{storage}:{vmid}/{stem}.{format}") } else { format!("{storage}:{stem}") };
    if model.volumes.contains_key(&volid) {
        return Err(match scfg.kind.as_str() {
            "zfspool" => format!("zfs error: cannot create 'rpool/data/{stem}': dataset already exists"),
            "rbd" => format!("rbd error: rbd: create error: (17) File exists: volume '{stem}' already exists"),
            "lvmthin" => lvm_exists(&stem),
            _ => format!("disk image '{}/images/{vmid}/{stem}.{format}' already exists", storage_path(storage)),
        });
    }
    // RBD images are sized in whole MiB.
    let size = if scfg.kind == "rbd" { size.div_ceil(1 << 20) << 20 } else { size };
    model.volumes.insert(
        volid.clone(),
        Volume {
            volid: volid.clone(),
            storage: storage.to_string(),
            node: (!scfg.shared).then(|| node.to_string()),
            vmid,
            size,
            format,
            origin,
            talos: None,
        },
    );
    Ok(volid)
}

/// `lvcreate`'s refusal of a name the volume group already has.
pub fn lvm_exists(name: &str) -> String {
    format!("lvcreate 'pve/{name}' error:   Logical Volume \"{name}\" already exists in volume group \"pve\"")
}

/// Turns a volume into a base volume (`vdisk_create_base`): `vm-` → `base-`.
pub fn create_base(model: &mut Model, volid: &str) -> Result<String, String> {
    let mut vol = model.volumes.remove(volid).ok_or_else(|| format!("volume '{volid}' does not exist"))?;
    let cut = volid.rfind(['/', ':']).map(|i| i + 1).unwrap_or(0);
    let (head, last) = volid.split_at(cut);
    let new = match last.strip_prefix("vm-") {
        Some(rest) => format!("{head}base-{rest}"),
        None => volid.to_string(),
    };
    vol.volid = new.clone();
    model.volumes.insert(new.clone(), vol);
    Ok(new)
}

/// A linked clone of a base volume for `vmid` (`vdisk_clone`).
pub fn linked_clone(model: &mut Model, base: &str, vmid: u32) -> Result<String, String> {
    let src = model.volumes.get(base).cloned().ok_or_else(|| format!("volume '{base}' does not exist"))?;
    let (storage, name) = split_volid(base).ok_or_else(|| format!("unable to parse volume ID '{base}'"))?;
    let kind = model.storages.get(storage).map(|s| s.kind.clone()).unwrap_or_default();
    let stem = next_disk_name(model, storage, vmid);
    let volid = if kind == "dir" {
        format!("{storage}:{name}/{vmid}/{stem}.qcow2")
    } else if kind == "lvmthin" {
        // A thin snapshot of the base LV; its name does not record the base.
        format!("{storage}:{stem}")
    } else {
        format!("{storage}:{name}/{stem}")
    };
    model.volumes.insert(volid.clone(), Volume { volid: volid.clone(), vmid, ..src });
    Ok(volid)
}

/// Whether a volume can be linked-cloned (`volume_has_feature(clone)` on a current volume).
pub fn can_link(model: &Model, volid: &str) -> bool {
    let Some(vol) = model.volumes.get(volid) else { return false };
    let kind = model.storages.get(&vol.storage).map(|s| s.kind.as_str()).unwrap_or("");
    is_base(volid) && (kind != "dir" || vol.format == "qcow2")
}

/// The size in bytes of a disk image file as `qemu-img info` reports it: the
/// virtual size from a qcow2 or VMDK header, else the file length.
pub fn image_size(path: &Path) -> std::io::Result<u64> {
    use std::io::Read as _;
    let len = std::fs::metadata(path)?.len();
    let mut header = [0u8; 32];
    let mut f = std::fs::File::open(path)?;
    let n = f.read(&mut header)?;
    if n >= 32 && header[..4] == *b"QFI\xfb" {
        return Ok(u64::from_be_bytes(header[24..32].try_into().unwrap_or_default()));
    }
    if n >= 20 && header[..4] == *b"KDMV" {
        return Ok(u64::from_le_bytes(header[12..20].try_into().unwrap_or_default()) * 512);
    }
    Ok(len)
}

/// Where a drive goes: the VM, its node, the default storage, template or not.
pub struct DiskTarget<'a> {
    pub state: &'a PveState,
    pub node: &'a str,
    pub vmid: u32,
    pub default_storage: Option<&'a str>,
    pub template: bool,
}

/// Allocates what one drive value asks for and returns the value as PVE
/// stores it; new volids are pushed to `created` (freed by the caller on a
/// later error). PVE's `create_disks` for one drive.
pub fn create_disk(
    model: &mut Model,
    t: &DiskTarget,
    key: &str,
    value: &str,
    created: &mut Vec<String>,
    log: &mut Vec<String>,
) -> Result<String, String> {
    let mut disk = Drive::parse(value);
    let volname = split_volid(&disk.file).map(|(_, n)| n.to_string());
    if disk.file.is_empty() || disk.file == "none" || disk.file == "cdrom" {
        disk.opts.remove("size");
        return Ok(disk.print());
    }
    if disk.file == "cloudinit" || volname.as_deref() == Some("cloudinit") {
        let storage = split_volid(&disk.file)
            .map(|(s, _)| s.to_string())
            .or(t.default_storage.map(str::to_string))
            .ok_or("no storage ID specified (and no default storage)")?;
        let format = disk.opts.remove("format");
        let volid = alloc(
            model,
            &storage,
            t.node,
            t.vmid,
            Some(&format!("vm-{}-cloudinit", t.vmid)),
            format.as_deref(),
            CLOUDINIT_SIZE,
            None,
        )?;
        created.push(volid.clone());
        disk.file = volid;
        disk.opts.insert("media".into(), "cdrom".into());
        let printed = disk.print();
        log.push(format!("{key}: successfully created disk '{printed}'"));
        return Ok(printed);
    }
    if let Some((storage, gib)) = new_disk(&disk.file) {
        let storage = storage
            .or(t.default_storage.map(str::to_string))
            .ok_or("no storage ID specified (and no default storage)")?;
        let format = disk.opts.remove("format");
        let (size, origin) = match disk.opts.remove("import-from") {
            Some(source) => import_source(model, t, &source)?,
            None if key == "efidisk0" => {
                let vars = if disk.opts.get("efitype").is_some_and(|e| e == "4m") { EFI_VARS_4M } else { EFI_VARS_2M };
                (vars, None)
            }
            None if key == "tpmstate0" => (TPMSTATE_SIZE, None),
            None => (((gib * 1024.0 * 1024.0) as u64) << 10, None),
        };
        let mut volid = alloc(model, &storage, t.node, t.vmid, None, format.as_deref(), size, origin)?;
        if t.template {
            volid = create_base(model, &volid)?;
        }
        created.push(volid.clone());
        disk.file = volid;
        disk.set_size(size);
        let printed = disk.print();
        log.push(format!("{key}: successfully created disk '{printed}'"));
        return Ok(printed);
    }
    // An existing volume: it must exist where the VM runs.
    let size = existing_size(model, t, &disk.file)?;
    disk.set_size(size);
    Ok(disk.print())
}

/// The size and origin of an `import-from` source.
pub(crate) fn import_source(model: &Model, t: &DiskTarget, source: &str) -> Result<(u64, Option<String>), String> {
    if source.starts_with('/') {
        let path = t.state.node_root(t.node).join(source.trim_start_matches('/'));
        let size = image_size(&path).map_err(|_| format!("could not get file size of {source}"))?;
        return Ok((size, Some(source.to_string())));
    }
    let info = parse_volname(model, source)?;
    let (storage, _) = split_volid(source).unwrap_or_default();
    if info.vtype == "import" {
        let file = info.file.unwrap_or_default();
        let path = t.state.dir_storage_path(t.node, storage).join(&file);
        let shown = format!("{}/{file}", storage_path(storage));
        let size = image_size(&path).map_err(|_| format!("failed to stat '{shown}'"))?;
        return Ok((size, Some(source.to_string())));
    }
    let usable = model.volumes.get(source).filter(|v| v.node.as_deref().is_none_or(|n| n == t.node));
    match usable {
        Some(v) => Ok((v.size, v.origin.clone())),
        None => Err(format!("cannot import from '{source}' - could not get size of {source}")),
    }
}

/// `volume_size_info` of an existing volume or file on the VM's node.
fn existing_size(model: &Model, t: &DiskTarget, volid: &str) -> Result<u64, String> {
    if volid.starts_with('/') {
        let path = t.state.node_root(t.node).join(volid.trim_start_matches('/'));
        return std::fs::metadata(path).map(|m| m.len()).map_err(|_| format!("volume {volid} does not exist"));
    }
    let info = parse_volname(model, volid)?;
    if let Some(file) = info.file {
        let (storage, _) = split_volid(volid).unwrap_or_default();
        let path = t.state.dir_storage_path(t.node, storage).join(file);
        return std::fs::metadata(path).map(|m| m.len()).map_err(|_| format!("volume {volid} does not exist"));
    }
    model
        .volumes
        .get(volid)
        .filter(|v| v.node.as_deref().is_none_or(|n| n == t.node))
        .map(|v| v.size)
        .ok_or_else(|| format!("volume {volid} does not exist"))
}
