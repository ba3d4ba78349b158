//! Link libtorch_cuda explicitly and give the binary an rpath to libtorch.
//!
//! tch links `libtorch_cuda.so` with `--as-needed`, and since no symbol of it is
//! referenced directly the linker drops it: the binary then reports
//! `Cuda::is_available() == false` even on a GPU. Forcing it in with
//! `--no-as-needed` makes libtorch register its CUDA backend at load time.
//! The rpath lets the binary run without `LD_LIBRARY_PATH`; on a machine
//! without a GPU libtorch_cuda still loads (it only needs the CUDA runtime
//! libraries, which the wheel's nvidia-* dependencies provide) and reports no
//! device. `SERESNEXT_LINK_CUDA=0` leaves libtorch_cuda out, for a CPU-only
//! container image that then need not carry the ~3 GB of CUDA libraries.
//!
//! It also records where the `onnxruntime` wheel beside torch keeps
//! libonnxruntime (`SERESNEXT_ORT_DYLIB`), so the ONNX Runtime engine finds
//! it the way the binary finds libtorch, without an environment variable.
//!
//! And it generates the KServe V2 gRPC service (`proto/grpc_predict_v2.proto`)
//! with protox, a protobuf compiler in Rust, so no build needs `protoc`.
use std::path::{Path, PathBuf};

const GRPC_PROTO: &str = "proto/grpc_predict_v2.proto";

fn main() {
    generate_grpc();
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=SERESNEXT_ORT_DYLIB");
    println!("cargo:rerun-if-env-changed=SERESNEXT_LINK_CUDA");
    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    let lib_dir = PathBuf::from(lib_dir);
    record_onnxruntime_wheel(&lib_dir);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    let cuda_wanted = std::env::var("SERESNEXT_LINK_CUDA").as_deref() != Ok("0");
    if cuda_wanted && lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-search=native={}", lib_dir.display());
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}

/// `<site-packages>/onnxruntime/capi/libonnxruntime.so.<version>` next to the
/// torch wheel that `lib_dir` (`<site-packages>/torch/lib`) belongs to, unless
/// `SERESNEXT_ORT_DYLIB` already names a library at build time.
fn record_onnxruntime_wheel(torch_lib_dir: &Path) {
    if let Ok(explicit) = std::env::var("SERESNEXT_ORT_DYLIB") {
        println!("cargo:rustc-env=SERESNEXT_ORT_DYLIB={explicit}");
        return;
    }
    let Some(capi) = torch_lib_dir
        .parent()
        .and_then(Path::parent)
        .map(|site_packages| site_packages.join("onnxruntime").join("capi"))
    else {
        return;
    };
    println!("cargo:rerun-if-changed={}", capi.display());
    let library = std::fs::read_dir(&capi).ok().and_then(|entries| {
        entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with("libonnxruntime.so"))
            })
            .max()
    });
    if let Some(library) = library {
        println!("cargo:rustc-env=SERESNEXT_ORT_DYLIB={}", library.display());
    }
}

/// The `inference` package's messages and tonic server into `OUT_DIR`
/// (`inference.rs`); no client: the service only serves.
fn generate_grpc() {
    println!("cargo:rerun-if-changed={GRPC_PROTO}");
    let descriptors = match protox::compile([GRPC_PROTO], ["proto"]) {
        Ok(descriptors) => descriptors,
        Err(error) => panic!("cannot compile {GRPC_PROTO}: {error}"),
    };
    if let Err(error) = tonic_prost_build::configure()
        .build_client(false)
        // `bytes::Bytes` for `bytes` fields: images are sliced out of the
        // received message, never copied.
        .bytes(".")
        .compile_fds(descriptors)
    {
        panic!("cannot generate the gRPC code from {GRPC_PROTO}: {error}");
    }
}
