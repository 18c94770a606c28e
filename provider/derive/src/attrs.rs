//! Attribute parsing for the derive: doc comments, `#[pulumi(...)]` and the serde
//! renames that decide wire names. No code generation here.

use syn::{Attribute, Expr, Lit, LitStr, Meta};

/// Options on the struct or enum.
#[derive(Default)]
pub struct ContainerAttrs {
    pub token: Option<LitStr>,
    pub rename_all: Option<String>,
    pub description: String,
}

/// Options on a field or enum variant.
#[derive(Default)]
pub struct FieldAttrs {
    pub secret: bool,
    pub replace_on_changes: bool,
    pub default: Option<LitStr>,
    pub env: Vec<LitStr>,
    pub rename: Option<String>,
    pub flatten: bool,
    pub skip: bool,
    /// `#[pulumi(always)]`: an `Option` output that every created (and read) resource has;
    /// `None` only while unknown in preview. Required in the schema.
    pub always: bool,
    pub description: String,
}

pub fn doc_comment(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(l) => match &l.lit {
                    Lit::Str(s) => Some(s.value()),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        })
        .map(|l| l.strip_prefix(' ').unwrap_or(&l).to_string())
        .collect();
    lines.join("\n").trim().to_string()
}

pub fn container(attrs: &[Attribute]) -> syn::Result<ContainerAttrs> {
    let mut out = ContainerAttrs { description: doc_comment(attrs), ..Default::default() };
    for attr in attrs {
        if attr.path().is_ident("pulumi") {
            attr.parse_nested_meta(|m| {
                if m.path.is_ident("token") {
                    out.token = Some(m.value()?.parse()?);
                    Ok(())
                } else {
                    Err(m.error("unknown #[pulumi] container option; expected `token = \"module:Name\"`"))
                }
            })?;
        } else if attr.path().is_ident("serde") {
            attr.parse_nested_meta(|m| {
                if m.path.is_ident("rename_all") {
                    let s: LitStr = m.value()?.parse()?;
                    out.rename_all = Some(s.value());
                } else if m.input.peek(syn::Token![=]) {
                    let _: Expr = m.value()?.parse()?;
                } else if m.input.peek(syn::token::Paren) {
                    m.parse_nested_meta(|inner| {
                        if inner.input.peek(syn::Token![=]) {
                            let _: Expr = inner.value()?.parse()?;
                        }
                        Ok(())
                    })?;
                }
                Ok(())
            })?;
        }
    }
    Ok(out)
}

pub fn field(attrs: &[Attribute]) -> syn::Result<FieldAttrs> {
    let mut out = FieldAttrs { description: doc_comment(attrs), ..Default::default() };
    for attr in attrs {
        if attr.path().is_ident("pulumi") {
            attr.parse_nested_meta(|m| {
                if m.path.is_ident("secret") {
                    out.secret = true;
                } else if m.path.is_ident("replace_on_changes") {
                    out.replace_on_changes = true;
                } else if m.path.is_ident("default") {
                    out.default = Some(m.value()?.parse()?);
                } else if m.path.is_ident("env") {
                    out.env.push(m.value()?.parse()?);
                } else if m.path.is_ident("always") {
                    out.always = true;
                } else {
                    return Err(m.error(
                        "unknown #[pulumi] field option; expected secret, replace_on_changes, always, default = \"<json>\" or env = \"VAR\"",
                    ));
                }
                Ok(())
            })?;
        } else if attr.path().is_ident("serde") {
            attr.parse_nested_meta(|m| {
                if m.path.is_ident("rename") {
                    let s: LitStr = m.value()?.parse()?;
                    out.rename = Some(s.value());
                } else if m.path.is_ident("flatten") {
                    out.flatten = true;
                } else if m.path.is_ident("skip") {
                    out.skip = true;
                } else if m.input.peek(syn::Token![=]) {
                    let _: Expr = m.value()?.parse()?;
                }
                Ok(())
            })?;
        }
    }
    Ok(out)
}

/// Applies a serde `rename_all` rule to a Rust identifier (snake_case fields or
/// PascalCase variants), as serde does.
pub fn rename(ident: &str, rule: Option<&str>) -> syn::Result<String> {
    let words = split_words(ident);
    let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    Ok(match rule {
        None => ident.to_string(),
        Some("camelCase") => {
            let mut s = lower[0].clone();
            for w in &lower[1..] {
                s.push_str(&capitalise(w));
            }
            s
        }
        Some("PascalCase") => lower.iter().map(|w| capitalise(w)).collect(),
        Some("snake_case") => lower.join("_"),
        Some("kebab-case") => lower.join("-"),
        Some("lowercase") => lower.concat(),
        Some("UPPERCASE") => lower.concat().to_uppercase(),
        Some("SCREAMING_SNAKE_CASE") => lower.join("_").to_uppercase(),
        Some(other) => {
            return Err(syn::Error::new(
                proc_macro2::Span::call_site(),
                format!("PulumiType does not know serde rename_all = \"{other}\""),
            ))
        }
    })
}

fn capitalise(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn split_words(ident: &str) -> Vec<String> {
    let ident = ident.trim_start_matches("r#");
    let mut words = Vec::new();
    for part in ident.split('_').filter(|p| !p.is_empty()) {
        let mut cur = String::new();
        let chars: Vec<char> = part.chars().collect();
        for (i, ch) in chars.iter().enumerate() {
            let boundary =
                ch.is_uppercase() && !cur.is_empty() && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            if boundary {
                words.push(std::mem::take(&mut cur));
            }
            cur.push(*ch);
        }
        if !cur.is_empty() {
            words.push(cur);
        }
    }
    if words.is_empty() {
        words.push(ident.to_string());
    }
    words
}
