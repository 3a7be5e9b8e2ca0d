//! The `refresh_tokens` table: every refresh token a session was given, by hash.

use sea_orm::entity::prelude::*;

/// One issued refresh token, stored only as its SHA-256 hash. The session's
/// current token has `rotated_at` null; older ones are kept so that presenting
/// one again is recognised as reuse.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    pub session_id: Uuid,
    pub issued_at: DateTimeUtc,
    pub rotated_at: Option<DateTimeUtc>,
}

/// Relations of a refresh token.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The session the token belongs to.
    #[sea_orm(
        belongs_to = "super::session::Entity",
        from = "Column::SessionId",
        to = "super::session::Column::Id",
        on_delete = "Cascade"
    )]
    Session,
}

impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
