//! `proxmox-talos:download:*`: files Proxmox VE fetches itself.

pub mod file;
pub mod journal;
