//! The `user_role_counts` table: users per role, kept exact by triggers on
//! `users` (see the migration), so counting users never scans the table.

use sea_orm::entity::prelude::*;

/// How many users have one role.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_role_counts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub role: String,
    pub users: i64,
}

/// No relations: maintained by triggers, never joined.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
