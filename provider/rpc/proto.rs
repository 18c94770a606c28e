//! Generated Pulumi wire-protocol bindings (tonic + prost), built by `build.rs`
//! from the hand-written files under `proto/`, plus the encoded descriptor set
//! those files compile to.

/// Package `pulumirpc`: the ResourceProvider service (server and client), the
/// Engine logging service, and their messages.
pub mod pulumirpc {
    tonic::include_proto!("pulumirpc");
}

/// Package `google.rpc`: the `Status` envelope for gRPC error details.
pub mod google_rpc {
    tonic::include_proto!("google.rpc");
}

/// Encoded `google.protobuf.FileDescriptorSet` for every file under `proto/`
/// (imports included); the contract test compares it against upstream.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pulumirpc_descriptor.bin"));
