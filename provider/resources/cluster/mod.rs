//! `proxmox-talos:cluster:*`: a running Talos cluster — its health
//! (`getHealth`, judged by [`health_checks`]) and the admin kubeconfig
//! (`Kubeconfig`). [`waiting`] holds what both share about waiting on nodes.

pub mod get_health;
pub mod health_checks;
pub mod kubeconfig;
pub mod waiting;
