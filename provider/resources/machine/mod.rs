//! `proxmox-talos:machine:*`: Talos machine secrets, configuration and bootstrap.

pub mod get_configuration;
pub mod secrets;
