//! `MachineService/Upgrade` as Talos 1.12 answers it: the installer image is validated (pulled),
//! a control plane checks that every etcd member of its cluster is healthy (unless `force`),
//! the node answers "Upgrade request received" and reboots, and comes back running the
//! installer image's version. The image on the disk ([`TalosInstall::image`]) outlives reboots
//! and VM restarts; the VM's boot disk only names the first install.
//!
//! Lab differences (ADR 0012): "pulling" an installer image means its tag is a version the lab
//! factory builds (`factory::catalog`) and, for an Image Factory installer
//! (`<host>/<platform>-installer/<schematic>:<version>`), the schematic ID has the factory's
//! shape; the lab keeps no registry. Extensions are not reported (Talos lists them as COSI
//! resources, which the lab does not serve).
//!
//! Owns: the validation and the answer's errors. Must not: bind sockets.

use proxmox_talos::talos::api::machine;
use tonic::Status;

use super::machine_config::MachineConfig;
use super::node::NodeView;
use super::TalosNodes;
use crate::factory::catalog;
use crate::pve::model::TalosInstall;

/// Why an installer image cannot be "pulled", in the words of containerd's resolver.
fn pull_error(image: &str) -> Option<String> {
    let not_found = |why: &str| Some(format!("failed to pull image \"{image}\": {why}"));
    let Some((repository, tag)) = image.rsplit_once(':').filter(|(r, t)| !r.is_empty() && !t.contains('/')) else {
        return not_found("invalid reference format");
    };
    if !catalog::has_version(tag) {
        return not_found(&format!("{repository}:{tag}: not found"));
    }
    let mut path = repository.rsplit('/');
    let (last, parent) = (path.next().unwrap_or_default(), path.next().unwrap_or_default());
    let factory_installer = parent.ends_with("installer") || parent.contains("installer-");
    if factory_installer && !(last.len() == 64 && last.bytes().all(|b| b.is_ascii_hexdigit())) {
        return not_found(&format!("{repository}:{tag}: not found"));
    }
    None
}

/// Validates and starts an upgrade of `node` to `req.image`.
pub(super) fn upgrade(
    nodes: &TalosNodes,
    node: &NodeView,
    config: &MachineConfig,
    req: &machine::UpgradeRequest,
) -> Result<(), Status> {
    let image = req.image.trim();
    if let Some(why) = pull_error(image) {
        return Err(Status::unknown(format!("error validating installer image \"{image}\": {why}")));
    }
    if config.machine_type.is_control_plane() && !req.force {
        let members = nodes.etcd_members(&config.cluster_id);
        let expected = nodes.etcd_member_vmids(&config.cluster_id);
        if let Some(missing) = expected.iter().find(|v| !members.iter().any(|(m, _, _)| m == *v)) {
            return Err(Status::unknown(format!(
                "error validating etcd for upgrade: etcd member {:x} is not healthy; all members must be healthy \
                 to perform an upgrade",
                super::etcd::member_id(&config.cluster_id, *missing)
            )));
        }
    }
    nodes.upgrade(node.vmid, image.to_string(), req.stage);
    Ok(())
}

/// Records the installer image on `install` (the next boot runs it).
pub(super) fn install_image(install: &mut Option<TalosInstall>, image: String) {
    install.get_or_insert_with(TalosInstall::default).image = Some(image);
}

#[cfg(test)]
mod tests {
    use super::pull_error;

    #[test]
    fn installer_images_pull_when_the_factory_builds_them() {
        let schematic = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";
        assert_eq!(pull_error(&format!("factory.talos.dev/nocloud-installer/{schematic}:v1.12.4")), None);
        assert_eq!(pull_error(&format!("127.0.0.1:8443/installer/{schematic}:v1.12.0")), None);
        assert_eq!(pull_error("ghcr.io/siderolabs/installer:v1.12.4"), None);
        let unknown = pull_error(&format!("factory.talos.dev/installer/{schematic}:v1.12.99")).unwrap();
        assert!(unknown.ends_with(": not found"), "{unknown}");
        assert!(pull_error("factory.talos.dev/installer/not-a-schematic:v1.12.4").is_some());
        assert!(pull_error("installer").unwrap().contains("invalid reference format"));
    }
}
