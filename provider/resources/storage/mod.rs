//! `proxmox-talos:storage:*`: files the program puts into a Proxmox VE storage.

pub mod file;
