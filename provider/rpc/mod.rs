//! gRPC layer: the only code that sees Pulumi protocol types.
//!
//! Layout: [`proto`] holds the generated bindings; [`server`] implements
//! `pulumirpc.ResourceProvider` over the framework; [`status`] maps errors to
//! statuses (with `ErrorResourceInitFailed` details); [`engine_log`] sends
//! user-visible messages to the engine; [`launch`] is the plugin's start-up.

pub mod engine_log;
pub mod launch;
pub mod proto;
pub mod server;
pub mod status;
