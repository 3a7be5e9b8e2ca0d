//! Authentication: password hashing, JWT issue/verify, login throttling, and
//! the account flows built from them.

pub mod access;
pub mod jwt;
pub mod lifecycle;
pub mod password;
pub mod service;
pub mod throttle;

pub use access::{Admin, Caller, Denied};
pub use service::{AuthError, AuthService};
