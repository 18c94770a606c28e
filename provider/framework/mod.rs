//! The resource framework: what a resource or function module implements, and
//! the machinery that turns typed Rust into property maps and back.
//!
//! Layout:
//! - [`resource`]: the [`CustomResource`] trait and its request/response types;
//! - [`function`]: the [`Function`] trait for invokes;
//! - [`context`]: what an operation can reach (config, engine log, cancellation);
//! - [`error`]: check failures and resource errors, classified once;
//! - [`diff`]: the structural diff with property paths;
//! - [`adapter`]: type erasure from a typed resource to property maps (decode,
//!   unknowns at preview, secret propagation);
//! - [`registry`]: every resource and function of the provider, by token.
//!
//! Nothing here touches gRPC types: `crate::rpc` translates to and from them.

pub mod adapter;
pub mod context;
pub mod diff;
pub mod error;
pub mod function;
pub mod registry;
pub mod resource;

pub use context::{Context, LogSink, Severity};
pub use error::{CheckFailure, ResourceError};
pub use function::Function;
pub use registry::Registry;
pub use resource::{
    CheckRequest, CreateRequest, CreateResponse, CustomResource, DeleteRequest, ReadRequest, ReadResponse,
    UpdateRequest,
};
