//! SeaORM entities for Roster's tables. Data shapes only: rules live in `roster::domain`.

pub mod account_token;
pub mod audit_event;
pub mod login_throttle;
pub mod mail_outbox;
pub mod refresh_token;
pub mod session;
pub mod user;
pub mod user_role_count;
