//! Link libtorch_cuda explicitly and give the binary an rpath to libtorch.
//!
//! tch links `libtorch_cuda.so` with `--as-needed`, and since no symbol of it is
//! referenced directly the linker drops it: the binary then reports
//! `Cuda::is_available() == false` even on a GPU. Forcing it in with
//! `--no-as-needed` makes libtorch register its CUDA backend at load time.
//! The rpath lets the binary run without `LD_LIBRARY_PATH`; on a machine
//! without a GPU libtorch_cuda still loads (it only needs the CUDA runtime
//! libraries, which the wheel's nvidia-* dependencies provide) and reports no
//! device.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    let lib_dir = PathBuf::from(lib_dir);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    if lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-search=native={}", lib_dir.display());
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
