//! `#[derive(PulumiType)]`: a Rust type declares its Pulumi schema once.
//!
//! Layout: [`attrs`] reads the attributes (ours and serde's, so the wire names have
//! one source of truth), [`expand`] writes the `PulumiObject` / `PulumiType` impls.
//! Descriptions come from doc comments. Field options, in `#[pulumi(...)]`:
//! `secret`, `replace_on_changes`, `default = "<json>"`, `env = "VAR"` (repeatable).
//! Container options: `token = "module:Name"` makes the type a named schema type.
//! A field with a `#[pulumi(...)]` option it does not know is a compile error.

mod attrs;
mod expand;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Derives the schema of a struct (its properties) or of a unit-variant enum (a string enum).
#[proc_macro_derive(PulumiType, attributes(pulumi))]
pub fn derive_pulumi_type(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::expand(&input).unwrap_or_else(|e| e.to_compile_error()).into()
}
