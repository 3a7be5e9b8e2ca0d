//! Roster: a user directory and authentication service.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod listener;
pub mod metrics;
pub mod startup;
pub mod store;
pub mod telemetry;
