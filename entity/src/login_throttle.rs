//! The `login_throttle` table: failed logins per account, shared by every instance.

use sea_orm::entity::prelude::*;

/// Failed-login counter for one (lower-cased) email, known account or not.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_throttle")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub email: String,
    pub failures: i32,
    pub window_started_at: DateTimeUtc,
}

/// No relations: unknown emails are counted too.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
