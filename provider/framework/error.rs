//! Errors of the resource layer: check failures that name a property path, and
//! the ways an operation can fail. The gRPC status code is chosen once, in
//! `crate::rpc::status`, from the variant here.

use std::fmt;

/// A bad input, reported by Check before any API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFailure {
    /// Property path, as the engine prints it: `disks[1].size`.
    pub property: String,
    /// What is wrong and what would be valid.
    pub reason: String,
}

impl CheckFailure {
    /// A failure at `property` with `reason`.
    pub fn new(property: impl Into<String>, reason: impl Into<String>) -> Self {
        CheckFailure { property: property.into(), reason: reason.into() }
    }
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.property.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.property, self.reason)
        }
    }
}

/// How an operation failed.
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceError {
    /// Nothing was changed; safe to retry (maps to a well-understood status code).
    Failed(String),
    /// The outcome is unknown: something may have changed (maps to `Unknown`).
    Uncertain(String),
    /// The resource exists but did not finish initialising: the engine records
    /// `state` under `id` and the next `up` continues with an update.
    InitFailed {
        /// Id of the resource that exists.
        id: String,
        /// State so far, as JSON of the resource's state type.
        state: serde_json::Value,
        /// Why it is incomplete.
        reasons: Vec<String>,
    },
    /// Inputs were invalid after all (found only when resolving them).
    Invalid(Vec<CheckFailure>),
    /// The engine cancelled the operation before anything changed.
    Cancelled,
}

impl ResourceError {
    /// A partial failure: `state` is the typed state reached so far.
    pub fn init_failed<S: serde::Serialize>(id: impl Into<String>, state: &S, reasons: Vec<String>) -> Self {
        ResourceError::InitFailed {
            id: id.into(),
            state: serde_json::to_value(state).unwrap_or(serde_json::Value::Null),
            reasons,
        }
    }
}

impl fmt::Display for ResourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceError::Failed(m) | ResourceError::Uncertain(m) => write!(f, "{m}"),
            ResourceError::InitFailed { id, reasons, .. } => {
                write!(f, "resource {id} was created but failed to initialise: {}", reasons.join("; "))
            }
            ResourceError::Invalid(failures) => {
                let parts: Vec<String> = failures.iter().map(|c| c.to_string()).collect();
                write!(f, "invalid inputs: {}", parts.join("; "))
            }
            ResourceError::Cancelled => write!(f, "the operation was cancelled"),
        }
    }
}

impl std::error::Error for ResourceError {}
