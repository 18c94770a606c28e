//! Every resource and function of the provider, by token. The same list drives
//! dispatch and schema generation, so a resource cannot exist in one and not the other.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::adapter::{DynFunction, DynResource, FunctionAdapter, ResourceAdapter};
use super::{CustomResource, Function};

/// The provider's resources and functions.
#[derive(Default, Clone)]
pub struct Registry {
    resources: BTreeMap<&'static str, Arc<dyn DynResource>>,
    functions: BTreeMap<&'static str, Arc<dyn DynFunction>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a resource. Panics on a duplicate token: that is a programming error.
    pub fn resource<R: CustomResource>(mut self, resource: R) -> Self {
        let prev = self.resources.insert(R::TOKEN, Arc::new(ResourceAdapter(resource)));
        assert!(prev.is_none(), "resource {} registered twice", R::TOKEN);
        self
    }

    /// Adds a function. Panics on a duplicate token.
    pub fn function<F: Function>(mut self, function: F) -> Self {
        let prev = self.functions.insert(F::TOKEN, Arc::new(FunctionAdapter(function)));
        assert!(prev.is_none(), "function {} registered twice", F::TOKEN);
        self
    }

    /// The resource with `token`.
    pub fn get_resource(&self, token: &str) -> Option<&Arc<dyn DynResource>> {
        self.resources.get(token)
    }

    /// The function with `token`.
    pub fn get_function(&self, token: &str) -> Option<&Arc<dyn DynFunction>> {
        self.functions.get(token)
    }

    /// All resources, by token.
    pub fn resources(&self) -> impl Iterator<Item = &Arc<dyn DynResource>> {
        self.resources.values()
    }

    /// All functions, by token.
    pub fn functions(&self) -> impl Iterator<Item = &Arc<dyn DynFunction>> {
        self.functions.values()
    }
}
