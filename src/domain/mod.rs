//! Validated domain types: an `Email`, `Password`, `UserName` or `Role` value
//! is valid by construction. No HTTP, no SQL.

pub mod account;
mod email;
pub mod limits;
pub mod listing;
mod password;
mod token;
mod user;

pub use email::Email;
pub use password::Password;
pub use token::TokenPurpose;
pub use user::{AccountStatus, Role, User, UserName};
