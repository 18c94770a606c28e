//! Which plain scalars Go's YAML would read back as something other than a
//! string, so its encoder quotes them: the implicit typing of
//! `go.yaml.in/yaml/v4` and `gopkg.in/yaml.v3` (null, booleans, Go `strconv`
//! integers and floats, the timestamps Go's `time.Parse` accepts in four
//! layouts) plus the YAML 1.1 forms the encoders still quote for older readers
//! (`yes`/`no`/`on`/`off`, base-60 floats, and in yaml/v4 the merge key `<<`).
//!
//! Owns: [`plain_allowed`], a re-implementation of those rules (not of any Go
//! code), checked against the real encoders by `tests/talos_roundtrip.rs`
//! (yaml/v4, through machinery) and the schematic golden vectors (yaml.v3).
//! Must not: decide between quote styles (that is the emitter's analysis).

use super::Flavour;

/// Words Go resolves to null, booleans, special floats or the merge key.
const RESERVED: &[&str] = &[
    "", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", ".nan", ".NaN", ".NAN", ".inf",
    ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", "-0", "-0.0", "<<",
];

/// YAML 1.1 booleans that YAML 1.2 reads as strings; Go quotes them anyway.
const OLD_BOOLS: &[&str] =
    &["y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N", "no", "No", "NO", "off", "Off", "OFF"];

/// True when Go's encoder asks for the plain style for `s` (otherwise it asks
/// for double quotes). yaml.v3 resolves `<<` as a string and writes it plain.
pub(super) fn plain_allowed(s: &str, flavour: Flavour) -> bool {
    !needs_quotes(s) || (flavour == Flavour::YamlV3 && s == "<<")
}

/// True when go-yaml v4's encoder would not write `s` as a plain scalar
/// because a reader would take it for another type (so it is double-quoted).
fn needs_quotes(s: &str) -> bool {
    !resolves_to_string(s) || OLD_BOOLS.contains(&s) || s == "<<" || is_base60_float(s)
}

/// Go decides by the first byte which typed forms are even tried.
fn resolves_to_string(s: &str) -> bool {
    let Some(&first) = s.as_bytes().first() else { return false };
    match first {
        b'+' | b'-' | b'0'..=b'9' => !RESERVED.contains(&s) && !is_number_or_timestamp(s),
        b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~' => !RESERVED.contains(&s),
        b'.' => !RESERVED.contains(&s) && !is_dot_float(s),
        _ => true,
    }
}

/// A timestamp, or (underscores removed) a Go integer or a YAML-style float.
fn is_number_or_timestamp(s: &str) -> bool {
    if is_timestamp(s) {
        return true;
    }
    let plain: String = s.chars().filter(|&c| c != '_').collect();
    parse_int(&plain) || parse_uint_base0(&plain).is_some() || (is_yaml_float(&plain) && finite(&plain))
}

/// Go's `strconv.ParseFloat` overflow is an error (so the text stays a string);
/// underflow to zero is not.
fn finite(decimal: &str) -> bool {
    decimal.parse::<f64>().is_ok_and(f64::is_finite)
}

/// `strconv.ParseUint(s, 0, 64)` for text without underscores: `0b`/`0o`/`0x`
/// prefixes (only with at least one more character), a leading `0` for octal.
fn parse_uint_base0(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let (base, digits) = match b {
        [] => return None,
        [b'0', p, _, ..] if p.eq_ignore_ascii_case(&b'b') => (2, &b[2..]),
        [b'0', p, _, ..] if p.eq_ignore_ascii_case(&b'o') => (8, &b[2..]),
        [b'0', p, _, ..] if p.eq_ignore_ascii_case(&b'x') => (16, &b[2..]),
        [b'0', ..] => (8, &b[1..]),
        _ => (10, b),
    };
    digits.iter().try_fold(0u64, |n, &c| {
        let d = match c.to_ascii_lowercase() {
            c @ b'0'..=b'9' => u64::from(c - b'0'),
            c @ b'a'..=b'z' => u64::from(c - b'a') + 10,
            _ => return None,
        };
        (d < base).then_some(())?;
        n.checked_mul(base)?.checked_add(d)
    })
}

/// `strconv.ParseInt(s, 0, 64)`: an optional sign, then [`parse_uint_base0`] in range.
fn parse_int(s: &str) -> bool {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let limit = 1u64 << 63;
    parse_uint_base0(rest).is_some_and(|n| if negative { n <= limit } else { n < limit })
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$` (Go's
/// `yamlStyleFloat`; also used by `config::yaml_read` when reading).
pub(crate) fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
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
    i == b.len()
}

/// `strconv.ParseFloat` on text starting with `.`: digits (underscores only
/// between digits), an optional exponent, finite.
fn is_dot_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 1;
    let run = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
            *i += 1;
        }
        b[start..*i].iter().any(u8::is_ascii_digit)
    };
    if !run(&mut i) {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !b.get(i).is_some_and(u8::is_ascii_digit) || !run(&mut i) {
            return false;
        }
    }
    let plain: String = s.chars().filter(|&c| c != '_').collect();
    i == b.len() && underscores_between_digits(s) && finite(&plain)
}

/// Go's rule for `_` in numbers: each one sits between two digits.
fn underscores_between_digits(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().all(|(i, &c)| {
        c != b'_' || (i > 0 && b[i - 1].is_ascii_digit() && b.get(i + 1).is_some_and(u8::is_ascii_digit))
    })
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$` (YAML 1.1 sexagesimal).
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while b.get(i) == Some(&b':') {
        let two =
            b.get(i + 1).is_some_and(|c| (b'0'..=b'5').contains(c)) && b.get(i + 2).is_some_and(u8::is_ascii_digit);
        if two {
            i += 3;
        } else if b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i += 2;
        } else {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// A cursor over the text for the timestamp layouts.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn eat(&mut self, c: u8) -> bool {
        let ok = self.b.get(self.i) == Some(&c);
        self.i += usize::from(ok);
        ok
    }

    /// One or two digits, as Go's layouts `1`, `2`, `15`, `4`, `5` read them.
    fn short_number(&mut self) -> Option<u32> {
        let digit = |j: usize| self.b.get(j).filter(|c| c.is_ascii_digit()).map(|c| u32::from(c - b'0'));
        let first = digit(self.i)?;
        match digit(self.i + 1) {
            Some(second) => {
                self.i += 2;
                Some(first * 10 + second)
            }
            None => {
                self.i += 1;
                Some(first)
            }
        }
    }

    fn done(&self) -> bool {
        self.i == self.b.len()
    }
}

/// What Go reads as a timestamp: `YYYY-M-D`, optionally followed by `T`, `t`
/// or spaces and `h:m:s`, an optional fraction, and (after `T`/`t`) a zone
/// `Z` or `±hh:mm`.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let year: u32 = s[..4].parse().unwrap_or(0);
    let mut c = Cursor { b, i: 5 };
    let Some(month) = c.short_number().filter(|m| (1..=12).contains(m)) else { return false };
    if !c.eat(b'-') {
        return false;
    }
    let Some(day) = c.short_number() else { return false };
    if day < 1 || day > days_in(month, year) {
        return false;
    }
    if c.done() {
        return true;
    }
    let start = c.i;
    [b'T', b't', b' '].iter().any(|&sep| {
        c.i = start;
        time_of_day(&mut c, sep)
    })
}

/// The part after the date, for one of Go's three datetime layouts.
fn time_of_day(c: &mut Cursor<'_>, sep: u8) -> bool {
    if sep == b' ' {
        // A space in a Go layout matches any run of spaces.
        if !c.eat(b' ') {
            return false;
        }
        while c.eat(b' ') {}
    } else if !c.eat(sep) {
        return false;
    }
    let hms = [(24, true), (60, true), (60, false)];
    for (limit, colon) in hms {
        match c.short_number() {
            Some(n) if n < limit => {}
            _ => return false,
        }
        if colon && !c.eat(b':') {
            return false;
        }
    }
    // Optional fraction: `.` or `,` and at least one digit (any number of them).
    if matches!(c.b.get(c.i), Some(b'.' | b',')) && c.b.get(c.i + 1).is_some_and(u8::is_ascii_digit) {
        c.i += 1;
        while c.b.get(c.i).is_some_and(u8::is_ascii_digit) {
            c.i += 1;
        }
    }
    if sep == b' ' {
        return c.done();
    }
    if c.eat(b'Z') {
        return c.done();
    }
    // `±hh:mm` with two-digit fields; Go allows hours up to 24 and minutes up to 60.
    let rest = &c.b[c.i..];
    let two = |x: &[u8]| x.iter().all(u8::is_ascii_digit).then(|| u32::from(x[0] - b'0') * 10 + u32::from(x[1] - b'0'));
    rest.len() == 6
        && matches!(rest[0], b'+' | b'-')
        && rest[3] == b':'
        && two(&rest[1..3]).is_some_and(|h| h <= 24)
        && two(&rest[4..6]).is_some_and(|m| m <= 60)
}

fn days_in(month: u32, year: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_plain_scalars_need_quotes() {
        let typed = [
            "",
            "~",
            "null",
            "true",
            "FALSE",
            "yes",
            "Off",
            "y",
            "<<",
            "0",
            "-0",
            "12",
            "+12",
            "-12",
            "1_000",
            "1_",
            "1__0",
            "0x1F",
            "0o17",
            "0b101",
            "017",
            "09",
            "1.5",
            "1.",
            ".5",
            "-.5",
            "1e3",
            "1E-3",
            "+.inf",
            ".NaN",
            ".5_5",
            "18446744073709551615",
            "-9223372036854775808",
            "99999999999999999999",
            "1:20",
            "-1:20:30.5",
            "2001-12-14",
            "2001-1-2",
            "2024-02-29",
            "2001-12-14T21:59:43.10Z",
            "2001-12-14t21:59:43+05:30",
            "2001-12-14 21:59:43",
            "2001-12-14   1:2:3.456789",
        ];
        for s in typed {
            assert!(needs_quotes(s), "{s:?} should be quoted");
        }
    }

    #[test]
    fn strings_that_look_numeric_stay_plain() {
        let strings = [
            "talos-cluster",
            "1e999",
            "0x",
            "0b",
            "0xg",
            "1-2",
            "192.168.1.210",
            "fd00::1",
            "2023-02-29",
            "2001-13-01",
            "2001-12-14T",
            "2001-12-14T25:00:00Z",
            "2001-12-14 21:59:43Z",
            "12:60",
            "1:2:3:",
            "yess",
            "nul",
            "-",
            "+",
            ".",
            "..",
            "1.2.3",
            "2001-12-14t21:59:43+5:30",
            "._",
            ".5_",
            "._5e1",
            "2001-12-14T21:59:43",
        ];
        for s in strings {
            assert!(!needs_quotes(s), "{s:?} should stay plain");
        }
    }

    #[test]
    fn integers_follow_go_strconv() {
        assert_eq!(parse_uint_base0("0"), Some(0));
        assert_eq!(parse_uint_base0("0x"), None);
        assert_eq!(parse_uint_base0("0x10"), Some(16));
        assert_eq!(parse_uint_base0("010"), Some(8));
        assert_eq!(parse_uint_base0("08"), None);
        assert!(parse_int("-9223372036854775808"));
        assert!(!parse_int("9223372036854775808"));
        assert!(!parse_int("+"));
    }
}
