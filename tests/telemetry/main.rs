//! Traces and logs. A test binary of its own: it installs the process-wide
//! subscriber with an in-memory span exporter, and runs the real binary for
//! the OTLP and log checks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../api/helpers.rs"]
mod helpers;

mod logs;
mod otlp;
mod process;
mod spans;
