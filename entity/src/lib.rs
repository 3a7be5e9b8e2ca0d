//! SeaORM entities for Roster's tables. Data shapes only: rules live in `roster::domain`.

pub mod login_throttle;
pub mod refresh_token;
pub mod session;
pub mod user;
pub mod user_role_count;
