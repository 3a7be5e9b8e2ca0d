//! Tests that need a process of their own: traces (this binary installs the
//! process-wide subscriber with an in-memory span exporter), and the real
//! `roster` binary for OTLP export, logs and shutdown under load.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../api/helpers.rs"]
mod helpers;

mod logs;
mod mail;
mod otlp;
mod pg_outage;
mod process;
mod shutdown;
mod spans;
