//! The [`CustomResource`] trait: what one resource module implements, with named
//! request types and documented defaults (as pulumi-go-provider's `infer`).
//!
//! Defaults: Check only decodes; Diff is structural over inputs, replacing on
//! properties marked `replace_on_changes`, plus any outputs the resource says
//! are due to change (`due_changes`, none by default); Read returns the stored state
//! unchanged (no remote source of truth); Update is required only when some
//! property can change in place; Delete does nothing.

use std::future::Future;

use serde::{de::DeserializeOwned, Serialize};

use super::{CheckFailure, Context, ResourceError};
use crate::schema::PulumiObject;

/// Check: the decoded new inputs and the previous ones.
pub struct CheckRequest<'a, A> {
    /// Resource name.
    pub name: &'a str,
    /// Decoded new inputs.
    pub inputs: A,
    /// Previous inputs, absent on create.
    pub olds: Option<A>,
    /// 32 bytes the engine gives for deterministic random defaults.
    pub random_seed: &'a [u8],
}

/// Create: inputs are fully known; in preview nothing may change remotely.
pub struct CreateRequest<A> {
    /// Resource name.
    pub name: String,
    /// Checked inputs.
    pub inputs: A,
    /// Preview: compute what can be known, change nothing.
    pub preview: bool,
}

/// The created resource. In preview, outputs left `None` show as unknown.
pub struct CreateResponse<S> {
    /// Id; ignored in preview.
    pub id: String,
    /// Output state.
    pub state: S,
}

/// Read: refresh (inputs and state present) or import (only the id).
pub struct ReadRequest<A, S> {
    /// The resource id.
    pub id: String,
    /// Inputs last applied; `None` when importing.
    pub inputs: Option<A>,
    /// State last recorded; `None` when importing.
    pub state: Option<S>,
}

/// What a Read found.
pub struct ReadResponse<A, S> {
    /// The id (it may be normalised).
    pub id: String,
    /// Inputs that reproduce this resource without a replace.
    pub inputs: A,
    /// Current state.
    pub state: S,
}

/// Update in place.
pub struct UpdateRequest<A, S> {
    /// The resource id.
    pub id: String,
    /// Inputs last applied.
    pub old_inputs: A,
    /// State last recorded.
    pub old_state: S,
    /// New checked inputs.
    pub inputs: A,
    /// Preview: change nothing.
    pub preview: bool,
}

/// Delete.
pub struct DeleteRequest<S> {
    /// The resource id.
    pub id: String,
    /// State last recorded.
    pub state: S,
}

/// What [`CustomResource::read`] returns: `Ok(None)` when the resource is gone.
pub type ReadResult<A, S> = Result<Option<ReadResponse<A, S>>, ResourceError>;

/// One resource type of the provider.
pub trait CustomResource: Send + Sync + 'static {
    /// Token, e.g. `proxmox-talos:machine:Secrets`.
    const TOKEN: &'static str;
    /// Input properties.
    type Args: PulumiObject + Serialize + DeserializeOwned + Clone + Send + Sync;
    /// Output properties (usually the inputs flattened in, plus computed ones).
    type State: PulumiObject + Serialize + DeserializeOwned + Send + Sync;
    /// Whether [`Self::replacements`] alone decides what replaces. Then the schema does not
    /// publish the `replace_on_changes` marks (they still serve previews with unknown
    /// values): generated SDKs turn published marks into `replaceOnChanges` resource
    /// options, which the engine applies whatever the provider's diff says — so adopting
    /// an imported VM, or a change the provider does in place, would replace.
    const REPLACEMENTS_BY_VALUE: bool = false;

    /// Validates and normalises inputs beyond their types; failures name a property path
    /// and say what would be valid. Runs before any API call.
    fn check(&self, _ctx: &Context, req: CheckRequest<'_, Self::Args>) -> Result<Self::Args, Vec<CheckFailure>> {
        Ok(req.inputs)
    }

    /// The input paths whose change from `old` to `new` replaces the resource, when that
    /// depends on values (e.g. `nodeName` replaces unless `migrate` is set). `None` (the
    /// default) uses the schema's `replace_on_changes` marks. Called only when both sides
    /// are fully known; in preview with unknowns the schema's marks apply.
    fn replacements(&self, _old: &Self::Args, _new: &Self::Args) -> Option<Vec<String>> {
        None
    }

    /// Whether replacing `old` by `new` must delete the old resource first: when
    /// both would claim the same name or number in the remote system (a fixed
    /// VMID, a file name), creating the replacement first can only fail.
    /// Called only when both sides are fully known.
    fn delete_before_replace(&self, _old: &Self::Args, _new: &Self::Args) -> bool {
        false
    }

    /// Outputs due to change although no input did (a certificate inside its
    /// renewal window), as property paths of the state. Diff reports each as an
    /// update of that output, so a preview shows it and `up` calls Update. Called
    /// with the recorded state and the new inputs when both decode (the inputs
    /// fully known); the default has none.
    fn due_changes(&self, _state: &Self::State, _inputs: &Self::Args) -> Vec<String> {
        Vec::new()
    }

    /// Creates the resource (or, in preview, predicts its state).
    fn create(
        &self,
        ctx: &Context,
        req: CreateRequest<Self::Args>,
    ) -> impl Future<Output = Result<CreateResponse<Self::State>, ResourceError>> + Send;

    /// Reads the resource: `Ok(None)` means it is gone.
    fn read(
        &self,
        _ctx: &Context,
        req: ReadRequest<Self::Args, Self::State>,
    ) -> impl Future<Output = ReadResult<Self::Args, Self::State>> + Send {
        async move {
            Ok(match (req.inputs, req.state) {
                (Some(inputs), Some(state)) => Some(ReadResponse { id: req.id, inputs, state }),
                _ => {
                    return Err(ResourceError::Failed(format!(
                        "{} cannot be imported: it has no remote source to read from",
                        Self::TOKEN
                    )))
                }
            })
        }
    }

    /// Updates in place. The default refuses: a resource without updates should
    /// mark every input `replace_on_changes`.
    fn update(
        &self,
        _ctx: &Context,
        _req: UpdateRequest<Self::Args, Self::State>,
    ) -> impl Future<Output = Result<Self::State, ResourceError>> + Send {
        async move { Err(ResourceError::Failed(format!("{} cannot be updated in place", Self::TOKEN))) }
    }

    /// Deletes the resource; already gone is success.
    fn delete(
        &self,
        _ctx: &Context,
        _req: DeleteRequest<Self::State>,
    ) -> impl Future<Output = Result<(), ResourceError>> + Send {
        async move { Ok(()) }
    }
}
