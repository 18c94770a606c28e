//! `multipart/form-data` upload bodies, read the way pveproxy reads them
//! (pve-http-server's `file_upload_multipart`): before the file only the text
//! fields `content`, `checksum-algorithm` and `checksum` are taken, in that
//! order; the file part must be named `filename` and carry the client's file
//! name (which becomes the `filename` parameter); the file data runs up to the
//! closing boundary. Anything else aborts the upload with a 501, as PVE does.
//!
//! Owns: parsing such a body and spooling the file part to the state
//! directory ([`spool`]). Must not: know endpoints (the server calls it for
//! `POST .../upload`).

use std::io::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memchr::memmem;

/// A parsed upload body.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    /// The text fields, in order.
    pub fields: Vec<(String, String)>,
    /// The client's name of the file part.
    pub filename: String,
    /// Where the file data is in the body.
    pub data: Range<usize>,
}

/// PVE's `parse_content_type`: the type and the `boundary` parameter (taken verbatim).
fn content_type(value: &str) -> (String, Option<String>) {
    let mut parts = value.split([';', ',']).map(str::trim);
    let ct = parts.next().unwrap_or("").to_string();
    let boundary = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim() == "boundary" && !v.trim().is_empty()).then(|| v.trim().to_string())
    });
    (ct, boundary)
}

/// Whether a Content-Type header is a multipart one.
pub fn is_multipart(value: &str) -> bool {
    value.trim_start().to_ascii_lowercase().starts_with("multipart/")
}

/// One part's header block: (disposition, field name, client file name) and where its data starts.
fn part_header(body: &[u8], at: usize) -> Option<(String, String, Option<String>, usize)> {
    let end = memmem::find(&body[at..], b"\r\n\r\n")
        .map(|i| (at + i, 4))
        .or_else(|| memmem::find(&body[at..], b"\n\n").map(|i| (at + i, 2)))?;
    let header = std::str::from_utf8(&body[at..end.0]).ok()?;
    let first = header.lines().next()?.trim_end_matches('\r');
    let rest = first.strip_prefix("Content-Disposition: ")?;
    let (disposition, rest) = rest.split_once("; name=\"")?;
    let (name, rest) = rest.split_once('"')?;
    let filename = rest.strip_prefix("; filename=\"").and_then(|r| r.split_once('"')).map(|(f, _)| f.to_string());
    Some((disposition.to_string(), name.to_string(), filename, end.0 + end.1))
}

/// Parses an upload body with the request's Content-Type; errors are PVE's texts.
pub fn parse(ctype: &str, body: &[u8]) -> Result<Upload, String> {
    let (ct, boundary) = content_type(ctype);
    let Some(boundary) = boundary.filter(|_| ct == "multipart/form-data") else {
        return Err(format!("upload 'Content-Type '{ctype}' not implemented"));
    };
    let failed = || "upload failed".to_string();
    let delim = format!("--{boundary}");
    let close = format!("--{boundary}--");
    // The first delimiter line (anything before it is skipped).
    let mut at = memmem::find(body, delim.as_bytes()).ok_or_else(failed)?;
    let mut expected = ["content", "checksum-algorithm", "checksum"].iter();
    let mut fields = Vec::new();
    loop {
        let line_end = memmem::find(&body[at..], b"\n").map(|i| at + i + 1).ok_or_else(failed)?;
        if body[at + delim.len()..line_end].iter().any(|b| !matches!(b, b'\r' | b'\n')) {
            return Err(failed());
        }
        let (disposition, name, filename, data_start) = part_header(body, line_end).ok_or_else(failed)?;
        if disposition != "form-data" {
            return Err(format!("wrong Content-Disposition '{disposition}' in multipart, expected 'form-data'"));
        }
        if let Some(filename) = filename {
            if name != "filename" {
                return Err(format!("wrong field name '{name}' for file upload, expected 'filename'"));
            }
            let end = memmem::find(&body[data_start..], close.as_bytes()).map(|i| data_start + i).ok_or_else(failed)?;
            let mut data_end = end;
            if body[..data_end].ends_with(b"\r\n") && data_end - 2 >= data_start {
                data_end -= 2;
            } else if body[..data_end].ends_with(b"\n") && data_end > data_start {
                data_end -= 1;
            }
            return Ok(Upload { fields, filename: filename.trim().to_string(), data: data_start..data_end });
        }
        // A text field must be the next of content, checksum-algorithm, checksum.
        if !expected.any(|e| *e == name) {
            return Err(failed());
        }
        let next = memmem::find(&body[data_start..], delim.as_bytes()).map(|i| data_start + i).ok_or_else(failed)?;
        let value = String::from_utf8_lossy(&body[data_start..next]).trim().to_string();
        fields.push((name, value));
        at = next;
    }
}

/// Writes the file part to `STATE/upload-tmp/pveupload-HEX` and returns the
/// path and the name PVE would have given it (`/var/tmp/pveupload-HEX`).
pub fn spool(state_dir: &Path, data: &[u8]) -> Result<(PathBuf, String), String> {
    let mut random = [0u8; 16];
    getrandom::getrandom(&mut random).map_err(|e| e.to_string())?;
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let dir = state_dir.join("upload-tmp");
    std::fs::create_dir_all(&dir).map_err(|e| format!("unable to create temporary upload file: {e}"))?;
    let path = dir.join(format!("pveupload-{hex}"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| format!("unable to create temporary upload file '{}': {e}", path.display()))?;
    file.write_all(data).map_err(|e| format!("write to temporary file failed - {e}"))?;
    Ok((path, format!("/var/tmp/pveupload-{hex}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[(&str, Option<&str>, &str)]) -> Vec<u8> {
        let mut b = Vec::new();
        for (name, filename, data) in parts {
            b.extend_from_slice(b"--XyZ\r\n");
            match filename {
                Some(f) => b.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
                ),
                None => b.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
            }
            b.extend_from_slice(data.as_bytes());
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(b"--XyZ--\r\n");
        b
    }

    #[test]
    fn fields_then_the_file() {
        let b =
            body(&[("content", None, "iso"), ("checksum", None, "abc"), ("filename", Some("x.iso"), "DATA\r\n--X")]);
        let up = parse("multipart/form-data; boundary=XyZ", &b).unwrap();
        assert_eq!(up.fields, vec![("content".into(), "iso".into()), ("checksum".into(), "abc".into())]);
        assert_eq!(up.filename, "x.iso");
        assert_eq!(&b[up.data], b"DATA\r\n--X");
    }

    #[test]
    fn what_pveproxy_refuses() {
        let b = body(&[("checksum", None, "abc"), ("content", None, "iso"), ("filename", Some("x.iso"), "D")]);
        assert_eq!(parse("multipart/form-data; boundary=XyZ", &b).unwrap_err(), "upload failed");
        let b = body(&[("content", None, "iso"), ("file", Some("x.iso"), "D")]);
        assert_eq!(
            parse("multipart/form-data; boundary=XyZ", &b).unwrap_err(),
            "wrong field name 'file' for file upload, expected 'filename'"
        );
        let b = body(&[("content", None, "iso")]);
        assert_eq!(parse("multipart/form-data; boundary=XyZ", &b).unwrap_err(), "upload failed");
        assert_eq!(
            parse("multipart/mixed; boundary=XyZ", &b).unwrap_err(),
            "upload 'Content-Type 'multipart/mixed; boundary=XyZ' not implemented"
        );
    }
}
