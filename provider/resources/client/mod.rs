//! `proxmox-talos:client:*`: files for Talos API clients (`talosctl`).

pub mod get_configuration;
