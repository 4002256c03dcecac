//! Bakes libtorch's directory into the RUNPATH of every binary, test and bench of this
//! package, so they run without LD_LIBRARY_PATH, and keeps libtorch_cuda.so linked so
//! that CUDA is found when a GPU is present.
fn main() {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        if std::path::Path::new(&lib).join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        }
    }
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
}
