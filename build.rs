//! Build script: compiles the hand-written protocol files under `proto/` with
//! protox (pure Rust, no system `protoc`) and generates their tonic/prost
//! bindings, server and client, in two sets:
//!
//! - the Pulumi wire protocol (`pulumirpc`, `google.rpc`), whose encoded
//!   FileDescriptorSet goes to `$OUT_DIR/pulumirpc_descriptor.bin`;
//! - the Talos API subset under `proto/talos` (`common`, `machine`,
//!   `storage`, `cluster`; file names as upstream, e.g. `machine/machine.proto`),
//!   with its set in `$OUT_DIR/talos_api_descriptor.bin`. It reuses the
//!   `google.rpc.Status` type of the first set.
//!
//! The contract tests compare each set with upstream's descriptors.

use std::{env, fs, path::PathBuf};

const PROTO_ROOT: &str = "proto";
const PROTO_FILES: &[&str] = &[
    "pulumi/provider.proto",
    "pulumi/plugin.proto",
    "pulumi/engine.proto",
    "pulumi/alias.proto",
    "pulumi/errors.proto",
    "google/rpc/status.proto",
];

/// The Talos API files, relative to `proto/talos` (their upstream names).
const TALOS_ROOT: &str = "proto/talos";
const TALOS_FILES: &[&str] =
    &["common/common.proto", "machine/machine.proto", "storage/storage.proto", "cluster/cluster.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    println!("cargo:rerun-if-changed=build.rs");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR not set")?);

    // Imports are included so each set is self-contained (the well-known
    // google/protobuf files come from protox's built-in copies); source info
    // carries the proto comments into the generated docs.
    let mut compiler = protox::Compiler::new([PROTO_ROOT])?;
    compiler.include_imports(true).include_source_info(true).open_files(PROTO_FILES)?;
    fs::write(out_dir.join("pulumirpc_descriptor.bin"), compiler.encode_file_descriptor_set())?;
    tonic_prost_build::configure().build_server(true).build_client(true).compile_fds(compiler.file_descriptor_set())?;

    let mut talos = protox::Compiler::new([TALOS_ROOT, PROTO_ROOT])?;
    talos.include_imports(true).include_source_info(true).open_files(TALOS_FILES)?;
    fs::write(out_dir.join("talos_api_descriptor.bin"), talos.encode_file_descriptor_set())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .extern_path(".google.rpc", "crate::rpc::proto::google_rpc")
        .compile_fds(talos.file_descriptor_set())?;
    Ok(())
}
