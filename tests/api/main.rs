//! Integration tests: a real server per test, on SQLite and (when configured) PostgreSQL.

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod auth;
mod browser;
mod cli;
mod contract;
mod database;
mod errors;
mod fixtures;
mod harness;
mod health;
mod helpers;
mod lifecycle;
mod mail;
mod mail_flows;
mod metrics;
mod openapi;
mod pages;
mod paging_props;
mod password_hash;
mod python;
mod reliability;
mod shutdown;
mod slow_clients;
mod users;
