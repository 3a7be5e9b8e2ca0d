//! Authentication: password hashing, JWT issue/verify, login throttling, and
//! the account flows built from them.

pub mod jwt;
pub mod password;
pub mod service;
pub mod throttle;

pub use service::{AuthError, AuthService};
