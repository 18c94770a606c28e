//! What PVE checks and does to files of `dir` storages, as plain functions
//! on names and paths: the file-name rules per content type (pve-storage's
//! `ISO_EXT_RE_0`, `VZTMPL_EXT_RE_1`, `UPLOAD_IMPORT_EXT_RE_1`,
//! `IMPORT_EXT_RE_1`, `BACKUP_EXT_RE_2`), checksums (`get_file_hash`),
//! decompression as `download-url` does it (`decompressor_info('iso', ..)`:
//! gz, lzo (lzop files), zst, bz2), and the checks made on untrusted images
//! (`file_size_info(.., untrusted)`, `assert_ova_contents`).
//!
//! Must not: know requests, tasks or the model.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use sha2::Digest as _;

/// `x.iso`, `x.img` (any case).
pub fn is_iso_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["iso", "img"].iter().any(|ext| lower.len() > ext.len() + 1 && lower.ends_with(&format!(".{ext}")))
}

/// The compression of a container template name `x.tar.gz|xz|zst|bz2` (any case).
pub fn vztmpl_ext(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let ext = ["gz", "xz", "zst", "bz2"].into_iter().find(|ext| lower.ends_with(&format!(".tar.{ext}")))?;
    (name.len() > ext.len() + 5).then(|| name[name.len() - ext.len()..].to_string())
}

/// A character of PVE's `SAFE_CHAR_CLASS_RE`.
fn safe_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.+=_".contains(c)
}

/// The format of an `import` file name as listed (`IMPORT_EXT_RE_1`, any case):
/// `ova`, `ovf`, `qcow2`, `raw`, `vmdk`.
pub fn import_format(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    let known = ["ova", "ovf", "qcow2", "raw", "vmdk"].contains(&ext.to_ascii_lowercase().as_str());
    (known && !stem.is_empty() && name.chars().all(safe_char)).then(|| ext.to_string())
}

/// The format of a name accepted for `import` by upload and download-url
/// (`UPLOAD_IMPORT_EXT_RE_1`, case-sensitive): `ova`, `qcow2`, `raw`, `vmdk`.
pub fn upload_import_format(name: &str) -> Option<&'static str> {
    let (stem, ext) = name.rsplit_once('.')?;
    let format = ["ova", "qcow2", "raw", "vmdk"].into_iter().find(|f| *f == ext)?;
    // The pattern is anchored at the end only: one safe character before the extension suffices.
    stem.chars().last().filter(|c| safe_char(*c)).map(|_| format)
}

/// The format of a backup file name (`vma.zst`, `tar.gz`, `tgz`, ...).
pub fn backup_format(name: &str) -> Option<String> {
    for base in ["vma", "tar"] {
        for comp in ["", ".gz", ".lzo", ".zst", ".bz2"] {
            let ext = format!("{base}{comp}");
            if name.len() > ext.len() + 1 && name.ends_with(&format!(".{ext}")) {
                return Some(ext);
            }
        }
    }
    (name.len() > 4 && name.ends_with(".tgz")).then(|| "tgz".to_string())
}

/// PVE's `parse_name_dir`: `vm-100-disk-0.qcow2` → (vmid, format).
pub fn parse_image_name(name: &str) -> Result<(u32, String), String> {
    let err = || format!("unable to parse volume filename '{name}'");
    let rest = ["vm-", "base-", "subvol-"].iter().find_map(|p| name.strip_prefix(p)).ok_or_else(err)?;
    let (vmid, rest) = rest.split_once('-').ok_or_else(err)?;
    let (stem, format) = rest.rsplit_once('.').ok_or_else(err)?;
    let ok = !vmid.is_empty()
        && vmid.bytes().all(|b| b.is_ascii_digit())
        && !stem.is_empty()
        && !rest.contains(['/', ' ', '\t'])
        && ["raw", "qcow2", "vmdk", "subvol"].contains(&format);
    if !ok {
        return Err(err());
    }
    Ok((vmid.parse().map_err(|_| err())?, format.to_string()))
}

/// The checksum algorithms of `download-url` and `upload`.
pub const CHECKSUM_ALGORITHMS: [&str; 6] = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"];

/// PVE's `get_file_hash`: the lower-case hex digest of a file.
pub fn file_hash(algorithm: &str, path: &Path) -> Result<String, String> {
    let mut file = File::open(path).map_err(|e| format!("unable to open '{}': {e}", path.display()))?;
    macro_rules! digest {
        ($hasher:expr) => {{
            let mut hasher = $hasher;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = file.read(&mut buf).map_err(|e| format!("reading '{}': {e}", path.display()))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            hasher.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>()
        }};
    }
    Ok(match algorithm {
        "md5" => digest!(md5::Md5::new()),
        "sha1" => digest!(sha1::Sha1::new()),
        "sha224" => digest!(sha2::Sha224::new()),
        "sha256" => digest!(sha2::Sha256::new()),
        "sha384" => digest!(sha2::Sha384::new()),
        "sha512" => digest!(sha2::Sha512::new()),
        other => return Err(format!("unknown algorithm '{other}'")),
    })
}

/// The command PVE runs to decompress an `iso` download with `compression`
/// (its `decompressor_info('iso', ..)`), or `None` for an unknown one.
pub fn decompressor(compression: &str) -> Option<&'static str> {
    Some(match compression {
        "gz" => "zcat",
        "lzo" => "lzop -d -c",
        "zst" => "zstd -q -d -c",
        "bz2" => "bzcat -q",
        _ => return None,
    })
}

/// Decompresses `src` into `dst` as the command of [`decompressor`] would;
/// the error is what that command prints on stderr (naming the file `name`).
pub fn decompress(compression: &str, src: &Path, dst: &Path, name: &str) -> Result<(), String> {
    let input = BufReader::new(File::open(src).map_err(|e| format!("{name}: {e}"))?);
    let mut out = File::create(dst).map_err(|e| format!("{name}: {e}"))?;
    let result = match compression {
        "gz" => copy(flate2::bufread::MultiGzDecoder::new(input), &mut out)
            .map_err(|e| format!("gzip: {name}: {}", gzip_text(&e))),
        "bz2" => copy(bzip2::bufread::MultiBzDecoder::new(input), &mut out)
            .map_err(|_| format!("bzcat: {name} is not a bzip2 file.")),
        "zst" => zstd(input, &mut out).map_err(|e| format!("zstd: {name}: {e}")),
        "lzo" => lzop(input, &mut out).map_err(|e| format!("lzop: {name}: {e}")),
        other => Err(format!("no decompression method found for '{other}'")),
    };
    result.and_then(|()| out.flush().map_err(|e| e.to_string()))
}

fn copy(mut reader: impl Read, out: &mut File) -> std::io::Result<()> {
    std::io::copy(&mut reader, out).map(|_| ())
}

fn gzip_text(e: &std::io::Error) -> &'static str {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        "unexpected end of file"
    } else {
        "not in gzip format"
    }
}

/// All frames of a zstd file.
fn zstd(mut input: impl BufRead, out: &mut File) -> Result<(), String> {
    let mut frames = 0;
    while !input.fill_buf().map_err(|e| e.to_string())?.is_empty() {
        let mut decoder = ruzstd::decoding::StreamingDecoder::new(&mut input).map_err(|e| {
            if frames == 0 {
                "unsupported format".to_string()
            } else {
                format!("error decoding frame {frames}: {e}")
            }
        })?;
        std::io::copy(&mut decoder, out).map_err(|e| format!("Decoding error: {e}"))?;
        frames += 1;
    }
    if frames == 0 {
        return Err("unexpected end of file".into());
    }
    Ok(())
}

const LZOP_MAGIC: [u8; 9] = [0x89, b'L', b'Z', b'O', 0x00, 0x0d, 0x0a, 0x1a, 0x0a];
const F_ADLER32_D: u32 = 0x1;
const F_ADLER32_C: u32 = 0x2;
const F_H_EXTRA_FIELD: u32 = 0x40;
const F_CRC32_D: u32 = 0x100;
const F_CRC32_C: u32 = 0x200;
const F_H_FILTER: u32 = 0x800;
const F_H_CRC32: u32 = 0x1000;

/// An lzop file (what `lzop -d -c` reads): the header, then LZO1X blocks.
fn lzop(mut input: impl Read, out: &mut File) -> Result<(), String> {
    let mut read = |n: usize, header: &mut Vec<u8>| -> Result<Vec<u8>, String> {
        let mut buf = vec![0u8; n];
        input.read_exact(&mut buf).map_err(|_| "unexpected end of file".to_string())?;
        header.extend_from_slice(&buf);
        Ok(buf)
    };
    let mut scratch = Vec::new();
    if read(9, &mut scratch)? != LZOP_MAGIC {
        return Err("not a lzop file".into());
    }
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let mut header = Vec::new();
    let version = u16::from_be_bytes(read(2, &mut header)?.try_into().unwrap_or_default());
    read(2, &mut header)?; // library version
    if version >= 0x0940 {
        read(2, &mut header)?; // version needed to extract
    }
    let method = read(1, &mut header)?[0];
    if !(1..=3).contains(&method) {
        return Err(format!("unknown compression method {method}"));
    }
    if version >= 0x0940 {
        read(1, &mut header)?; // level
    }
    let flags = be32(&read(4, &mut header)?);
    if flags & F_H_FILTER != 0 {
        read(4, &mut header)?;
    }
    read(if version >= 0x0940 { 12 } else { 8 }, &mut header)?; // mode, mtime
    let name_len = read(1, &mut header)?[0] as usize;
    read(name_len, &mut header)?;
    let stored = be32(&read(4, &mut scratch)?);
    let computed = if flags & F_H_CRC32 != 0 { crc32(&header) } else { adler32(&header) };
    if stored != computed {
        return Err("header corrupted".into());
    }
    if flags & F_H_EXTRA_FIELD != 0 {
        let len = be32(&read(4, &mut scratch)?) as usize;
        read(len + 4, &mut scratch)?;
    }
    loop {
        let usize_ = be32(&read(4, &mut scratch)?) as usize;
        if usize_ == 0 {
            return Ok(());
        }
        let csize = be32(&read(4, &mut scratch)?) as usize;
        if csize > usize_ || usize_ > 64 << 20 {
            return Err("compressed data violation".into());
        }
        let d_check = if flags & (F_ADLER32_D | F_CRC32_D) != 0 { Some(be32(&read(4, &mut scratch)?)) } else { None };
        if csize < usize_ && flags & (F_ADLER32_C | F_CRC32_C) != 0 {
            read(4, &mut scratch)?;
        }
        let data = read(csize, &mut scratch)?;
        scratch.clear();
        let block = if csize == usize_ {
            data
        } else {
            lzokay_native::decompress_all(&data, Some(usize_)).map_err(|_| "compressed data violation".to_string())?
        };
        if block.len() != usize_ {
            return Err("compressed data violation".into());
        }
        if let Some(expected) = d_check {
            let got = if flags & F_ADLER32_D != 0 { adler32(&block) } else { crc32(&block) };
            if got != expected {
                return Err("checksum error - data corrupted".into());
            }
        }
        out.write_all(&block).map_err(|e| e.to_string())?;
    }
}

/// Adler-32 as lzop computes it.
pub fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// What `qemu-img info` would tell about an image file: format and virtual size.
pub struct ImageInfo {
    pub format: &'static str,
    pub size: u64,
}

/// Reads a qcow2 header, if the file is one that `qemu-img` can open (magic,
/// version 2 or 3): (virtual size, has backing file, has external data file).
fn qcow2_header(path: &Path) -> Option<(u64, bool, bool)> {
    let mut head = [0u8; 80];
    let mut file = File::open(path).ok()?;
    let n = file.read(&mut head).ok()?;
    let h = crate::factory::qcow2::header(&head[..n])?;
    Some((h.virtual_size, h.backing_file, h.external_data_file))
}

/// `qemu-img info` for a file read as `format` (`raw` for anything but qcow2).
pub fn image_info(path: &Path, format: &str) -> Option<ImageInfo> {
    let len = std::fs::metadata(path).ok()?.len();
    match format {
        "qcow2" => qcow2_header(path).map(|(size, _, _)| ImageInfo { format: "qcow2", size }),
        "vmdk" => Some(ImageInfo { format: "vmdk", size: len }),
        _ => Some(ImageInfo { format: "raw", size: len }),
    }
}

/// PVE's checks on an untrusted image before it lands in a storage
/// (`file_size_info($path, .., $format, 1)`; `None` = auto-detect, as for
/// ISOs); errors name the file `name`.
pub fn assert_untrusted_image(path: &Path, format: Option<&str>, name: &str) -> Result<(), String> {
    let qcow2 = qcow2_header(path);
    let format = match format {
        Some(f) => f,
        None if qcow2.is_some() => "qcow2",
        None => "raw",
    };
    match format {
        "qcow2" => {
            let Some((_, backing, data_file)) = qcow2 else {
                return Err("failed to query file information with qemu-img".into());
            };
            if data_file {
                return Err(format!("{name}: 'data-file' references are not allowed!"));
            }
            if backing {
                return Err(format!("backing file not allowed for untrusted image '{name}'!"));
            }
            Ok(())
        }
        "vmdk" => {
            let mut head = [0u8; 21];
            let n = File::open(path).and_then(|mut f| f.read(&mut head)).unwrap_or(0);
            if head[..n.min(4)] == *b"KDMV" || head[..n] == *b"# Disk DescriptorFile" {
                Ok(())
            } else {
                Err("failed to query file information with qemu-img".into())
            }
        }
        _ => Ok(()),
    }
}

/// PVE's `assert_ova_contents`: a tar archive with an `.ovf` file inside
/// (errors name the file `name`).
pub fn assert_ova_contents(path: &Path, name: &str) -> Result<(), String> {
    let failed = || format!("command 'tar -t -f {name}' failed: exit code 2");
    let mut file = File::open(path).map_err(|_| failed())?;
    let mut header = [0u8; 512];
    let mut has_ovf = false;
    let mut entries = 0;
    loop {
        if file.read_exact(&mut header).is_err() {
            break;
        }
        if header.iter().all(|b| *b == 0) {
            break;
        }
        // The header checksum: the sum of its bytes with the checksum field as spaces.
        let stored =
            String::from_utf8_lossy(&header[148..156]).trim_matches(|c: char| c == '\0' || c == ' ').to_string();
        let sum: u64 =
            header.iter().enumerate().map(|(i, b)| if (148..156).contains(&i) { 32 } else { u64::from(*b) }).sum();
        if u64::from_str_radix(&stored, 8).ok() != Some(sum) {
            return Err(failed());
        }
        let name_end = header[..100].iter().position(|b| *b == 0).unwrap_or(100);
        let name = String::from_utf8_lossy(&header[..name_end]).to_string();
        let size_text =
            String::from_utf8_lossy(&header[124..136]).trim_matches(|c: char| c == '\0' || c == ' ').to_string();
        let size = u64::from_str_radix(&size_text, 8).map_err(|_| failed())?;
        has_ovf |= name.ends_with(".ovf");
        entries += 1;
        let skip = size.div_ceil(512) * 512;
        std::io::copy(&mut (&mut file).take(skip), &mut std::io::sink()).map_err(|_| failed())?;
    }
    if entries == 0 {
        return Err(failed());
    }
    if !has_ovf {
        return Err("ova archive has no .ovf file inside".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_names_follow_pve_rules() {
        assert!(is_iso_name("talos.ISO") && is_iso_name("x.img") && !is_iso_name("x.qcow2") && !is_iso_name(".iso"));
        assert_eq!(vztmpl_ext("debian.tar.zst").as_deref(), Some("zst"));
        assert_eq!(vztmpl_ext("debian.tar"), None);
        assert_eq!(upload_import_format("talos.raw"), Some("raw"));
        assert_eq!(upload_import_format("talos.RAW"), None);
        assert_eq!(upload_import_format("talos.img"), None);
        assert_eq!(upload_import_format(".qcow2"), None);
        assert_eq!(import_format("a.ovf").as_deref(), Some("ovf"));
        assert_eq!(backup_format("vzdump-qemu-100-2024_01_01-00_00_00.vma.zst").as_deref(), Some("vma.zst"));
        assert_eq!(parse_image_name("vm-100-disk-0.qcow2").unwrap(), (100, "qcow2".to_string()));
        assert_eq!(parse_image_name("disk.raw").unwrap_err(), "unable to parse volume filename 'disk.raw'");
    }

    #[test]
    fn adler32_matches_the_reference() {
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
