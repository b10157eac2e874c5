//! Generates the driver protocol code from `yunshu/provider/v1/driver.proto`.
//! Needs `protoc` (Debian `protobuf-compiler`; `scripts/install-deps` installs it).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=yunshu/provider/v1/driver.proto");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(&["yunshu/provider/v1/driver.proto"], &["."])?;
    Ok(())
}
