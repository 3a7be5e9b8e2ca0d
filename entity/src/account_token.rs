//! The `account_tokens` table: the one-time tokens of mailed links, by hash.

use sea_orm::entity::prelude::*;

/// A one-time token. It is good while `spent_at` is null and `expires_at`
/// is in the future; the token itself is only ever in the mail.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "account_tokens")]
pub struct Model {
    /// SHA-256 of the token, hex.
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    pub user_id: Uuid,
    /// `verify`, `reset`, `invite` or `email_change`.
    pub purpose: String,
    /// The address the link was mailed to; for an email change, the new one.
    pub email: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    /// Used or voided.
    pub spent_at: Option<DateTimeUtc>,
}

/// Relations of a token.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The token's user.
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
