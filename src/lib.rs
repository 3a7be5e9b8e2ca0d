//! Roster: a user directory and authentication service.

pub mod api;
pub mod cli;
pub mod config;
pub mod db;
pub mod startup;
pub mod telemetry;
