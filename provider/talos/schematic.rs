//! Talos Image Factory schematics: the model, parsing, the canonical form and
//! the schematic ID, exactly as the factory computes them.
//!
//! Owns: the schematic type with the factory's field names, order and
//! zero-value omission (`siderolabs/image-factory` `pkg/schematic`: `overlay`,
//! then `customization` with `embeddedMachineConfiguration`, `extraKernelArgs`,
//! `meta`, `systemExtensions`, `bootloader`, `secureboot`, `diskImage`);
//! parsing from YAML or JSON with unknown fields rejected at their path; the
//! canonical YAML (what `gopkg.in/yaml.v3` `Marshal` writes for that type,
//! printed by [`goyaml`](super::goyaml) in its yaml.v3 flavour); and the ID,
//! the hex SHA-256 of the canonical YAML.
//! Must not: do IO. The factory stays the source of truth: callers compare
//! the ID it returns with [`Schematic::id`].
//!
//! Known limits (a differing ID is reported by `imagefactory:Schematic`, never
//! used silently): overlay option scalars are typed by YAML 1.2 rules, so a
//! plain `012` or `1_000` there stays a string where Go reads a number; a
//! plain `~` inside a string list stays `"~"` where Go reads `""`.

#[cfg(test)]
mod tests;

use std::fmt;

use serde::{de::Error as _, Deserialize, Deserializer};
use sha2::{Digest, Sha256};

/// The tests name the key order by its former home.
#[cfg(test)]
use super::goyaml as emit;
use super::goyaml::{self, format_float as go_float, go_key_order, Flavour, Node};

/// The ID of the empty (vanilla) schematic, `customization: {}`.
pub const VANILLA_SCHEMATIC_ID: &str = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

/// A schematic: how the factory customises a Talos image.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schematic {
    /// Board overlay (single-board computers).
    #[serde(default, deserialize_with = "nullable")]
    pub overlay: Overlay,
    /// Customisation of the Talos image.
    #[serde(default, deserialize_with = "nullable")]
    pub customization: Customization,
}

/// `customization`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Customization {
    /// Machine configuration documents embedded in the image (YAML text).
    #[serde(default, deserialize_with = "nullable")]
    pub embedded_machine_configuration: String,
    /// Extra kernel command-line arguments, in order.
    #[serde(default, deserialize_with = "nullable")]
    pub extra_kernel_args: Vec<String>,
    /// Initial META partition values.
    #[serde(default, deserialize_with = "nullable")]
    pub meta: Vec<MetaValue>,
    /// System extensions.
    #[serde(default, deserialize_with = "nullable")]
    pub system_extensions: SystemExtensions,
    /// Bootloader of disk images.
    #[serde(default, deserialize_with = "nullable")]
    pub bootloader: Bootloader,
    /// Secure-boot options.
    #[serde(default, rename = "secureboot", deserialize_with = "nullable")]
    pub secure_boot: SecureBoot,
    /// Disk image options.
    #[serde(default, deserialize_with = "nullable")]
    pub disk_image: DiskImage,
}

/// One META value: a key (0-255) and its text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaValue {
    /// META key, e.g. `0xa` (10) for the network configuration.
    pub key: u8,
    /// Its value.
    #[serde(default, deserialize_with = "nullable")]
    pub value: String,
}

/// `customization.systemExtensions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SystemExtensions {
    /// Official extensions by image name, e.g. `siderolabs/qemu-guest-agent`. Order matters for the ID.
    #[serde(default, deserialize_with = "nullable")]
    pub official_extensions: Vec<String>,
}

/// `customization.bootloader`; the default (`none`, also spelled `auto`) lets
/// the imager choose and is omitted from the canonical form.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Bootloader {
    /// Chosen by the imager.
    #[default]
    Auto,
    /// systemd-boot for UEFI, GRUB for BIOS.
    DualBoot,
    /// systemd-boot.
    SdBoot,
    /// GRUB.
    Grub,
}

impl Bootloader {
    /// The factory's name (`none` for [`Bootloader::Auto`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Bootloader::Auto => "none",
            Bootloader::DualBoot => "dual-boot",
            Bootloader::SdBoot => "sd-boot",
            Bootloader::Grub => "grub",
        }
    }
}

impl<'de> Deserialize<'de> for Bootloader {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The factory's enum matches names case-insensitively.
        let name = String::deserialize(d)?;
        match name.to_ascii_lowercase().as_str() {
            "none" | "auto" => Ok(Bootloader::Auto),
            "dual-boot" => Ok(Bootloader::DualBoot),
            "sd-boot" => Ok(Bootloader::SdBoot),
            "grub" => Ok(Bootloader::Grub),
            _ => Err(D::Error::custom(format!(
                "{name:?} is not a bootloader; expected dual-boot, sd-boot or grub (or none for the default)"
            ))),
        }
    }
}

/// `customization.secureboot`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecureBoot {
    /// How systemd-boot enrolls keys on first boot: `off`, `manual`, `if-safe` or `force`.
    #[serde(default, deserialize_with = "enroll_keys")]
    pub enroll_keys: String,
    /// Include well-known UEFI certificates in the auto-enrollment database.
    #[serde(default, deserialize_with = "nullable")]
    pub include_well_known_certificates: bool,
}

/// `customization.diskImage`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DiskImage {
    /// Sector size in bytes (0: the default, 512).
    #[serde(default, deserialize_with = "nullable")]
    pub sector_size: u64,
}

/// `overlay`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overlay {
    /// Overlay image, e.g. `siderolabs/sbc-raspberrypi`.
    #[serde(default, deserialize_with = "nullable")]
    pub image: String,
    /// Overlay name, e.g. `rpi_generic`.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// Free-form options for the overlay, in Go's key order.
    #[serde(default, deserialize_with = "options")]
    pub options: Vec<(String, OptionValue)>,
}

/// A value inside `overlay.options`.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer above `i64::MAX`.
    Uint(u64),
    /// A float.
    Float(f64),
    /// A string.
    String(String),
    /// A list.
    List(Vec<OptionValue>),
    /// A mapping with string keys, in Go's key order.
    Map(Vec<(String, OptionValue)>),
}

/// Why a schematic could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchematicError {
    /// Path of the offending field, e.g. `customization.systemExtension` (empty: the document).
    pub path: String,
    /// What is wrong and what would be valid.
    pub reason: String,
    /// 1-based line in the input, when known.
    pub line: Option<usize>,
    /// The field's name when it is unknown.
    pub unknown_field: Option<String>,
}

impl fmt::Display for SchematicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{}", self.reason)?;
        match self.line {
            Some(line) => write!(f, " (line {line})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for SchematicError {}

impl Schematic {
    /// Parses a schematic from YAML or JSON; an empty document (or only
    /// comments) is the vanilla schematic. Unknown fields are errors naming
    /// their path and the valid names.
    pub fn parse(text: &str) -> Result<Schematic, SchematicError> {
        let de = serde_norway::Deserializer::from_str(text);
        match serde_path_to_error::deserialize::<_, Option<Schematic>>(de) {
            Ok(s) => Ok(s.unwrap_or_default()),
            Err(e) => Err(SchematicError::from_serde(&e)),
        }
    }

    /// The canonical YAML: what the factory stores and hashes.
    pub fn canonical_yaml(&self) -> String {
        goyaml::emit(&Node::Map(self.nodes()), Flavour::YamlV3)
    }

    /// The schematic ID: hex SHA-256 of [`Schematic::canonical_yaml`].
    pub fn id(&self) -> String {
        Sha256::digest(self.canonical_yaml().as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The document as yaml.v3 sees the factory's Go struct: fields in
    /// declaration order, zero values of `omitempty` fields left out.
    fn nodes(&self) -> Vec<(String, Node)> {
        let mut root = Vec::new();
        let o = &self.overlay;
        if !(o.image.is_empty() && o.name.is_empty() && o.options.is_empty()) {
            let mut overlay =
                vec![entry("image", Node::Str(o.image.clone())), entry("name", Node::Str(o.name.clone()))];
            if !o.options.is_empty() {
                overlay.push(entry("options", option_map(&o.options)));
            }
            root.push(entry("overlay", Node::Map(overlay)));
        }
        let c = &self.customization;
        let mut custom = Vec::new();
        if !c.embedded_machine_configuration.is_empty() {
            custom.push(entry("embeddedMachineConfiguration", Node::Str(c.embedded_machine_configuration.clone())));
        }
        if !c.extra_kernel_args.is_empty() {
            custom.push(entry("extraKernelArgs", strings(&c.extra_kernel_args)));
        }
        if !c.meta.is_empty() {
            let items = c.meta.iter().map(|m| {
                Node::Map(vec![
                    entry("key", Node::Plain(m.key.to_string())),
                    entry("value", Node::Str(m.value.clone())),
                ])
            });
            custom.push(entry("meta", Node::Seq(items.collect())));
        }
        if !c.system_extensions.official_extensions.is_empty() {
            let list = strings(&c.system_extensions.official_extensions);
            custom.push(entry("systemExtensions", Node::Map(vec![entry("officialExtensions", list)])));
        }
        if c.bootloader != Bootloader::Auto {
            custom.push(entry("bootloader", Node::Str(c.bootloader.as_str().to_string())));
        }
        let sb = &c.secure_boot;
        let mut secure_boot = Vec::new();
        if !sb.enroll_keys.is_empty() {
            secure_boot.push(entry("enrollKeys", Node::Str(sb.enroll_keys.clone())));
        }
        if sb.include_well_known_certificates {
            secure_boot.push(entry("includeWellKnownCertificates", Node::Plain("true".into())));
        }
        if !secure_boot.is_empty() {
            custom.push(entry("secureboot", Node::Map(secure_boot)));
        }
        if c.disk_image.sector_size != 0 {
            let size = Node::Plain(c.disk_image.sector_size.to_string());
            custom.push(entry("diskImage", Node::Map(vec![entry("sectorSize", size)])));
        }
        root.push(entry("customization", Node::Map(custom)));
        root
    }
}

/// Hex SHA-256 of the canonical YAML of `schematic`: its Image Factory ID.
pub fn schematic_id(schematic: &Schematic) -> String {
    schematic.id()
}

fn entry(key: &str, node: Node) -> (String, Node) {
    (key.to_string(), node)
}

fn strings(list: &[String]) -> Node {
    Node::Seq(list.iter().map(|s| Node::Str(s.clone())).collect())
}

fn option_map(entries: &[(String, OptionValue)]) -> Node {
    let mut sorted: Vec<&(String, OptionValue)> = entries.iter().collect();
    sorted.sort_by(|a, b| go_key_order(&a.0, &b.0));
    Node::Map(sorted.into_iter().map(|(k, v)| (k.clone(), option_node(v))).collect())
}

fn option_node(v: &OptionValue) -> Node {
    match v {
        OptionValue::Null => Node::Plain("null".into()),
        OptionValue::Bool(b) => Node::Plain(b.to_string()),
        OptionValue::Int(i) => Node::Plain(i.to_string()),
        OptionValue::Uint(u) => Node::Plain(u.to_string()),
        OptionValue::Float(f) => Node::Plain(go_float(*f)),
        OptionValue::String(s) => Node::Str(s.clone()),
        OptionValue::List(items) => Node::Seq(items.iter().map(option_node).collect()),
        OptionValue::Map(entries) => option_map(entries),
    }
}

/// Null reads as the zero value, as in Go.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn enroll_keys<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value: String = nullable(d)?;
    match value.as_str() {
        "" | "off" | "manual" | "if-safe" | "force" => Ok(value),
        _ => Err(D::Error::custom(format!("{value:?} is not valid; expected off, manual, if-safe or force"))),
    }
}

fn options<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, OptionValue)>, D::Error> {
    match Option::<serde_norway::Value>::deserialize(d)? {
        None | Some(serde_norway::Value::Null) => Ok(Vec::new()),
        Some(serde_norway::Value::Mapping(m)) => option_entries(m).map_err(D::Error::custom),
        Some(_) => Err(D::Error::custom("expected a mapping of option names to values")),
    }
}

fn option_entries(m: serde_norway::Mapping) -> Result<Vec<(String, OptionValue)>, String> {
    let mut out = Vec::with_capacity(m.len());
    for (k, v) in m {
        let serde_norway::Value::String(key) = k else {
            return Err("option names must be strings".into());
        };
        if key.len() > 128 || key.chars().any(|c| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')) {
            return Err(format!("option name {key:?} must be one line of at most 128 bytes"));
        }
        let value = option_value(v).map_err(|e| format!("{key}: {e}"))?;
        out.push((key, value));
    }
    out.sort_by(|a, b| go_key_order(&a.0, &b.0));
    Ok(out)
}

fn option_value(v: serde_norway::Value) -> Result<OptionValue, String> {
    use serde_norway::Value as V;
    Ok(match v {
        V::Null => OptionValue::Null,
        V::Bool(b) => OptionValue::Bool(b),
        V::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => OptionValue::Int(i),
            (None, Some(u), _) => OptionValue::Uint(u),
            (None, None, Some(f)) => OptionValue::Float(f),
            _ => return Err(format!("unsupported number {n}")),
        },
        V::String(s) => OptionValue::String(s),
        V::Sequence(items) => OptionValue::List(items.into_iter().map(option_value).collect::<Result<_, _>>()?),
        V::Mapping(m) => OptionValue::Map(option_entries(m)?),
        V::Tagged(t) => return Err(format!("tagged values ({}) are not supported", t.tag)),
    })
}

impl SchematicError {
    fn from_serde(e: &serde_path_to_error::Error<serde_norway::Error>) -> Self {
        let path = match e.path().to_string() {
            p if p == "." => String::new(),
            p => p,
        };
        let inner = e.inner();
        let line = inner.location().map(|l| l.line());
        let mut reason = inner.to_string();
        // serde_norway appends the location and prefixes the parent's path: keep the bare message.
        if let Some(l) = inner.location() {
            let suffix = format!(" at line {} column {}", l.line(), l.column());
            if let Some(stripped) = reason.strip_suffix(&suffix) {
                reason = stripped.to_string();
            }
        }
        if let Some((prefix, rest)) = reason.split_once(": ") {
            if !prefix.contains(' ') && path.starts_with(prefix) {
                reason = rest.to_string();
            }
        }
        let unknown_field =
            reason.strip_prefix("unknown field `").and_then(|r| r.split_once('`')).map(|(name, _)| name.to_string());
        SchematicError { path, reason, line, unknown_field }
    }
}
