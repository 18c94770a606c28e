//! Go's text forms of the scalar types machine configurations use.
//!
//! Owns: Go's `time.Duration` syntax (parse and `String`), base64 as
//! `encoding/base64.StdEncoding` decodes it, and the canonical text of
//! `net/netip` addresses, prefixes and address:port pairs, MAC addresses and
//! port ranges, with Go's error wording where callers show it.
//! Must not: know about Talos types beyond their Go type names, or hold what
//! go-yaml's encoder itself decides (map key order, float text, quoting: see
//! [`goyaml`](crate::talos::goyaml)).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

const NANOS: [(&str, u64); 9] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("", 0),
];

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {s:?}");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(f) => {
                let n = f.bytes().take_while(u8::is_ascii_digit).count();
                (Some(&f[..n]), &f[n..])
            }
            None => (None, after),
        };
        if int_part.is_empty() && frac_part.is_none_or(str::is_empty) {
            return Err(invalid());
        }
        let unit_len = after.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration {s:?}"));
        }
        let Some(&(_, scale)) = NANOS.iter().find(|(u, _)| *u == unit) else {
            return Err(format!("time: unknown unit {unit:?} in duration {s:?}"));
        };
        let int: u64 = if int_part.is_empty() { 0 } else { int_part.parse().map_err(|_| invalid())? };
        let mut v = int.checked_mul(scale).ok_or_else(invalid)?;
        if let Some(frac) = frac_part {
            // Scale the fraction digit by digit, as Go does, dropping what underflows.
            let mut f: u64 = 0;
            let mut fscale: f64 = 1.0;
            for d in frac.bytes() {
                if f > (1 << 63) / 10 {
                    break;
                }
                f = f * 10 + u64::from(d - b'0');
                fscale *= 10.0;
            }
            v = v.checked_add((f as f64 * (scale as f64 / fscale)) as u64).ok_or_else(invalid)?;
        }
        total = total.checked_add(v).ok_or_else(invalid)?;
        rest = next;
    }
    if neg {
        if total > 1 << 63 {
            return Err(invalid());
        }
        return Ok((total as i128).wrapping_neg() as i64);
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// Go's `time.Duration.String`.
pub fn format_duration(d: i64) -> String {
    if d == 0 {
        return "0s".to_owned();
    }
    let neg = d < 0;
    let mut u = d.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0..1_000 => (0, "ns"),
            1_000..1_000_000 => (3, "\u{b5}s"),
            _ => (6, "ms"),
        };
        out = format!("{}{unit}", frac(u, prec));
    } else {
        let secs_frac = frac(u % 60_000_000_000, 9);
        u /= 60_000_000_000;
        out.push_str(&format!("{secs_frac}s"));
        if u > 0 {
            out = format!("{}m{out}", u % 60);
            u /= 60;
            if u > 0 {
                out = format!("{u}h{out}");
            }
        }
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// `v / 10^prec` with the fraction's trailing zeros (and a bare dot) dropped.
fn frac(v: u64, prec: u32) -> String {
    let p = 10u64.pow(prec);
    let (int, fr) = (v / p, v % p);
    if fr == 0 {
        return int.to_string();
    }
    let digits = format!("{fr:0width$}", width = prec as usize);
    format!("{int}.{}", digits.trim_end_matches('0'))
}

/// Decodes as `base64.StdEncoding.DecodeString` (padding required, line
/// breaks ignored) and returns the canonical encoding.
pub fn canonical_base64(s: &str) -> Result<String, String> {
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
    );
    let cleaned: String = s.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    let bytes = engine.decode(&cleaned).map_err(|e| match e {
        base64::DecodeError::InvalidByte(at, _) | base64::DecodeError::InvalidLastSymbol(at, _) => {
            format!("illegal base64 data at input byte {at}")
        }
        _ => format!("illegal base64 data at input byte {}", cleaned.len()),
    })?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The canonical text of a value of the Go text type `name`.
pub fn canonical_text(name: &str, text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Ok(String::new());
    }
    match name {
        "netip.Addr" | "network.Addr" => parse_addr(text).map(|(ip, zone)| addr_string(ip, zone)),
        "netip.Prefix" | "network.Prefix" => prefix(text),
        "netip.AddrPort" | "network.AddrPort" => addr_port(text),
        "nethelpers.HardwareAddr" => mac(text),
        // Sizes and CEL expressions keep their text (machinery marshals the raw input back).
        _ => Ok(text.to_owned()),
    }
}

fn parse_addr(s: &str) -> Result<(IpAddr, Option<&str>), String> {
    let fail = || format!("ParseAddr({s:?}): unable to parse IP");
    if let Ok(v4) = s.parse::<Ipv4Addr>() {
        return Ok((IpAddr::V4(v4), None));
    }
    let (addr, zone) = match s.split_once('%') {
        Some((_, "")) => return Err(format!("ParseAddr({s:?}): zone must be a non-empty string")),
        Some((a, z)) => (a, Some(z)),
        None => (s, None),
    };
    addr.parse::<Ipv6Addr>().map(|v6| (IpAddr::V6(v6), zone)).map_err(|_| fail())
}

fn addr_string(ip: IpAddr, zone: Option<&str>) -> String {
    match zone {
        Some(z) => format!("{ip}%{z}"),
        None => ip.to_string(),
    }
}

fn prefix(s: &str) -> Result<String, String> {
    let Some((addr, bits)) = s.rsplit_once('/') else {
        return Err(format!("netip.ParsePrefix({s:?}): no '/'"));
    };
    let (ip, zone) = parse_addr(addr).map_err(|e| format!("netip.ParsePrefix({s:?}): {e}"))?;
    if zone.is_some() {
        return Err(format!("netip.ParsePrefix({s:?}): IPv6 zones cannot be present in a prefix"));
    }
    let valid_digits =
        !bits.is_empty() && bits.bytes().all(|b| b.is_ascii_digit()) && !(bits.len() > 1 && bits.starts_with('0'));
    let n: u32 = match bits.parse() {
        Ok(n) if valid_digits => n,
        _ => return Err(format!("netip.ParsePrefix({s:?}): bad bits after slash: {bits:?}")),
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if n > max {
        return Err(format!("netip.ParsePrefix({s:?}): prefix length out of range"));
    }
    Ok(format!("{ip}/{n}"))
}

fn addr_port(s: &str) -> Result<String, String> {
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("invalid ip:port {s:?}, not of form ip:port"));
    };
    let port: u16 = port.parse().map_err(|_| format!("invalid port {port:?} parsing {s:?}"))?;
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let (ip, zone) = parse_addr(inner)?;
        if ip.is_ipv4() {
            return Err(format!("invalid ip:port {s:?}, square brackets can only be used with IPv6 addresses"));
        }
        return Ok(format!("[{}]:{port}", addr_string(ip, zone)));
    }
    let (ip, _) = parse_addr(host)?;
    if ip.is_ipv6() {
        return Err(format!("invalid ip:port {s:?}, IPv6 addresses must be surrounded by square brackets"));
    }
    Ok(format!("{ip}:{port}"))
}

fn mac(s: &str) -> Result<String, String> {
    let hex: String = s.chars().filter(|&c| c != ':').collect();
    if let Some(bad) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("encoding/hex: invalid byte: U+{:04X} {bad:?}", bad as u32));
    }
    if hex.len() % 2 == 1 {
        return Err("encoding/hex: odd length hex string".to_owned());
    }
    let pairs: Vec<String> = hex.as_bytes().chunks(2).map(|p| String::from_utf8_lossy(p).to_lowercase()).collect();
    Ok(pairs.join(":"))
}

/// `network.PortRange` from a `lo-hi` string: its canonical text (`lo` alone when equal).
pub fn port_range(s: &str) -> Result<String, String> {
    let invalid = || format!("invalid port range: {s:?}");
    let (lo, hi) = s.split_once('-').ok_or_else(invalid)?;
    let parse = |p: &str| if p.bytes().all(|b| b.is_ascii_digit()) { p.parse::<u16>().ok() } else { None };
    let (lo, hi) = (parse(lo).ok_or_else(invalid)?, parse(hi).ok_or_else(invalid)?);
    Ok(if lo == hi { lo.to_string() } else { format!("{lo}-{hi}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip_like_go() {
        for (input, ns, shown) in [
            ("10s", 10_000_000_000, "10s"),
            ("1m", 60_000_000_000, "1m0s"),
            ("1h30m", 5_400_000_000_000, "1h30m0s"),
            ("1.5s", 1_500_000_000, "1.5s"),
            ("100ms", 100_000_000, "100ms"),
            ("1500ns", 1_500, "1.5\u{b5}s"),
            ("-2m3.5s", -123_500_000_000, "-2m3.5s"),
            ("0", 0, "0s"),
        ] {
            assert_eq!(parse_duration(input), Ok(ns), "{input}");
            assert_eq!(format_duration(ns), shown, "{input}");
        }
        assert_eq!(parse_duration("10").unwrap_err(), "time: missing unit in duration \"10\"");
        assert_eq!(parse_duration("1d").unwrap_err(), "time: unknown unit \"d\" in duration \"1d\"");
    }

    #[test]
    fn network_text_is_canonicalised() {
        assert_eq!(canonical_text("netip.Prefix", "192.168.1.10/24"), Ok("192.168.1.10/24".into()));
        assert_eq!(canonical_text("network.Addr", "2001:DB8::1"), Ok("2001:db8::1".into()));
        assert_eq!(canonical_text("network.AddrPort", "[::1]:51820"), Ok("[::1]:51820".into()));
        assert_eq!(canonical_text("nethelpers.HardwareAddr", "AA:BB:CC:00:11:22"), Ok("aa:bb:cc:00:11:22".into()));
        assert!(canonical_text("netip.Prefix", "192.168.1.10").unwrap_err().contains("no '/'"));
        assert!(canonical_text("network.Addr", "not-an-ip").unwrap_err().contains("unable to parse IP"));
        assert_eq!(port_range("80-90"), Ok("80-90".into()));
        assert_eq!(canonical_base64("aGk="), Ok("aGk=".into()));
        assert!(canonical_base64("aGk").is_err());
    }
}
