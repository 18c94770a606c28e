//! The one YAML writer of the crate: output byte-identical to Go's
//! `yaml.Marshal` in `go.yaml.in/yaml/v4` (talosctl, Talos machinery:
//! secrets files, talosconfig, machine configurations) and in
//! `gopkg.in/yaml.v3` (the Image Factory, which hashes it into schematic IDs).
//!
//! Owns, by file:
//! - `value`: the document model [`Node`], Go's map key order and float text;
//! - `resolve`: which strings would read back as another type (so are quoted);
//! - `style`: the style the encoder asks for and the emitter's fallbacks;
//! - `emit`: layout and the writing of each scalar style ([`emit`]);
//! - `simple`: the checked front end for flat string documents ([`to_string`]).
//!
//! The two Go packages differ only where [`Flavour`] says; everything else
//! (layout, quoting, escapes, implicit typing) is shared.
//! Must not: parse YAML (reading uses `serde_norway`), wrap lines (Go's
//! encoders have no line width limit), or know any document's schema.

mod emit;
mod resolve;
mod simple;
mod style;
mod value;

pub use emit::emit;
pub(crate) use resolve::is_yaml_float;
pub use simple::{scalar, to_string, GoYamlError, Value, MAX_SIMPLE_KEY_BYTES};
pub use value::{format_float, go_key_order, Node};

/// Which Go YAML package's `Marshal` to reproduce. They differ (for strings
/// only) in three places, each checked against the real package: the
/// schematic golden vectors for yaml.v3, machinery for yaml/v4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// `gopkg.in/yaml.v3` v3.0.1: every string with a `\n` is a literal
    /// block, the block header is not followed by its own line break, and
    /// `<<` is written plain.
    YamlV3,
    /// `go.yaml.in/yaml/v4`: a string with a `\n` is a literal block only
    /// when it has two or more characters, one of them not whitespace
    /// (otherwise double-quoted); the header ends its line; `<<` is quoted.
    YamlV4,
}
