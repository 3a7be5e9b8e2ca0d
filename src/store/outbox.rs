//! The mail outbox: mail is queued inside the transaction of the change that
//! causes it, and claimed by one sender at a time (`FOR UPDATE SKIP LOCKED`
//! on PostgreSQL; SQLite's single writer does the same for its one file).

use std::time::Duration;

use chrono::TimeDelta;
use entity::mail_outbox;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait as _, ConnectionTrait, DbBackend, EntityTrait as _, PaginatorTrait as _,
    QueryFilter as _, QueryOrder as _, QuerySelect as _, QueryTrait as _,
    sea_query::{Expr, ExprTrait as _, LockBehavior, LockType},
};
use uuid::Uuid;

use super::{Store, StoreError, now};
use crate::mail::QueuedMail;

/// A mail a sender has claimed.
#[derive(Clone)]
pub struct ClaimedMail {
    /// The outbox row.
    pub id: Uuid,
    /// The template's name.
    pub template: String,
    /// Envelope sender.
    pub sender: String,
    /// Envelope recipient.
    pub recipient: String,
    /// The message; may hold a token.
    pub message: String,
    /// Attempts so far, this one included.
    pub attempts: i32,
}

/// Longest stored delivery error.
const ERROR_MAX: usize = 500;

/// Queues mail inside a transaction (or on any connection).
pub(super) async fn queue(
    db: &impl ConnectionTrait,
    mails: &[QueuedMail],
) -> Result<(), StoreError> {
    if mails.is_empty() {
        return Ok(());
    }
    let at = now();
    let rows = mails.iter().map(|mail| mail_outbox::ActiveModel {
        id: Set(Uuid::now_v7()),
        template: Set(mail.template.to_owned()),
        sender: Set(mail.sender.clone()),
        recipient: Set(mail.recipient.clone()),
        message: Set(mail.message.clone()),
        attempts: Set(0),
        created_at: Set(at),
        next_attempt_at: Set(at),
        claimed_until: Set(None),
        failed_at: Set(None),
        last_error: Set(None),
    });
    mail_outbox::Entity::insert_many(rows).exec(db).await?;
    Ok(())
}

impl Store {
    /// Queues mail on its own (for mail that no other change goes with).
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn queue_mail(&self, mails: &[QueuedMail]) -> Result<(), StoreError> {
        let _turn = self.writer_turn().await?;
        queue(&self.db, mails).await
    }

    /// Claims up to `limit` due mails for `claim`: no other sender takes
    /// them until then. Each claim counts as an attempt.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn claim_mail(
        &self,
        limit: u64,
        claim: Duration,
    ) -> Result<Vec<ClaimedMail>, StoreError> {
        let _turn = self.writer_turn().await?;
        let at = now();
        let mut due = mail_outbox::Entity::find()
            .select_only()
            .column(mail_outbox::Column::Id)
            .filter(mail_outbox::Column::FailedAt.is_null())
            .filter(mail_outbox::Column::NextAttemptAt.lte(at))
            .filter(
                mail_outbox::Column::ClaimedUntil
                    .is_null()
                    .or(mail_outbox::Column::ClaimedUntil.lt(at)),
            )
            .order_by_asc(mail_outbox::Column::NextAttemptAt)
            .limit(limit);
        if self.db.get_database_backend() == DbBackend::Postgres {
            due = due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let until = at + TimeDelta::from_std(claim).unwrap_or(TimeDelta::MAX);
        let claimed = mail_outbox::Entity::update_many()
            .col_expr(mail_outbox::Column::ClaimedUntil, Expr::value(until))
            .col_expr(
                mail_outbox::Column::Attempts,
                Expr::col(mail_outbox::Column::Attempts).add(1),
            )
            .filter(mail_outbox::Column::Id.in_subquery(due.into_query()))
            .exec_with_returning(&self.db)
            .await?;
        Ok(claimed
            .into_iter()
            .map(|m| ClaimedMail {
                id: m.id,
                template: m.template,
                sender: m.sender,
                recipient: m.recipient,
                message: m.message,
                attempts: m.attempts,
            })
            .collect())
    }

    /// A mail was delivered: its row (and the token in it) goes.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn mail_sent(&self, id: Uuid) -> Result<(), StoreError> {
        let _turn = self.writer_turn().await?;
        mail_outbox::Entity::delete_by_id(id).exec(&self.db).await?;
        Ok(())
    }

    /// A mail failed for now: try again after `delay`.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn mail_retry(
        &self,
        id: Uuid,
        delay: Duration,
        error: &str,
    ) -> Result<(), StoreError> {
        let _turn = self.writer_turn().await?;
        let next = now() + TimeDelta::from_std(delay).unwrap_or(TimeDelta::MAX);
        mail_outbox::Entity::update_many()
            .col_expr(mail_outbox::Column::NextAttemptAt, Expr::value(next))
            .col_expr(
                mail_outbox::Column::ClaimedUntil,
                Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
            )
            .col_expr(mail_outbox::Column::LastError, Expr::value(truncate(error)))
            .filter(mail_outbox::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// A mail failed for good: the row stays for the operator, without its
    /// message (and the token in it).
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn mail_failed(&self, id: Uuid, error: &str) -> Result<(), StoreError> {
        let _turn = self.writer_turn().await?;
        mail_outbox::Entity::update_many()
            .col_expr(mail_outbox::Column::FailedAt, Expr::value(now()))
            .col_expr(mail_outbox::Column::Message, Expr::value(String::new()))
            .col_expr(mail_outbox::Column::LastError, Expr::value(truncate(error)))
            .filter(mail_outbox::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// How many mails wait for delivery.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn mail_waiting(&self) -> Result<u64, StoreError> {
        Ok(mail_outbox::Entity::find()
            .filter(mail_outbox::Column::FailedAt.is_null())
            .count(&self.db)
            .await?)
    }
}

fn truncate(error: &str) -> String {
    error.chars().take(ERROR_MAX).collect()
}
