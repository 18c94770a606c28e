//! Every resource and function the provider offers, one module each, grouped by
//! token module (`machine`, `imagefactory`, …). [`registry`] is the single list
//! that both dispatch and schema generation read.

pub mod client;
pub mod cluster;
pub mod download;
pub mod imagefactory;
pub mod machine;
pub mod node_ssh;
pub mod pve_resource;
pub mod storage;
pub mod vm;

use crate::framework::Registry;

/// All resources and functions of the provider.
pub fn registry() -> Registry {
    Registry::new()
        .resource(machine::secrets::Secrets)
        .resource(machine::configuration_apply::ConfigurationApply)
        .resource(machine::bootstrap::Bootstrap)
        .resource(imagefactory::schematic::Schematic)
        .resource(download::file::File)
        .resource(storage::file::File)
        .resource(vm::resource::VirtualMachine)
        .resource(cluster::kubeconfig::Kubeconfig)
        .function(imagefactory::get_urls::GetUrls)
        .function(imagefactory::get_versions::GetVersions)
        .function(imagefactory::get_extensions_versions::GetExtensionsVersions)
        .function(client::get_configuration::GetConfiguration)
        .function(machine::get_configuration::GetConfiguration)
        .function(machine::get_disks::GetDisks)
        .function(cluster::get_health::GetHealth)
}
