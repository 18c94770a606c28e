//! `proxmox-talos:imagefactory:*`: Talos Image Factory schematics and image URLs.

pub mod get_urls;
