//! Code generation for `#[derive(PulumiType)]`: the `PulumiObject` impl of a
//! struct, the `PulumiEnum` impl of a unit enum, and a `PulumiType` impl for
//! either when it has a token. Attribute parsing lives in `attrs`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Fields};

use crate::attrs;

pub fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let c = attrs::container(&input.attrs)?;
    match &input.data {
        Data::Struct(s) => expand_struct(input, &c, &s.fields),
        Data::Enum(e) => expand_enum(input, &c, e),
        Data::Union(_) => Err(syn::Error::new_spanned(&input.ident, "PulumiType cannot describe a union")),
    }
}

fn expand_struct(input: &DeriveInput, c: &attrs::ContainerAttrs, fields: &Fields) -> syn::Result<TokenStream> {
    let ident = &input.ident;
    let Fields::Named(named) = fields else {
        return Err(syn::Error::new_spanned(ident, "PulumiType needs a struct with named fields"));
    };
    let mut pushes = Vec::new();
    for f in &named.named {
        let fa = attrs::field(&f.attrs)?;
        if fa.skip {
            continue;
        }
        let ty = &f.ty;
        if fa.flatten {
            pushes.push(quote! {
                props.extend(<#ty as ::proxmox_talos::schema::PulumiObject>::properties(reg));
            });
            continue;
        }
        let rust_name = f.ident.as_ref().expect("named field").to_string();
        let name = match fa.rename {
            Some(r) => r,
            None => attrs::rename(&rust_name, c.rename_all.as_deref())?,
        };
        let description = &fa.description;
        let secret = fa.secret;
        let replace = fa.replace_on_changes;
        let default = match &fa.default {
            Some(lit) => {
                let text = lit.value();
                if let Err(e) = check_json_literal(&text) {
                    return Err(syn::Error::new_spanned(lit, format!("default must be a JSON literal: {e}")));
                }
                quote! { ::std::option::Option::Some(#text) }
            }
            None => quote! { ::std::option::Option::None },
        };
        let env = &fa.env;
        let always = fa.always;
        pushes.push(quote! {
            props.push(::proxmox_talos::schema::Property {
                name: #name,
                type_spec: <#ty as ::proxmox_talos::schema::PulumiType>::type_spec(reg),
                required: #always || !<#ty as ::proxmox_talos::schema::PulumiType>::OPTIONAL,
                description: #description,
                secret: #secret,
                replace_on_changes: #replace,
                default_json: #default,
                env: &[#(#env),*],
            });
        });
    }
    let description = &c.description;
    let type_impl = c.token.as_ref().map(|token| {
        quote! {
            impl ::proxmox_talos::schema::PulumiType for #ident {
                fn type_spec(reg: &mut ::proxmox_talos::schema::TypeRegistry) -> ::proxmox_talos::schema::TypeSpec {
                    reg.object::<#ident>(#token)
                }
            }
        }
    });
    Ok(quote! {
        impl ::proxmox_talos::schema::PulumiObject for #ident {
            fn description() -> &'static str { #description }
            fn properties(reg: &mut ::proxmox_talos::schema::TypeRegistry) -> ::std::vec::Vec<::proxmox_talos::schema::Property> {
                let mut props = ::std::vec::Vec::new();
                #(#pushes)*
                props
            }
        }
        #type_impl
    })
}

fn expand_enum(input: &DeriveInput, c: &attrs::ContainerAttrs, e: &syn::DataEnum) -> syn::Result<TokenStream> {
    let ident = &input.ident;
    let Some(token) = &c.token else {
        return Err(syn::Error::new_spanned(ident, "an enum needs #[pulumi(token = \"module:Name\")]"));
    };
    let mut values = Vec::new();
    for v in &e.variants {
        if !matches!(v.fields, Fields::Unit) {
            return Err(syn::Error::new_spanned(v, "PulumiType enums must have unit variants (string enums)"));
        }
        let fa = attrs::field(&v.attrs)?;
        let name = v.ident.to_string();
        let value = match fa.rename {
            Some(r) => r,
            None => attrs::rename(&name, c.rename_all.as_deref())?,
        };
        let description = &fa.description;
        values.push(quote! { (#name, #value, #description) });
    }
    let description = &c.description;
    Ok(quote! {
        impl ::proxmox_talos::schema::PulumiType for #ident {
            fn type_spec(reg: &mut ::proxmox_talos::schema::TypeRegistry) -> ::proxmox_talos::schema::TypeSpec {
                reg.enumeration(#token, #description, &[#(#values),*])
            }
        }
    })
}

/// A small JSON literal check, so a typo in `default = "..."` fails at compile time.
fn check_json_literal(text: &str) -> Result<(), String> {
    let t = text.trim();
    let ok = t == "true"
        || t == "false"
        || t == "null"
        || (t.starts_with('"') && t.ends_with('"') && t.len() >= 2)
        || t.parse::<f64>().is_ok()
        || (t.starts_with('[') && t.ends_with(']'))
        || (t.starts_with('{') && t.ends_with('}'));
    if ok {
        Ok(())
    } else {
        Err(format!("`{t}` is not a JSON value (quote strings: default = \"\\\"v1.12\\\"\")"))
    }
}
