//! Bakes libtorch's directory into the RUNPATH of this package's tests and binaries, keeps
//! libtorch_cuda linked, and records the torch version synthsweep is built against.
fn main() {
    let mut version = String::from("unknown");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        let lib = std::path::Path::new(&lib);
        if lib.join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        }
        // The PyPI wheel's torch/version.py: `__version__ = '2.13.0+cu130'`.
        if let Ok(text) = std::fs::read_to_string(lib.join("../version.py")) {
            if let Some(v) = text.lines().find_map(|l| l.strip_prefix("__version__ = ")) {
                version = v.trim().trim_matches('\'').trim_matches('"').to_string();
            }
        }
    }
    println!("cargo:rustc-env=SYNTHSWEEP_TORCH_VERSION={version}");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
}
