//! Every resource and function the provider offers, one module each, grouped by
//! token module (`machine`, `imagefactory`, …). [`registry`] is the single list
//! that both dispatch and schema generation read.

pub mod imagefactory;
pub mod machine;

use crate::framework::Registry;

/// All resources and functions of the provider.
pub fn registry() -> Registry {
    Registry::new().resource(machine::secrets::Secrets).function(imagefactory::get_urls::GetUrls)
}
