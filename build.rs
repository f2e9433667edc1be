//! Build script: compiles the C shim (`pyshim/capi/`) against the headers of the Python that
//! pyo3 builds for, internal headers included, and tells rustc which CPython version that is.
//!
//! Include directories come from `RJIT_PYTHON_INCLUDE` (a `:`-separated list, for cross builds
//! where the target's headers live in a sysroot) or else from the target interpreter's
//! `sysconfig.get_paths()["include"]`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let config = pyo3_build_config::get();
    let version = config.version();

    // The interpreter-version cfgs (Py_3_11, Py_3_12, ...) used by src/cpython/ for the few
    // places where the Rust side has to know the version.
    pyo3_build_config::use_pyo3_cfgs();
    println!("cargo::rustc-check-cfg=cfg(Py_3_7,Py_3_8,Py_3_9,Py_3_10,Py_3_11,Py_3_12,Py_3_13,Py_3_14,Py_3_15,Py_GIL_DISABLED,Py_LIMITED_API,PyPy,GraalPy)");

    if (version.major, version.minor) != (3, 11) {
        // Versions other than 3.11 need their own shim parts (see DESIGN.md section 4); fail
        // at build time with a clear message rather than at import with a missing symbol.
        panic!(
            "rjit supports CPython 3.11 for now; the target interpreter is {}.{}",
            version.major, version.minor
        );
    }

    let include_dirs = include_dirs(config.executable());
    let mut build = cc::Build::new();
    build
        .file("pyshim/capi/shim.c")
        .define("Py_BUILD_CORE", "1")
        // Hidden visibility: the shim's symbols are private to the extension module.
        .flag_if_supported("-fvisibility=hidden")
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(true);
    for dir in &include_dirs {
        build.include(dir);
    }
    build.compile("rjit_shim");

    println!("cargo::rerun-if-changed=pyshim/capi");
    println!("cargo::rerun-if-env-changed=RJIT_PYTHON_INCLUDE");
    println!("cargo::rerun-if-env-changed=PYO3_PYTHON");
}

/// The directories holding `Python.h` (and `internal/`) for the target interpreter.
fn include_dirs(executable: Option<&str>) -> Vec<PathBuf> {
    if let Ok(list) = env::var("RJIT_PYTHON_INCLUDE") {
        let dirs: Vec<PathBuf> = env::split_paths(&list).filter(|p| !p.as_os_str().is_empty()).collect();
        if !dirs.is_empty() {
            return dirs;
        }
    }
    let python = executable
        .map(str::to_owned)
        .or_else(|| env::var("PYO3_PYTHON").ok())
        .unwrap_or_else(|| "python3".to_owned());
    let output = Command::new(&python)
        .args(["-c", "import sysconfig; print(sysconfig.get_paths()['include'])"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} to find the Python headers: {e}"));
    assert!(
        output.status.success(),
        "{python} failed to report its include directory: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    assert!(
        dir.join("internal").join("pycore_frame.h").exists(),
        "{} has no internal headers (internal/pycore_frame.h); set RJIT_PYTHON_INCLUDE",
        dir.display()
    );
    vec![dir]
}
