//! Resource errors to gRPC statuses, decided once. Clean failures use
//! well-understood codes (the engine then knows nothing changed); uncertain
//! outcomes use `Unknown`; a partially created resource carries
//! `pulumirpc.ErrorResourceInitFailed` in the status details so its state is kept.

use prost::Message;
use tonic::{Code, Status};

use super::proto::google_rpc;
use super::proto::pulumirpc::ErrorResourceInitFailed;
use crate::framework::adapter::Failure;
use crate::framework::ResourceError;
use crate::value::wire;

const INIT_FAILED_TYPE_URL: &str = "type.googleapis.com/pulumirpc.ErrorResourceInitFailed";

/// The status for a failed operation, `context` saying what was attempted
/// ("unable to create machine:Secrets talos-secrets").
pub fn failure_status(context: &str, failure: Failure) -> Status {
    match (failure.error, failure.partial) {
        (ResourceError::InitFailed { id, reasons, .. }, Some(partial)) => {
            let detail = ErrorResourceInitFailed {
                id: id.clone(),
                properties: Some(wire::to_struct(&partial.state)),
                reasons: reasons.clone(),
                inputs: partial.inputs.as_ref().map(wire::to_struct),
                refresh_before_update: false,
            };
            with_detail(
                Code::Unknown,
                format!("{context}: {}", reasons.join("; ")),
                INIT_FAILED_TYPE_URL,
                detail.encode_to_vec(),
            )
        }
        (error, _) => error_status(context, &error),
    }
}

/// The status for an error that left nothing behind.
pub fn error_status(context: &str, error: &ResourceError) -> Status {
    let message = format!("{context}: {error}");
    match error {
        ResourceError::Failed(_) => Status::failed_precondition(message),
        ResourceError::Invalid(_) => Status::invalid_argument(message),
        ResourceError::Cancelled => Status::cancelled(message),
        ResourceError::Uncertain(_) | ResourceError::InitFailed { .. } => Status::unknown(message),
    }
}

fn with_detail(code: Code, message: String, type_url: &str, value: Vec<u8>) -> Status {
    let envelope = google_rpc::Status {
        code: code as i32,
        message: message.clone(),
        details: vec![prost_types::Any { type_url: type_url.to_string(), value }],
    };
    Status::with_details(code, message, envelope.encode_to_vec().into())
}

/// Decodes `ErrorResourceInitFailed` from a status, as the engine does (tests use it).
pub fn init_failed_detail(status: &Status) -> Option<ErrorResourceInitFailed> {
    let envelope = google_rpc::Status::decode(status.details()).ok()?;
    envelope
        .details
        .iter()
        .find(|a| a.type_url == INIT_FAILED_TYPE_URL)
        .and_then(|a| ErrorResourceInitFailed::decode(a.value.as_slice()).ok())
}
