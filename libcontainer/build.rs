//! Generates the CRIU RPC messages (see `src/checkpoint/rpc.rs`) from the
//! vendored `proto/criu-rpc.proto` with prost-build, which runs `protoc`.

fn main() {
    println!("cargo:rerun-if-changed=proto/criu-rpc.proto");
    prost_build::compile_protos(&["proto/criu-rpc.proto"], &["proto"]).expect(
        "generate the CRIU RPC messages (is protoc installed? scripts/deps.sh installs it)",
    );
}
