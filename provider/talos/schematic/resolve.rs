//! Which strings `gopkg.in/yaml.v3` may write as plain scalars: those a reader
//! would take back as the same string. Its resolver (chosen by the first byte)
//! reads null, booleans, Go `strconv` integers and floats and the timestamps
//! Go's `time.Parse` accepts in four layouts; the encoder also quotes YAML 1.1
//! booleans (`yes`, `off`, …) and base-60 floats (`1:20`) for older readers.
//!
//! Owns: [`plain_reads_back_as_string`], a re-implementation of those rules
//! checked against the real encoder by the golden vectors in `tests.rs`.
//! Must not: choose between the quoted styles (that is the emitter's analysis).

/// Words the resolver maps to null, booleans and special floats.
const RESOLVED_WORDS: &[&str] = &[
    "", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", ".nan", ".NaN", ".NAN", ".inf",
    ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
];

/// YAML 1.1 booleans, quoted by the encoder although yaml.v3 reads them as strings.
const OLD_BOOLS: &[&str] =
    &["y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N", "no", "No", "NO", "off", "Off", "OFF"];

/// True when yaml.v3's encoder asks for the plain style for `s`.
pub(super) fn plain_reads_back_as_string(s: &str) -> bool {
    resolves_to_string(s) && !OLD_BOOLS.contains(&s) && !is_base60_float(s)
}

fn resolves_to_string(s: &str) -> bool {
    let hinted = match s.as_bytes().first() {
        None => true,
        Some(c) => {
            matches!(c, b'+' | b'-' | b'0'..=b'9' | b'.' | b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F')
                || matches!(c, b'o' | b'O' | b'~')
        }
    };
    if !hinted {
        return true;
    }
    if RESOLVED_WORDS.contains(&s) {
        return false;
    }
    match s.as_bytes()[0] {
        b'.' => !is_dot_float(s),
        b'+' | b'-' | b'0'..=b'9' => !(is_timestamp(s) || is_number(s)),
        _ => true,
    }
}

/// An integer or float once underscores are dropped, as the resolver tries them.
fn is_number(s: &str) -> bool {
    let plain: String = s.chars().filter(|&c| c != '_').collect();
    if go_parse_int(&plain, None) || go_parse_uint(&plain, None).is_some() || is_float_syntax(&plain, true) {
        return true;
    }
    let explicit = |prefix: &str, base: u32| {
        if let Some(rest) = plain.strip_prefix(prefix) {
            return go_parse_int(rest, Some(base)) || go_parse_uint(rest, Some(base)).is_some();
        }
        plain.strip_prefix(&format!("-{prefix}")).is_some_and(|rest| go_parse_int(&format!("-{rest}"), Some(base)))
    };
    explicit("0b", 2) || explicit("0o", 8)
}

/// `strconv.ParseUint(s, base, 64)`; `None` is base 0 (prefixes `0b`, `0o`,
/// `0x` with at least one more character, or a leading `0` for octal).
fn go_parse_uint(s: &str, base: Option<u32>) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let b = s.as_bytes();
    let (base, digits) = match base {
        Some(base) => (base, s),
        None if b[0] != b'0' => (10, s),
        None if b.len() >= 3 && b[1].eq_ignore_ascii_case(&b'b') => (2, &s[2..]),
        None if b.len() >= 3 && b[1].eq_ignore_ascii_case(&b'o') => (8, &s[2..]),
        None if b.len() >= 3 && b[1].eq_ignore_ascii_case(&b'x') => (16, &s[2..]),
        None => (8, &s[1..]),
    };
    let mut n: u64 = 0;
    for c in digits.chars() {
        let d = c.to_digit(36).filter(|&d| d < base)?;
        n = n.checked_mul(u64::from(base))?.checked_add(u64::from(d))?;
    }
    Some(n)
}

/// `strconv.ParseInt(s, base, 64)` succeeds: an optional sign, then
/// [`go_parse_uint`] within the range of an `int64`.
fn go_parse_int(s: &str, base: Option<u32>) -> bool {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    match go_parse_uint(rest, base) {
        Some(n) if negative => n <= 1 << 63,
        Some(n) => n < 1 << 63,
        None => false,
    }
}

/// A finite float: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
/// (`signed_or_integral`: the resolver's YAML-style form; otherwise only the
/// `.5e3` form Go's `ParseFloat` accepts after a leading dot).
fn is_float_syntax(s: &str, signed_or_integral: bool) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if signed_or_integral && matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let whole = if signed_or_integral { digits(&mut i) } else { 0 };
    if b.get(i) == Some(&b'.') {
        i += 1;
        let fraction = digits(&mut i);
        if whole == 0 && fraction == 0 {
            return false;
        }
    } else if whole == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len() && s.parse::<f64>().is_ok_and(f64::is_finite)
}

/// Go's `strconv.ParseFloat` on text starting with a dot: `.5`, `.5e3`, with
/// underscores allowed only between two digits (Go literal syntax).
fn is_dot_float(s: &str) -> bool {
    let b = s.as_bytes();
    let between_digits = |i: usize| i > 0 && b[i - 1].is_ascii_digit() && b.get(i + 1).is_some_and(u8::is_ascii_digit);
    if !(0..b.len()).filter(|&i| b[i] == b'_').all(between_digits) {
        return false;
    }
    is_float_syntax(&s.replace('_', ""), false)
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while b.get(i) == Some(&b':') {
        let start = i + 1;
        let mut j = start;
        while j < b.len() && j < start + 2 && b[j].is_ascii_digit() {
            j += 1;
        }
        let ok = match &b[start..j] {
            [_] => true,
            [first, _] => *first <= b'5',
            _ => false,
        };
        if !ok {
            return false;
        }
        groups += 1;
        i = j;
    }
    if groups == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// Go's `time.Parse` with `2006-1-2T15:4:5.999999999Z07:00` (also with `t`),
/// `2006-1-2 15:4:5.999999999` and `2006-1-2`, after yaml.v3's fast check of
/// exactly four leading digits and a dash.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let year: u32 = s[..4].parse().unwrap_or(0);
    let Some((month, r)) = getnum(&b[5..]) else { return false };
    let Some(r) = r.strip_prefix(b"-") else { return false };
    let Some((day, r)) = getnum(r) else { return false };
    if !(1..=12).contains(&month) || day < 1 || day > days_in(month, year) {
        return false;
    }
    match r.first() {
        None => true,
        Some(b'T' | b't') => time_of_day(&r[1..]).is_some_and(zone),
        Some(b' ') => {
            let spaces = r.iter().take_while(|&&c| c == b' ').count();
            time_of_day(&r[spaces..]).is_some_and(<[u8]>::is_empty)
        }
        Some(_) => false,
    }
}

/// `15:4:5` with an optional `.999999999` (or `,`) fraction; the rest.
fn time_of_day(b: &[u8]) -> Option<&[u8]> {
    let (hour, r) = getnum(b)?;
    let (minute, r) = getnum(r.strip_prefix(b":")?)?;
    let (second, mut r) = getnum(r.strip_prefix(b":")?)?;
    if hour >= 24 || minute >= 60 || second >= 60 {
        return None;
    }
    if r.len() >= 2 && matches!(r[0], b'.' | b',') && r[1].is_ascii_digit() {
        let digits = r[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        r = &r[1 + digits..];
    }
    Some(r)
}

/// `Z07:00`: `Z`, or `±hh:mm` (hours up to 24, minutes up to 60), and nothing after.
fn zone(b: &[u8]) -> bool {
    match b {
        [b'Z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| (a.is_ascii_digit() && b.is_ascii_digit()).then(|| (a - b'0') * 10 + (b - b'0'));
            matches!((two(*h1, *h2), two(*m1, *m2)), (Some(h), Some(m)) if h <= 24 && m <= 60)
        }
        _ => false,
    }
}

/// One or two digits, as Go's non-fixed `getnum`.
fn getnum(b: &[u8]) -> Option<(u32, &[u8])> {
    let d = |i: usize| b.get(i).filter(|c| c.is_ascii_digit()).map(|c| u32::from(c - b'0'));
    let first = d(0)?;
    Some(match d(1) {
        Some(second) => (first * 10 + second, &b[2..]),
        None => (first, &b[1..]),
    })
}

fn days_in(month: u32, year: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}
