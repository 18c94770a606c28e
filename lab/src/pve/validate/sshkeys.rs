//! cloud-init `sshkeys`: the value is URL-encoded (the schema's `urlencoded`
//! format, checked in parameter verification); qemu-server's create, update
//! and clone handlers then decode it (`URI::Escape::uri_unescape`) and run
//! `PVE::Tools::validate_ssh_public_keys`, which feeds every non-blank line to
//! `ssh-keygen -l` and fails with "SSH public key validation error" (a 500,
//! not a parameter error).
//!
//! Owns: [`uri_unescape`] and [`validate_ssh_public_keys`], which stands in
//! for `ssh-keygen -l` (OpenSSH 10 of Debian trixie, so no DSA keys): each
//! line must hold a known key type followed by base64 key data that encodes
//! that type and well-formed key fields; options (authorized_keys) or host
//! names (known_hosts) may come before it, a comment after it.
//! Must not: know endpoints or HTTP.

/// PVE's error for a line that is not an SSH public key.
pub const SSH_KEY_ERROR: &str = "SSH public key validation error\n";

/// `URI::Escape::uri_unescape`: `%XX` decoded, everything else kept (`+` too).
pub fn uri_unescape(s: &str) -> String {
    crate::pve::apidoc::percent_decode(s)
}

/// `PVE::Tools::validate_ssh_public_keys` of already decoded text (one key
/// per line; blank lines are skipped).
pub fn validate_ssh_public_keys(raw: &str) -> Result<(), String> {
    for line in raw.split('\n') {
        if line.trim().is_empty() {
            continue;
        }
        if !is_public_key_line(line) {
            return Err(SSH_KEY_ERROR.to_string());
        }
    }
    Ok(())
}

fn is_public_key_line(line: &str) -> bool {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    if tokens.first().is_none_or(|t| t.starts_with('#')) {
        return false;
    }
    let Some(at) = tokens.iter().position(|t| key_fields(t).is_some()) else { return false };
    let Some(blob) = tokens.get(at + 1).and_then(|data| base64_decode(data)) else { return false };
    let Some(fields) = length_prefixed(&blob) else { return false };
    fields.first().is_some_and(|t| *t == tokens[at].as_bytes()) && fields_fit(tokens[at], &fields)
}

/// The number of length-prefixed fields of a key type's blob (type included),
/// `None` for types OpenSSH 10 does not read. Certificates have more fields
/// than checked here (at least nonce and key).
fn key_fields(key_type: &str) -> Option<usize> {
    if key_type.ends_with("-cert-v01@openssh.com") {
        let base = key_type.trim_end_matches("-cert-v01@openssh.com");
        return key_fields(base).or(key_fields(&format!("{base}@openssh.com"))).map(|_| 3);
    }
    match key_type {
        "ssh-ed25519" => Some(2),
        "ssh-rsa" | "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384" | "ecdsa-sha2-nistp521" => Some(3),
        "sk-ssh-ed25519@openssh.com" => Some(3),
        "sk-ecdsa-sha2-nistp256@openssh.com" => Some(4),
        _ => None,
    }
}

fn fields_fit(key_type: &str, fields: &[&[u8]]) -> bool {
    let Some(expected) = key_fields(key_type) else { return false };
    if key_type.ends_with("-cert-v01@openssh.com") {
        return fields.len() >= expected;
    }
    if fields.len() != expected || fields.iter().skip(1).any(|f| f.is_empty()) {
        return false;
    }
    match key_type {
        "ssh-ed25519" | "sk-ssh-ed25519@openssh.com" => fields[1].len() == 32,
        t if t.contains("ecdsa-sha2-") => t.contains(&*String::from_utf8_lossy(fields[1])),
        _ => true,
    }
}

/// An SSH wire-format blob as its `uint32 length || bytes` fields, `None` if truncated.
fn length_prefixed(mut blob: &[u8]) -> Option<Vec<&[u8]>> {
    let mut fields = Vec::new();
    while !blob.is_empty() {
        let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
        let field = blob.get(4..4 + len)?;
        fields.push(field);
        blob = &blob[4 + len..];
    }
    Some(fields)
}

/// Standard base64 with optional `=` padding; `None` if malformed.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let digits = s.trim_end_matches('=');
    let padded = s.len() != digits.len();
    if s.len() - digits.len() > 2 || digits.len() % 4 == 1 || (padded && !s.len().is_multiple_of(4)) {
        return None;
    }
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in digits.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}
