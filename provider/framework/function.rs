//! Functions (`Invoke`): typed arguments in, typed result out. Functions never
//! see unknowns or secrets; the adapter unwraps secrets and re-marks results.

use std::future::Future;

use serde::{de::DeserializeOwned, Serialize};

use super::{CheckFailure, Context, ResourceError};
use crate::schema::PulumiObject;

/// A provider function such as `imagefactory:getUrls`.
pub trait Function: Send + Sync + 'static {
    /// Its token, e.g. `proxmox-talos:imagefactory:getUrls`.
    const TOKEN: &'static str;
    /// Arguments object.
    type Args: PulumiObject + DeserializeOwned + Send;
    /// Result object.
    type Result: PulumiObject + Serialize + Send;

    /// Validates arguments beyond their types (failures name the property path).
    fn check(&self, _ctx: &Context, _args: &Self::Args) -> Vec<CheckFailure> {
        Vec::new()
    }

    /// Computes the result.
    fn invoke(
        &self,
        ctx: &Context,
        args: Self::Args,
    ) -> impl Future<Output = Result<Self::Result, ResourceError>> + Send;
}
