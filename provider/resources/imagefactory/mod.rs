//! `proxmox-talos:imagefactory:*`: Talos Image Factory schematics and image URLs.

pub mod get_extensions_versions;
pub mod get_urls;
pub mod get_versions;
pub mod schematic;
