//! `proxmox-talos:machine:*`: Talos machine secrets, configuration and bootstrap.

pub mod secrets;
