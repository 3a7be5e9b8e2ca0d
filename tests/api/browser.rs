//! `browse`: a real headless Chromium (`tests/support/browser.py`) opening a
//! page and filling in and submitting its form.
//!
//! Uses Debian's `chromium` and `chromium-driver` (or `ROSTER_TEST_CHROMIUM`
//! and `ROSTER_TEST_CHROMEDRIVER`); nothing is downloaded.

#![allow(dead_code)]

use std::{path::PathBuf, process::Command};

use serde_json::Value;

use crate::python::{python, support_script};

/// `ROSTER_TEST_CHROMIUM`, else `/usr/bin/chromium`.
pub fn chromium() -> PathBuf {
    env_path("ROSTER_TEST_CHROMIUM", "/usr/bin/chromium")
}

/// `ROSTER_TEST_CHROMEDRIVER`, else `/usr/bin/chromedriver`.
pub fn chromedriver() -> PathBuf {
    env_path("ROSTER_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
}

fn env_path(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .filter(|path| !path.is_empty())
        .map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// Opens `url`, types each `(name, value)` into the field `name=<name>`,
/// and with `submit` clicks the form's submit button and waits for the next
/// page. Returns `{"before": PAGE, "after": PAGE or null}` where PAGE is
/// `{"title", "text", "url"}` (`text`: the body's visible text). Panics with
/// the script's stderr when anything fails.
pub async fn browse(url: &str, fills: &[(&str, &str)], submit: bool) -> Value {
    for (path, package) in [
        (chromium(), "chromium"),
        (chromedriver(), "chromium-driver"),
    ] {
        assert!(
            path.exists(),
            "{} does not exist: the browser tests need Debian's `chromium chromium-driver` \
             (apt-get install chromium chromium-driver), or ROSTER_TEST_CHROMIUM and \
             ROSTER_TEST_CHROMEDRIVER naming a Chromium and its driver (missing: {package})",
            path.display()
        );
    }
    // `--opt=value`: a value starting with `-` is not read as an option.
    let mut args = vec![format!("--url={url}")];
    args.extend(
        fills
            .iter()
            .map(|(name, value)| format!("--fill={name}={value}")),
    );
    if submit {
        args.push("--submit".to_owned());
    }
    let output = tokio::task::spawn_blocking({
        let args = args.clone();
        move || {
            let python = python();
            Command::new(&python)
                .arg(support_script("browser.py"))
                .args(&args)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {} browser.py: {e}", python.display()))
        }
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser.py {args:?} failed ({}):\n{stderr}{stdout}",
        output.status
    );
    let line = stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("");
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("browser.py {args:?} printed no JSON ({e}):\n{stdout}{stderr}"))
}
