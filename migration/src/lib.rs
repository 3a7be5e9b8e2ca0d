//! Roster's schema migrations, applied by `roster migrate` and at `roster serve` start-up.

// `MigrationTrait` is declared with `&SchemaManager` (an elided lifetime in a
// path); implementations must match it exactly.
#![allow(elided_lifetimes_in_paths)]

pub use sea_orm_migration::MigrationStatus;
pub use sea_orm_migration::prelude::*;

mod m20261126_000001_create_users;
mod m20261126_000002_create_sessions;
mod m20261126_000003_user_counts;
mod m20261126_000004_user_changes;
mod m20261126_000005_user_order_changes;
mod m20261206_000001_account_status;
mod m20261207_000001_tokens_and_outbox;
mod m20261207_000002_audit_events;

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_users::Migration),
            Box::new(m20261126_000002_create_sessions::Migration),
            Box::new(m20261126_000003_user_counts::Migration),
            Box::new(m20261126_000004_user_changes::Migration),
            Box::new(m20261126_000005_user_order_changes::Migration),
            Box::new(m20261206_000001_account_status::Migration),
            Box::new(m20261207_000001_tokens_and_outbox::Migration),
            Box::new(m20261207_000002_audit_events::Migration),
        ]
    }
}
