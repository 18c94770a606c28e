//! `machine:getDisks`: a Talos node's disks (`StorageService/Disks`), in maintenance mode
//! (insecure TLS, no credentials) or configured (mutual TLS with `clientConfiguration`),
//! filtered by size, type, bus and system disk, with the disk to install to picked the way
//! Talos picks from a selector: the system disk when it matches, else the first match that is
//! writable and not a CD-ROM.

use serde::{Deserialize, Serialize};

use super::talos_node::{self, Probed, Target};
use crate::framework::{CheckFailure, Context, Function, ResourceError};
use crate::schema::PulumiType;
use crate::talos::api::storage;
use crate::talos::api_client::{self, Credentials, TalosApiError};
use crate::talos::secrets::ClientConfiguration;

/// Arguments of `getDisks`.
#[derive(Debug, Clone, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetDisksArgs {
    /// The node's address: where it answers in maintenance mode, or the node to ask.
    pub node: String,
    /// The admin client configuration, for a configured node; without it only a node in
    /// maintenance mode answers.
    pub client_configuration: Option<ClientConfiguration>,
    /// The Talos API endpoint to reach a configured node through; defaults to `node`.
    pub endpoint: Option<String>,
    /// Which disks to keep.
    pub filters: Option<DiskFilters>,
}

/// Filters of `getDisks` (all given must match).
#[derive(Debug, Clone, Default, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "machine:DiskFilters")]
pub struct DiskFilters {
    /// Smallest size, e.g. `20GB`, `100GiB` or a number of bytes.
    pub min_size: Option<String>,
    /// Largest size, same units.
    pub max_size: Option<String>,
    /// `nvme`, `ssd`, `hdd`, `sd` or `cd`.
    #[serde(rename = "type")]
    pub disk_type: Option<String>,
    /// A part of the bus path (`/pci0000:00/...`), e.g. a controller's PCI address.
    pub bus_path: Option<String>,
    /// Only the disk Talos runs from (`true`), or only the others (`false`).
    pub system_disk: Option<bool>,
}

/// One disk as `getDisks` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, PulumiType)]
#[serde(rename_all = "camelCase")]
#[pulumi(token = "machine:Disk")]
pub struct DiskInfo {
    /// `/dev/sda`.
    pub device_name: String,
    /// Size in bytes.
    pub size: u64,
    pub model: String,
    pub serial: String,
    pub wwid: String,
    /// `nvme`, `ssd`, `hdd`, `sd`, `cd` or `unknown`.
    #[serde(rename = "type")]
    pub disk_type: String,
    pub bus_path: String,
    pub system_disk: bool,
    pub readonly: bool,
}

/// Result of `getDisks`.
#[derive(Debug, Clone, Serialize, PulumiType)]
#[serde(rename_all = "camelCase")]
pub struct GetDisksResult {
    /// The disks that match the filters, in the node's order.
    pub disks: Vec<DiskInfo>,
    /// The device to install Talos to (`machine.install.disk`): the matching system disk, else
    /// the first matching disk that is writable and not a CD-ROM; absent when none.
    pub install_disk: Option<String>,
}

const TYPES: &[&str] = &["nvme", "ssd", "hdd", "sd", "cd"];

/// Bytes in a size such as `20GB`, `100GiB`, `512MiB` or `1073741824`.
fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024f64.powi(2),
        "gib" => 1024f64.powi(3),
        "tib" => 1024f64.powi(4),
        _ => return None,
    };
    Some((number * factor) as u64)
}

/// What is wrong with the filters, by property path.
pub fn failures(args: &GetDisksArgs) -> Vec<CheckFailure> {
    let mut f = Vec::new();
    if args.node.trim().is_empty() {
        f.push(CheckFailure::new("node", "must not be empty; give the node's address"));
    }
    let Some(filters) = &args.filters else { return f };
    for (path, value) in [("filters.minSize", &filters.min_size), ("filters.maxSize", &filters.max_size)] {
        if value.as_deref().is_some_and(|v| parse_size(v).is_none()) {
            f.push(CheckFailure::new(path, "a size such as 20GB, 100GiB or a number of bytes is expected"));
        }
    }
    if let Some(t) = filters.disk_type.as_deref().filter(|t| !TYPES.contains(t)) {
        f.push(CheckFailure::new("filters.type", format!("{t:?} is not one of {}", TYPES.join(", "))));
    }
    f
}

fn type_name(t: i32) -> &'static str {
    use storage::disk::DiskType;
    match DiskType::try_from(t) {
        Ok(DiskType::Ssd) => "ssd",
        Ok(DiskType::Hdd) => "hdd",
        Ok(DiskType::Nvme) => "nvme",
        Ok(DiskType::Sd) => "sd",
        Ok(DiskType::Cd) => "cd",
        _ => "unknown",
    }
}

/// The disks that match `filters`, and the install disk among them.
pub fn select(disks: &[storage::Disk], filters: Option<&DiskFilters>) -> GetDisksResult {
    let f = filters.cloned().unwrap_or_default();
    let (min, max) = (f.min_size.as_deref().and_then(parse_size), f.max_size.as_deref().and_then(parse_size));
    let disks: Vec<DiskInfo> = disks
        .iter()
        .map(|d| DiskInfo {
            device_name: d.device_name.clone(),
            size: d.size,
            model: d.model.clone(),
            serial: d.serial.clone(),
            wwid: d.wwid.clone(),
            disk_type: type_name(d.r#type).to_string(),
            bus_path: d.bus_path.clone(),
            system_disk: d.system_disk,
            readonly: d.readonly,
        })
        .filter(|d| min.is_none_or(|m| d.size >= m) && max.is_none_or(|m| d.size <= m))
        .filter(|d| f.disk_type.as_deref().is_none_or(|t| d.disk_type == t))
        .filter(|d| f.bus_path.as_deref().is_none_or(|b| d.bus_path.contains(b)))
        .filter(|d| f.system_disk.is_none_or(|s| d.system_disk == s))
        .collect();
    let installable = |d: &&DiskInfo| !d.readonly && d.disk_type != "cd";
    let install_disk = disks
        .iter()
        .filter(installable)
        .find(|d| d.system_disk)
        .or_else(|| disks.iter().find(installable))
        .map(|d| d.device_name.clone());
    GetDisksResult { disks, install_disk }
}

/// The `getDisks` function.
pub struct GetDisks;

impl Function for GetDisks {
    const TOKEN: &'static str = "proxmox-talos:machine:getDisks";
    type Args = GetDisksArgs;
    type Result = GetDisksResult;

    async fn invoke(&self, _ctx: &Context, args: GetDisksArgs) -> Result<GetDisksResult, ResourceError> {
        let f = failures(&args);
        if !f.is_empty() {
            return Err(ResourceError::Invalid(f));
        }
        let label = format!("talos {}", args.node);
        let disks = match &args.client_configuration {
            Some(cfg) => {
                let targets = [Target::via(args.endpoint.as_deref(), &args.node)];
                let client = match talos_node::probe(&targets, &args.node, cfg).await {
                    Ok(Probed::Configured(c, _) | Probed::Maintenance(c)) => c,
                    Err(e) => return Err(ResourceError::Failed(format!("{label}: {e}"))),
                };
                client.disks().await.map_err(|e| ResourceError::Failed(format!("{label}: Disks: {e}")))?
            }
            None => {
                let listed = match api_client::connect(&args.node, Credentials::Insecure).await {
                    Ok(c) => c.disks().await,
                    Err(e) => Err(e),
                };
                listed.map_err(|e| match e {
                    TalosApiError::ClientCertificateRefused { .. } => ResourceError::Failed(format!(
                        "{label}: the node is configured (it asks for a client certificate): give \
                         `clientConfiguration` to list its disks"
                    )),
                    e => ResourceError::Failed(format!(
                        "{label}: Disks: {e} (without `clientConfiguration` only a node in maintenance mode answers)"
                    )),
                })?
            }
        };
        Ok(select(&disks, args.filters.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(name: &str, size: u64, t: storage::disk::DiskType, system: bool) -> storage::Disk {
        storage::Disk {
            size,
            device_name: format!("/dev/{name}"),
            name: name.into(),
            r#type: t as i32,
            bus_path: format!("/pci0000:00/{name}"),
            system_disk: system,
            readonly: t == storage::disk::DiskType::Cd,
            ..Default::default()
        }
    }

    #[test]
    fn filters_keep_matching_disks_and_the_install_disk_is_the_system_one_or_the_first_writable() {
        use storage::disk::DiskType::*;
        let disks =
            [disk("sr0", 100 << 20, Cd, false), disk("sda", 30 << 30, Ssd, false), disk("sdb", 500 << 30, Hdd, false)];
        let all = select(&disks, None);
        assert_eq!(all.disks.len(), 3);
        assert_eq!(all.install_disk.as_deref(), Some("/dev/sda"), "the CD-ROM is never the install disk");
        let big = DiskFilters { min_size: Some("100GiB".into()), ..Default::default() };
        assert_eq!(select(&disks, Some(&big)).install_disk.as_deref(), Some("/dev/sdb"));
        let hdd = DiskFilters { disk_type: Some("hdd".into()), max_size: Some("1TB".into()), ..Default::default() };
        assert_eq!(
            select(&disks, Some(&hdd)).disks.iter().map(|d| d.device_name.as_str()).collect::<Vec<_>>(),
            ["/dev/sdb"]
        );
        let installed = [disk("sda", 30 << 30, Ssd, false), disk("sdb", 500 << 30, Hdd, true)];
        assert_eq!(select(&installed, None).install_disk.as_deref(), Some("/dev/sdb"), "the system disk first");
        let none = DiskFilters { disk_type: Some("nvme".into()), ..Default::default() };
        assert_eq!(select(&disks, Some(&none)).install_disk, None);
    }

    #[test]
    fn bad_filters_name_their_path() {
        let args = GetDisksArgs {
            node: " ".into(),
            client_configuration: None,
            endpoint: None,
            filters: Some(DiskFilters {
                min_size: Some("big".into()),
                disk_type: Some("floppy".into()),
                ..Default::default()
            }),
        };
        let paths: Vec<String> = failures(&args).into_iter().map(|f| f.property).collect();
        assert_eq!(paths, ["node", "filters.minSize", "filters.type"]);
        assert_eq!(parse_size("20GB"), Some(20_000_000_000));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("4096"), Some(4096));
    }
}
