//! Property paths: the `disks[1].size` / `tags["a.b"]` / `items[*].name` addresses of values.
//!
//! Owns [`PropertyPath`], its text form (display and parse) and wildcard matching. The text
//! syntax is the engine's own (the one used by `ignoreChanges`, `replaceOnChanges`, detailed
//! diff keys and check failures), so paths rendered here can be handed to the engine and paths
//! the engine sends can be parsed here.
//!
//! Must not: look into values beyond simple lookups, or know about the wire or JSON encodings.

use std::fmt;
use std::str::FromStr;

use super::{PropertyMap, PropertyValue};

/// One step of a [`PropertyPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathSegment {
    /// An object property name.
    Key(String),
    /// An array element index.
    Index(usize),
    /// `*`: any single property name or array index. Only meaningful in patterns (for example
    /// `ignoreChanges` entries); concrete paths produced by this module never contain it.
    Wildcard,
}

/// A path from the top of a [`PropertyMap`] down to a nested value.
///
/// The empty path denotes the top-level map itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PropertyPath {
    segments: Vec<PathSegment>,
}

/// Why a path's text form could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid property path {input:?} at byte {position}: {reason}")]
pub struct PathParseError {
    /// The text that was being parsed.
    pub input: String,
    /// Byte offset in `input` where the problem was found.
    pub position: usize,
    /// What was wrong.
    pub reason: &'static str,
}

impl PropertyPath {
    /// The empty path (the top-level map).
    pub fn root() -> Self {
        Self::default()
    }

    /// Builds a path from its segments.
    pub fn from_segments(segments: Vec<PathSegment>) -> Self {
        Self { segments }
    }

    /// The segments, outermost first.
    pub fn segments(&self) -> &[PathSegment] {
        &self.segments
    }

    /// Number of segments.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// True for the root path.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Appends a segment in place (used by walkers that push and pop while recursing).
    pub fn push(&mut self, segment: PathSegment) {
        self.segments.push(segment);
    }

    /// Removes and returns the last segment.
    pub fn pop(&mut self) -> Option<PathSegment> {
        self.segments.pop()
    }

    /// A new path with `key` appended.
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut p = self.clone();
        p.push(PathSegment::Key(key.into()));
        p
    }

    /// A new path with `index` appended.
    pub fn index(&self, index: usize) -> Self {
        let mut p = self.clone();
        p.push(PathSegment::Index(index));
        p
    }

    /// The path without its last segment, or `None` for the root.
    pub fn parent(&self) -> Option<Self> {
        let (_, rest) = self.segments.split_last()?;
        Some(Self::from_segments(rest.to_vec()))
    }

    /// True if `self` is `other` or an ancestor of it, comparing segments literally
    /// (a wildcard only equals a wildcard).
    pub fn is_prefix_of(&self, other: &PropertyPath) -> bool {
        other.segments.starts_with(&self.segments)
    }

    /// Treating `self` as a pattern, true if it matches `path` exactly: same length, and every
    /// segment equal or a wildcard in the pattern. Keys never match indices (`a.0` is not
    /// `a[0]`), as in the engine.
    pub fn matches(&self, path: &PropertyPath) -> bool {
        self.len() == path.len() && self.matches_prefix(path)
    }

    /// Treating `self` as a pattern, true if it matches `path` or an ancestor of `path`, i.e.
    /// `path` lies at or under what the pattern names. This is how the engine applies
    /// `ignoreChanges`: ignoring `disks[*]` ignores `disks[1].size`.
    pub fn matches_prefix(&self, path: &PropertyPath) -> bool {
        self.len() <= path.len() && self.segments.iter().zip(&path.segments).all(|(pat, seg)| segment_matches(pat, seg))
    }

    /// True if the path contains a [`PathSegment::Wildcard`].
    pub fn has_wildcard(&self) -> bool {
        self.segments.contains(&PathSegment::Wildcard)
    }

    /// Looks the path up in `map`. Secret wrappers and output values on the way are looked
    /// through, so a path recorded from a projection finds its value in the original map.
    /// Wildcards never match here; use [`PropertyPath::matches`] for patterns.
    pub fn get<'a>(&self, map: &'a PropertyMap) -> Option<&'a PropertyValue> {
        let (first, rest) = self.segments.split_first()?;
        let PathSegment::Key(k) = first else {
            return None;
        };
        let mut cur = map.get(k)?;
        for seg in rest {
            cur = match (cur.unwrap_wrappers(), seg) {
                (PropertyValue::Object(m), PathSegment::Key(k)) => m.get(k)?,
                (PropertyValue::Array(a), PathSegment::Index(i)) => a.get(*i)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// Parses the engine's text form. See the [`FromStr`] implementation for the grammar.
    pub fn parse(text: &str) -> Result<Self, PathParseError> {
        text.parse()
    }
}

fn segment_matches(pattern: &PathSegment, segment: &PathSegment) -> bool {
    matches!(pattern, PathSegment::Wildcard) || pattern == segment
}

/// Property names that can be written bare (`a.b`); everything else is written `["..."]`.
/// Same rule as the engine's renderer so that paths we emit look like the ones it emits.
fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

impl fmt::Display for PropertyPath {
    /// Renders `disks[1].size`, `tags["kubernetes.io/role"]`, `items[*].name`.
    ///
    /// Inside quotes only `"` is escaped (as `\"`), matching the engine's parser, which knows no
    /// other escape.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.segments.iter().enumerate() {
            match seg {
                PathSegment::Key(k) if is_identifier(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                PathSegment::Key(k) => write!(f, "[\"{}\"]", k.replace('"', "\\\""))?,
                PathSegment::Index(n) => write!(f, "[{n}]")?,
                // A bare `*` reads naturally at the root (`*` ignores everything); elsewhere the
                // bracket form avoids any doubt about what the dot binds to.
                PathSegment::Wildcard if i == 0 => f.write_str("*")?,
                PathSegment::Wildcard => f.write_str("[*]")?,
            }
        }
        Ok(())
    }
}

impl FromStr for PropertyPath {
    type Err = PathParseError;

    /// Grammar (the engine's, slightly tightened):
    ///
    /// ```text
    /// path    := first { "." name | "[" index "]" }
    /// first   := name | "[" index "]"
    /// name    := one or more characters other than "." and "["   ("*" alone = wildcard)
    /// index   := digits | "*" | '"' { '\"' | any char but '"' } '"'
    /// ```
    ///
    /// `["*"]` is a wildcard too, because the engine treats the key `*` as one wherever it
    /// appears. A `.` directly before `[` is tolerated, as the engine does for old providers.
    /// Unlike the engine, empty names (`a..b`, trailing `.`) are rejected rather than skipped.
    /// The empty string parses to the root path.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |position: usize, reason: &'static str| PathParseError { input: input.to_string(), position, reason };
        let bytes = input.as_bytes();
        let mut segments = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'.' => {
                    if segments.is_empty() {
                        return Err(err(i, "a path cannot start with '.'"));
                    }
                    i += 1;
                    match bytes.get(i) {
                        None => return Err(err(i, "a path cannot end with '.'")),
                        Some(b'.') => return Err(err(i, "empty property name")),
                        _ => {}
                    }
                }
                b'[' if bytes.get(i + 1) == Some(&b'"') => {
                    let mut key = String::new();
                    let mut j = i + 2;
                    loop {
                        // Work on chars, not bytes, so multi-byte UTF-8 keys survive intact.
                        let Some(c) = input[j..].chars().next() else {
                            return Err(err(j, "missing closing quote in property name"));
                        };
                        if c == '"' {
                            j += 1;
                            break;
                        }
                        if input[j..].starts_with("\\\"") {
                            key.push('"');
                            j += 2;
                        } else {
                            key.push(c);
                            j += c.len_utf8();
                        }
                    }
                    if bytes.get(j) != Some(&b']') {
                        return Err(err(j, "missing ']' after quoted property name"));
                    }
                    segments.push(if key == "*" { PathSegment::Wildcard } else { PathSegment::Key(key) });
                    i = j + 1;
                }
                b'[' => {
                    let Some(close) = input[i..].find(']').map(|off| i + off) else {
                        return Err(err(i, "missing ']' in array index"));
                    };
                    let inner = &input[i + 1..close];
                    if inner == "*" {
                        segments.push(PathSegment::Wildcard);
                    } else if !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit()) {
                        let n = inner.parse().map_err(|_| err(i + 1, "array index out of range"))?;
                        segments.push(PathSegment::Index(n));
                    } else {
                        return Err(err(i + 1, "array index must be digits, \"*\" or a quoted name"));
                    }
                    i = close + 1;
                }
                b']' => return Err(err(i, "unexpected ']'")),
                _ => {
                    let end = input[i..].find(['.', '[']).map_or(input.len(), |off| i + off);
                    let name = &input[i..end];
                    segments.push(if name == "*" { PathSegment::Wildcard } else { PathSegment::Key(name.to_string()) });
                    i = end;
                }
            }
        }
        Ok(Self { segments })
    }
}

impl From<Vec<PathSegment>> for PropertyPath {
    fn from(segments: Vec<PathSegment>) -> Self {
        Self::from_segments(segments)
    }
}
