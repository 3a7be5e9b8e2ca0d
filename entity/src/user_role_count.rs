//! The `user_role_counts` table: users per role, kept exact by triggers on
//! `users` (see the migrations), so counting users never scans the table,
//! and how many times those triggers have changed each row.

use sea_orm::entity::prelude::*;

/// How many users have one role.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_role_counts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub role: String,
    pub users: i64,
    /// Bumped by every insert, delete and role change of a user with this
    /// role: the sum over all rows only grows, and stands still exactly
    /// while the users and their roles do.
    pub changes: i64,
}

/// No relations: maintained by triggers, never joined.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
