//! The lab factory's boot images: tiny files whose (decompressed) first line
//! is `PROXMOX-TALOS-LAB-IMAGE schematic=<id> version=<v> image=<name>`, so the
//! lab's Proxmox can recognise a Talos image and which schematic it carries.
//!
//! Served names are `<platform>-<arch>[-secureboot]` plus `.raw`, `.raw.gz`,
//! `.raw.zst`, `.qcow2` or `.iso` (the disk content is the same header-carrying
//! payload in every format; `.gz` and `.zst` are real compressed streams and
//! `.qcow2` a real qcow2 v3 image of it, see [`super::qcow2`]).

use std::io::{Read, Write};

/// The first word of every lab image.
pub const MAGIC: &str = "PROXMOX-TALOS-LAB-IMAGE";
/// Size of the uncompressed payload (the disk): the header line, then zeros.
pub const PAYLOAD_SIZE: usize = 64 * 1024;

/// How an image file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Raw disk image.
    Raw,
    /// Gzip-compressed raw disk image.
    RawGz,
    /// Zstandard-compressed raw disk image.
    RawZst,
    /// QCOW2 disk image.
    Qcow2,
    /// ISO.
    Iso,
}

/// What the header of a lab image says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageHeader {
    /// Schematic ID.
    pub schematic: String,
    /// Talos version.
    pub version: String,
    /// Image name without extension, e.g. `nocloud-amd64`.
    pub image: String,
}

/// Splits `nocloud-amd64.raw.zst` into its image name and format; `None` for
/// names the lab does not serve.
pub fn parse_file_name(file: &str) -> Option<(&str, Format)> {
    const SUFFIXES: &[(&str, Format)] = &[
        (".raw.gz", Format::RawGz),
        (".raw.zst", Format::RawZst),
        (".raw", Format::Raw),
        (".qcow2", Format::Qcow2),
        (".iso", Format::Iso),
    ];
    let (stem, format) = SUFFIXES.iter().find_map(|(suffix, f)| file.strip_suffix(suffix).map(|s| (s, *f)))?;
    let base = stem.strip_suffix("-secureboot").unwrap_or(stem);
    let (platform, arch) = base.rsplit_once('-')?;
    let platform_ok =
        !platform.is_empty() && platform.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    (platform_ok && matches!(arch, "amd64" | "arm64")).then_some((stem, format))
}

/// The bytes of image `file` for `schematic` and `version`; `None` when the name is not served.
pub fn render(schematic: &str, version: &str, file: &str) -> Option<Vec<u8>> {
    let (image, format) = parse_file_name(file)?;
    let mut payload = format!("{MAGIC} schematic={schematic} version={version} image={image}\n").into_bytes();
    payload.resize(PAYLOAD_SIZE, 0);
    Some(match format {
        Format::Raw | Format::Iso => payload,
        // 4 KiB clusters keep the file small (24 KiB); qemu-img takes any size from 512 B to 2 MiB.
        Format::Qcow2 => super::qcow2::write(&payload, 12),
        Format::RawGz => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&payload).expect("writing to memory");
            gz.finish().expect("writing to memory")
        }
        Format::RawZst => {
            ruzstd::encoding::compress_to_vec(payload.as_slice(), ruzstd::encoding::CompressionLevel::Fastest)
        }
    })
}

/// Reads the header of a lab image, decompressing gzip or zstd or reading the
/// disk out of a qcow2 image first; `None` when `bytes` is not a lab image.
pub fn identify(bytes: &[u8]) -> Option<ImageHeader> {
    let mut head = Vec::new();
    let limit = 4096;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(bytes).take(limit).read_to_end(&mut head).ok()?;
    } else if bytes.starts_with(&super::qcow2::MAGIC) {
        head = super::qcow2::read(bytes, limit).ok()?;
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        ruzstd::decoding::StreamingDecoder::new(bytes).ok()?.take(limit).read_to_end(&mut head).ok()?;
    } else {
        head.extend_from_slice(&bytes[..bytes.len().min(limit as usize)]);
    }
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split(' ');
    if words.next()? != MAGIC {
        return None;
    }
    let mut field = |name: &str| words.next()?.strip_prefix(name)?.strip_prefix('=').map(str::to_string);
    Some(ImageHeader { schematic: field("schematic")?, version: field("version")?, image: field("image")? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_carries_the_header() {
        for file in [
            "nocloud-amd64.raw",
            "nocloud-amd64.raw.gz",
            "nocloud-amd64.raw.zst",
            "metal-arm64-secureboot.qcow2",
            "nocloud-amd64.iso",
        ] {
            let bytes = render("abc", "v1.12.4", file).unwrap_or_else(|| panic!("{file}"));
            let header = identify(&bytes).unwrap_or_else(|| panic!("{file}"));
            assert_eq!((header.schematic.as_str(), header.version.as_str()), ("abc", "v1.12.4"), "{file}");
            assert_eq!(header.image, file.split('.').next().unwrap());
            assert!(bytes.len() <= PAYLOAD_SIZE, "{file}: {} bytes", bytes.len());
        }
        let qcow2 = render("abc", "v1.12.4", "nocloud-amd64.qcow2").unwrap();
        let header = super::super::qcow2::header(&qcow2).unwrap();
        assert_eq!((header.version, header.virtual_size), (3, PAYLOAD_SIZE as u64));
        assert!(render("abc", "v1.12.4", "nocloud-amd64.raw")
            .unwrap()
            .starts_with(b"PROXMOX-TALOS-LAB-IMAGE schematic=abc version=v1.12.4"));
    }

    #[test]
    fn unknown_names_are_not_served() {
        for file in ["nocloud-amd64.raw.xz", "nocloud-x86.iso", "kernel-amd64", "-amd64.iso", "Nocloud-amd64.iso"] {
            assert_eq!(render("abc", "v1.12.4", file), None, "{file}");
        }
        assert_eq!(identify(b"hello"), None);
    }
}
