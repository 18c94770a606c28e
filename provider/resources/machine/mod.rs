//! `proxmox-talos:machine:*`: Talos machine secrets, configuration, applying it
//! to nodes and bootstrap.
//!
//! `secrets`, `get_configuration`: local (no request); `configuration_apply`
//! and `bootstrap`: the Talos API of one node, with its pure half in
//! `apply_plan`, node access and bounded waits in `talos_node`, and the shared
//! `timeouts` input; in-place Talos upgrades in `upgrade`.

pub mod apply_plan;
pub mod bootstrap;
pub mod configuration_apply;
pub mod get_configuration;
pub mod get_disks;
pub mod scale_down;
pub mod secrets;
pub mod talos_node;
pub mod timeouts;
pub mod upgrade;
