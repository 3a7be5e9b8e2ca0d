//! The `mail_outbox` table: mail waiting for the background sender.

use sea_orm::entity::prelude::*;

/// A queued mail, rendered when it was queued. Delivered rows are deleted;
/// a permanent failure keeps its row with `failed_at` and no message.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mail_outbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub template: String,
    /// The envelope sender.
    pub sender: String,
    /// The envelope recipient.
    pub recipient: String,
    /// The RFC 5322 message.
    pub message: String,
    pub attempts: i32,
    pub created_at: DateTimeUtc,
    pub next_attempt_at: DateTimeUtc,
    pub claimed_until: Option<DateTimeUtc>,
    pub failed_at: Option<DateTimeUtc>,
    pub last_error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
