//! Roster: a user directory and authentication service.

pub mod api;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod infra;
pub mod mail;
pub mod startup;
pub mod store;
