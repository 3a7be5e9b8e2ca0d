//! A Python interpreter with `tests/support/requirements.txt` installed, for
//! the helpers in `tests/support/` (an SMTP sink, a headless browser).
//!
//! `ROSTER_TEST_PYTHON` names one to use as is; otherwise a venv is created
//! once under `target/tmp/test-python` (guarded by a file lock, so parallel
//! test binaries share it) and reinstalled when the requirements change.

#![allow(dead_code)]

use std::{
    fs::{self, File},
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

/// The interpreter: `ROSTER_TEST_PYTHON`, else the tests' venv (created on
/// first use, which blocks for a few seconds).
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| match std::env::var_os("ROSTER_TEST_PYTHON") {
            Some(python) if !python.is_empty() => PathBuf::from(python),
            _ => venv(),
        })
        .clone()
}

/// `tests/support/<name>`.
pub fn support_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(name)
}

const HINT: &str = "the tests need Python 3 with venv and pip: on Debian, \
    `apt-get install python3 python3-venv`; or set ROSTER_TEST_PYTHON to an \
    interpreter that has tests/support/requirements.txt installed";

fn venv() -> PathBuf {
    let requirements_path = support_script("requirements.txt");
    let requirements = fs::read_to_string(&requirements_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", requirements_path.display()));
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = root.join("test-python");
    let marker = dir.join("requirements.installed");
    let python = dir.join("bin/python");

    fs::create_dir_all(root).unwrap_or_else(|e| panic!("cannot create {}: {e}", root.display()));
    let lock_path = root.join("test-python.lock");
    let lock = File::create(&lock_path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", lock_path.display()));
    // Another test binary may be installing: wait for it, then reuse its venv.
    lock.lock()
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));

    let current = python.exists()
        && fs::read_to_string(&marker).is_ok_and(|installed| installed == requirements);
    if !current {
        let started = std::time::Instant::now();
        eprintln!("creating the tests' Python venv in {}", dir.display());
        if dir.exists() {
            fs::remove_dir_all(&dir)
                .unwrap_or_else(|e| panic!("cannot remove {}: {e}", dir.display()));
        }
        run(
            Command::new("python3").arg("-m").arg("venv").arg(&dir),
            "python3 -m venv",
        );
        run(
            Command::new(&python)
                .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
                .arg("-r")
                .arg(&requirements_path),
            "pip install -r tests/support/requirements.txt",
        );
        fs::write(&marker, &requirements)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", marker.display()));
        eprintln!("Python venv ready in {:.1?}", started.elapsed());
    }
    drop(lock);
    python
}

fn run(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run it: {e}\n{HINT}"));
    if !output.status.success() {
        panic!(
            "{what} failed ({}):\n{}{}\n{HINT}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
}
