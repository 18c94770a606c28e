//! Build script: compiles the hand-written protocol files under `proto/` with
//! protox (pure Rust, no system `protoc`), generates the tonic/prost bindings
//! for the `pulumirpc` and `google.rpc` packages, and writes the encoded
//! FileDescriptorSet to `$OUT_DIR/pulumirpc_descriptor.bin` for the contract test.

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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    println!("cargo:rerun-if-changed=build.rs");

    // Imports are included so the set is self-contained (the well-known
    // google/protobuf files come from protox's built-in copies); source info
    // carries the proto comments into the generated docs.
    let mut compiler = protox::Compiler::new([PROTO_ROOT])?;
    compiler.include_imports(true).include_source_info(true).open_files(PROTO_FILES)?;

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR not set")?);
    fs::write(out_dir.join("pulumirpc_descriptor.bin"), compiler.encode_file_descriptor_set())?;

    tonic_prost_build::configure().build_server(true).build_client(true).compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
