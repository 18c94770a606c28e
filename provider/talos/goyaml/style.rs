//! Which style a scalar is written in: the style Go's encoder asks for
//! (`stringv`), then libyaml's analysis of the characters, which falls back
//! from plain to single-quoted to double-quoted (and from a literal block to
//! double quotes) when the text does not allow the style asked for.
//!
//! Owns: [`Style`], [`requested`] (the encoder's choice, where yaml.v3 and
//! yaml/v4 differ on multi-line text), [`select`] (the emitter's fallback,
//! block context only), and YAML's printable and line-break character sets.
//! Must not: write anything (see `emit`) or decide implicit typing (see
//! `resolve`).

use super::{resolve, Flavour};

/// A scalar style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// The style Go's encoder asks for for the string `s`: a literal block when
/// there is a `\n` (yaml/v4 only when the text has at least two characters
/// and one is not whitespace, otherwise double quotes), plain when the text
/// reads back as the same string, else double quotes.
pub(super) fn requested(s: &str, flavour: Flavour) -> Style {
    if s.contains('\n') {
        let literal = match flavour {
            Flavour::YamlV3 => true,
            Flavour::YamlV4 => s.chars().count() >= 2 && s.chars().any(|c| !c.is_whitespace()),
        };
        if literal {
            Style::Literal
        } else {
            Style::Double
        }
    } else if resolve::plain_allowed(s, flavour) {
        Style::Plain
    } else {
        Style::Double
    }
}

/// The style the emitter writes `value` in when `requested` was asked for.
pub(super) fn select(value: &str, requested: Style, simple_key: bool) -> Style {
    let a = analyze(value);
    let mut style = requested;
    if simple_key && a.multiline {
        style = Style::Double;
    }
    if style == Style::Plain && (!a.block_plain_allowed || (value.is_empty() && simple_key)) {
        style = Style::Single;
    }
    if style == Style::Single && !a.single_quoted_allowed {
        style = Style::Double;
    }
    if style == Style::Literal && (!a.block_allowed || simple_key) {
        style = Style::Double;
    }
    style
}

/// What the characters of a scalar allow (block context only: these
/// documents never hold a scalar inside a flow collection).
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

/// libyaml's `analyzeScalar`.
fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let last = chars.len() - 1;
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    let (mut line_breaks, mut special, mut tabs) = (false, false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) = (false, false, false, false);
    let (mut break_space, mut space_break, mut previous_space, mut previous_break) = (false, false, false, false);
    let mut preceded_by_whitespace = true;
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_whitespace = chars.get(i + 1).is_none_or(|&n| n == ' ' || n == '\t');
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@' | '`' => {
                    block_indicators = true
                }
                '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_whitespace => block_indicators = true,
                '#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if c == '\t' {
            tabs = true;
        } else if !is_printable(c) {
            special = true;
        }
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= i == last;
            break_space |= previous_break;
            (previous_space, previous_break) = (true, false);
        } else if is_break(c) {
            line_breaks = true;
            leading_break |= i == 0;
            trailing_break |= i == last;
            space_break |= previous_space;
            (previous_space, previous_break) = (false, true);
        } else {
            (previous_space, previous_break) = (false, false);
        }
        preceded_by_whitespace = c == ' ' || c == '\t' || c == '\0' || is_break(c);
    }
    let mut a = Analysis {
        multiline: line_breaks,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break || line_breaks || block_indicators {
        a.block_plain_allowed = false;
    }
    if trailing_space || space_break || special {
        a.block_allowed = false;
    }
    if break_space || space_break || tabs || special {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    a
}

/// YAML line breaks (as the emitter sees them).
pub(super) fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// The characters YAML may write as they are: `\n`, printable ASCII, and the
/// Basic Multilingual Plane above U+009F except surrogates, U+FEFF, U+FFFE and
/// U+FFFF. (Like libyaml, characters beyond the BMP count as not printable.)
pub(super) fn is_printable(c: char) -> bool {
    matches!(u32::from(c), 0x0A | 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFFFD) && c != '\u{FEFF}'
}
