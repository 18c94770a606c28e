//! The document model the emitter prints, and the two value texts Go's YAML
//! encoders derive without the emitter: map key order and float spelling.
//!
//! Owns: [`Node`] (ordered mappings, sequences, Go strings, preformatted plain
//! scalars), [`go_key_order`] (the `keyList.Less` order Go's encoders sort map
//! keys by) and [`format_float`] (`strconv.FormatFloat(f, 'g', -1, 64)` with
//! YAML's `.inf`/`.nan` spellings, as the encoders' `floatv` writes floats).
//! Must not: choose scalar styles or layout (see `style` and `emit`).

use std::cmp::Ordering;

/// A node to print.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A mapping in the order given (`{}` when empty).
    Map(Vec<(String, Node)>),
    /// A sequence (`[]` when empty).
    Seq(Vec<Node>),
    /// A Go string: quoted when plain text would read back as something else.
    Str(String),
    /// A scalar printed as is (numbers, booleans, `null`).
    Plain(String),
}

/// Go's map key order for string keys (`sort.Sort` over the encoders'
/// `keyList`): letters in code point order, runs of digits compared as
/// numbers, letters after digits after other characters.
pub fn go_key_order(a: &str, b: &str) -> Ordering {
    if key_less(a, b) {
        Ordering::Less
    } else if key_less(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

fn key_less(a: &str, b: &str) -> bool {
    let (ar, br): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut digits = false;
    for i in 0..ar.len().min(br.len()) {
        if ar[i] == br[i] {
            digits = ar[i].is_ascii_digit();
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return if digits { al } else { bl };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if (ar[i] == '0' || br[i] == '0') && ar[..i].iter().rev().take_while(|c| c.is_ascii_digit()).any(|&c| c != '0')
        {
            (an, bn) = (1, 1);
        }
        let run = |r: &[char], n: &mut i64| {
            let mut end = i;
            while end < r.len() && r[end].is_ascii_digit() {
                *n = n.wrapping_mul(10).wrapping_add(i64::from(r[end] as u8 - b'0'));
                end += 1;
            }
            end
        };
        let (ai, bi) = (run(&ar, &mut an), run(&br, &mut bn));
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ar[i] < br[i];
    }
    ar.len() < br.len()
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` as the YAML encoders write
/// floats (`.nan`, `.inf`, `-.inf` for the special values).
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.to_owned();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // Shortest round-trip digits, then Go's %e / %f choice (exponent < -4 or >= 6 for shortest).
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("exponent");
    let (sign, mantissa) = mantissa.strip_prefix('-').map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}e{esign}{:02}", exp.abs());
    }
    let point = exp + 1;
    if point <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!("{sign}{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        let (a, b) = digits.split_at(point as usize);
        format!("{sign}{a}.{b}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Moved from `config::goscalar` with the code they test.
    fn yaml_key_order(a: &str, b: &str) -> Ordering {
        go_key_order(a, b)
    }

    #[test]
    fn keys_sort_like_go_yaml() {
        let mut keys = vec!["warn", "audit-version", "a10", "a2", "audit", "enforce-version", "enforce", "a1b"];
        keys.sort_by(|a, b| yaml_key_order(a, b));
        assert_eq!(keys, ["a1b", "a2", "a10", "audit", "audit-version", "enforce", "enforce-version", "warn"]);
    }

    #[test]
    fn floats_format_like_strconv_g() {
        for (f, s) in [
            (1.0, "1"),
            (1.5, "1.5"),
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (1e21, "1e+21"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
        ] {
            assert_eq!(format_float(f), s, "{f}");
        }
    }
}
