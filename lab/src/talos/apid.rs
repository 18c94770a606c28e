//! apid's request routing on a configured lab node, as Talos's director and
//! its one-to-many proxy do it.
//!
//! Owns: reading the `node` / `nodes` call metadata into [`Targets`]
//! (`nodes` wins; a multi-valued `node` is InvalidArgument), and shaping
//! one-to-many answers: each target's response messages carry
//! `metadata.hostname` = the target as the client named it (apid's
//! `AppendInfo`: on the first message of a unary answer, on every message of
//! a stream), and a target's failure becomes an in-band message whose
//! metadata holds the error text and status (`BuildError`) — the call itself
//! succeeds, as it does through a real apid, and clients such as `talosctl`
//! turn those messages into per-node errors.
//! Must not: authorize (that is `api`), or know what a method answers.

use proxmox_talos::rpc::proto::google_rpc;
use proxmox_talos::talos::api::{cluster, common, machine, storage};
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

/// Where a call goes, from its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// No routing metadata: the node answers itself, errors are gRPC errors.
    Local,
    /// `node`: proxied one to one (errors are still gRPC errors).
    One(String),
    /// `nodes`: one to many, answers stamped per target, errors in band.
    Many(Vec<String>),
}

/// The call's targets (grpc-go sends each value of a multi-valued key as its
/// own header field).
pub fn targets(metadata: &MetadataMap) -> Result<Targets, Status> {
    let values = |key: &str| -> Vec<String> {
        metadata
            .get_all(key)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    };
    let (nodes, node) = (values("nodes"), values("node"));
    if node.len() > 1 {
        return Err(Status::invalid_argument("node metadata must be single-valued"));
    }
    Ok(if !nodes.is_empty() {
        Targets::Many(nodes)
    } else if let Some(node) = node.into_iter().next() {
        Targets::One(node)
    } else {
        Targets::Local
    })
}

/// A per-node response message: every Talos one has `common.Metadata
/// metadata = 1`, so an error message is the type's default plus metadata.
pub trait NodeMessage: Default {
    fn metadata_mut(&mut self) -> &mut Option<common::Metadata>;
}

macro_rules! node_messages {
    ($($t:ty),* $(,)?) => {$(
        impl NodeMessage for $t {
            fn metadata_mut(&mut self) -> &mut Option<common::Metadata> {
                &mut self.metadata
            }
        }
    )*};
}

node_messages!(
    machine::ApplyConfiguration,
    machine::Bootstrap,
    machine::EtcdLeaveCluster,
    machine::EtcdMembers,
    machine::EtcdRemoveMemberById,
    machine::Reboot,
    machine::Reset,
    machine::ServiceList,
    machine::Upgrade,
    machine::Version,
    storage::Disks,
    cluster::HealthCheckProgress,
    common::Data,
);

/// Sets `metadata.hostname` of `message` to `target`.
pub fn stamp<M: NodeMessage>(message: &mut M, target: &str) {
    message.metadata_mut().get_or_insert_with(Default::default).hostname = target.to_string();
}

/// One target's unary answer in a one-to-many call: its messages with the
/// first one stamped (apid appends the metadata to the first message only),
/// or its failure as one in-band message.
pub fn unary_answer<M: NodeMessage>(target: &str, answer: Result<Vec<M>, Status>) -> Vec<M> {
    match answer {
        Ok(mut messages) => {
            if let Some(first) = messages.first_mut() {
                stamp(first, target);
            }
            messages
        }
        Err(status) => vec![error_message(target, &status)],
    }
}

/// A target's failure as apid's in-band message: hostname, the Go error
/// text (`rpc error: code = … desc = …`) and the status.
pub fn error_message<M: NodeMessage>(target: &str, status: &Status) -> M {
    let mut message = M::default();
    *message.metadata_mut() = Some(common::Metadata {
        hostname: target.to_string(),
        error: go_error_text(status),
        status: Some(google_rpc::Status {
            code: status.code() as i32,
            message: status.message().to_string(),
            details: Vec::new(),
        }),
    });
    message
}

/// grpc-go's `status.Error(...).Error()` text.
pub fn go_error_text(status: &Status) -> String {
    format!("rpc error: code = {} desc = {}", go_code_name(status.code()), status.message())
}

/// grpc-go's `codes.Code.String()`.
fn go_code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataValue;

    fn metadata(pairs: &[(&'static str, &'static str)]) -> MetadataMap {
        let mut md = MetadataMap::new();
        for (k, v) in pairs {
            md.append(*k, MetadataValue::from_static(v));
        }
        md
    }

    #[test]
    fn nodes_win_over_node_and_node_must_be_single_valued() {
        assert_eq!(targets(&metadata(&[])).unwrap(), Targets::Local);
        assert_eq!(targets(&metadata(&[("node", "10.0.0.1")])).unwrap(), Targets::One("10.0.0.1".into()));
        assert_eq!(
            targets(&metadata(&[("nodes", "10.0.0.1"), ("nodes", "10.0.0.2"), ("node", "10.0.0.3")])).unwrap(),
            Targets::Many(vec!["10.0.0.1".into(), "10.0.0.2".into()])
        );
        let err = targets(&metadata(&[("node", "10.0.0.1"), ("node", "10.0.0.2")])).unwrap_err();
        assert_eq!((err.code(), err.message()), (Code::InvalidArgument, "node metadata must be single-valued"));
    }

    #[test]
    fn one_to_many_answers_are_stamped_and_failures_in_band() {
        let ok = unary_answer("10.0.0.1", Ok(vec![machine::Version::default()]));
        assert_eq!(ok[0].metadata.as_ref().unwrap().hostname, "10.0.0.1");
        assert!(ok[0].metadata.as_ref().unwrap().error.is_empty());
        let failed: Vec<machine::Bootstrap> =
            unary_answer("10.0.0.2", Err(Status::already_exists("etcd data directory is not empty")));
        let md = failed[0].metadata.as_ref().unwrap();
        assert_eq!(md.hostname, "10.0.0.2");
        assert_eq!(md.error, "rpc error: code = AlreadyExists desc = etcd data directory is not empty");
        assert_eq!(md.status.as_ref().unwrap().code, Code::AlreadyExists as i32);
    }
}
