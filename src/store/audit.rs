//! `audit_events`: written in the transaction of the change each records,
//! listed newest first by keyset, pruned in small batches.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use entity::audit_event;
use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, Condition, ConnectionTrait, DbErr, EntityTrait as _,
    QueryFilter as _, QueryOrder as _, QuerySelect as _,
};
use uuid::Uuid;

use super::{Store, StoreError, now, transaction::WriteTransaction};
use crate::audit::{Context, Event, Record};

/// Writes `records` with the current request's context.
pub(super) async fn write(conn: &impl ConnectionTrait, records: &[Record]) -> Result<(), DbErr> {
    if records.is_empty() {
        return Ok(());
    }
    let context = Context::current();
    let at = now();
    let rows = records.iter().map(|r| audit_event::ActiveModel {
        id: Set(Uuid::now_v7()),
        at: Set(at),
        event: Set(r.event.as_str().to_owned()),
        actor_id: Set(r.actor_id),
        subject_id: Set(r.subject_id),
        ip: Set(context.ip.map(|ip| ip.to_string())),
        user_agent: Set(context.user_agent(crate::domain::limits::USER_AGENT_MAX_CHARS)),
        request_id: Set(context.request_id.clone()),
        details: Set(serde_json::to_string(&r.details).unwrap_or_else(|_| "{}".to_owned())),
    });
    audit_event::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

impl Store {
    /// Writes `records` in `txn` and commits; then each is a log line and
    /// counted. A failed insert rolls the change back with it.
    pub(super) async fn commit_audited(
        &self,
        txn: WriteTransaction,
        records: &[Record],
    ) -> Result<(), StoreError> {
        write(&*txn, records).await?;
        txn.commit().await?;
        self.emitted(records);
        Ok(())
    }

    /// Records events that come with no other write (a failed login).
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn record_events(&self, records: &[Record]) -> Result<(), StoreError> {
        let _turn = self.writer_turn().await?;
        write(&self.db, records).await?;
        self.emitted(records);
        Ok(())
    }

    /// Each written event as one JSON log line with `"audit": true`, and
    /// counted by event.
    fn emitted(&self, records: &[Record]) {
        let context = Context::current();
        for record in records {
            tracing::info!(
                audit = true,
                event = record.event.as_str(),
                actor_id = record.actor_id.map(tracing::field::display),
                subject_id = record.subject_id.map(tracing::field::display),
                ip = context.ip.map(tracing::field::display),
                details = serde_json::to_string(&record.details).unwrap_or_default(),
                "audit event"
            );
            if let Some(metrics) = &self.metrics {
                metrics.audit_event(record.event.as_str());
            }
        }
    }

    /// A page of events, newest first.
    ///
    /// # Errors
    ///
    /// Database failures; a cursor that does not decode is `NotFound`
    /// (the caller checks cursors first, see [`AuditFilter::cursor_of`]).
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<AuditPage, StoreError> {
        let mut query = audit_event::Entity::find();
        if let Some(user) = filter.user {
            query = query.filter(
                Condition::any()
                    .add(audit_event::Column::SubjectId.eq(user))
                    .add(audit_event::Column::ActorId.eq(user)),
            );
        }
        if let Some(subject) = filter.subject {
            query = query.filter(audit_event::Column::SubjectId.eq(subject));
        }
        if !filter.events.is_empty() {
            query = query
                .filter(audit_event::Column::Event.is_in(filter.events.iter().map(|e| e.as_str())));
        }
        if let Some(after) = filter.after {
            query = query.filter(audit_event::Column::At.gt(after));
        }
        if let Some(before) = filter.before {
            query = query.filter(audit_event::Column::At.lt(before));
        }
        if let Some((at, id)) = filter.cursor {
            query = query.filter(
                Condition::any().add(audit_event::Column::At.lt(at)).add(
                    Condition::all()
                        .add(audit_event::Column::At.eq(at))
                        .add(audit_event::Column::Id.lt(id)),
                ),
            );
        }
        let per_page = u64::from(filter.per_page);
        let mut rows = query
            .order_by_desc(audit_event::Column::At)
            .order_by_desc(audit_event::Column::Id)
            .limit(per_page + 1)
            .all(&self.db)
            .await?;
        let next_cursor = if rows.len() as u64 > per_page {
            rows.truncate(filter.per_page as usize);
            rows.last().map(|last| encode_cursor(last.at, last.id))
        } else {
            None
        };
        let items = rows
            .into_iter()
            .map(|row| StoredEvent {
                details: serde_json::from_str(&row.details)
                    .unwrap_or_else(|_| serde_json::Value::Object(serde_json::Map::new())),
                id: row.id,
                at: row.at,
                event: row.event,
                actor_id: row.actor_id,
                subject_id: row.subject_id,
                ip: row.ip,
                user_agent: row.user_agent,
                request_id: row.request_id,
            })
            .collect();
        Ok(AuditPage { items, next_cursor })
    }

    /// Deletes up to `batch` events older than `cutoff`; the number deleted.
    /// Each batch is its own short statement, so no lock is held for long.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn prune_audit_events(
        &self,
        cutoff: DateTime<Utc>,
        batch: u64,
    ) -> Result<u64, StoreError> {
        let _turn = self.writer_turn().await?;
        let oldest = audit_event::Entity::find()
            .select_only()
            .column(audit_event::Column::Id)
            .filter(audit_event::Column::At.lt(cutoff))
            .order_by_asc(audit_event::Column::At)
            .limit(batch)
            .into_tuple::<Uuid>()
            .all(&self.db)
            .await?;
        if oldest.is_empty() {
            return Ok(0);
        }
        let deleted = audit_event::Entity::delete_many()
            .filter(audit_event::Column::Id.is_in(oldest))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected)
    }
}

/// Which events to list.
#[derive(Debug, Clone)]
pub struct AuditFilter {
    /// Events where this id is the actor or the subject.
    pub user: Option<Uuid>,
    /// Events where this id is the subject.
    pub subject: Option<Uuid>,
    /// Only these kinds; empty: every kind.
    pub events: Vec<Event>,
    /// Exclusive bounds on `at`.
    pub after: Option<DateTime<Utc>>,
    /// Exclusive bounds on `at`.
    pub before: Option<DateTime<Utc>>,
    /// Where the previous page ended.
    pub cursor: Option<(DateTime<Utc>, Uuid)>,
    /// 1 to 100.
    pub per_page: u32,
}

impl AuditFilter {
    /// Decodes a `next_cursor`; `None` when it is not one.
    #[must_use]
    pub fn cursor_of(raw: &str) -> Option<(DateTime<Utc>, Uuid)> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (micros, id) = text.split_once('.')?;
        let at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
        Some((at, Uuid::parse_str(id).ok()?))
    }
}

fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{}.{}",
        at.timestamp_micros(),
        id.simple()
    ))
}

/// An event as stored.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// Its id.
    pub id: Uuid,
    /// When.
    pub at: DateTime<Utc>,
    /// The event's name.
    pub event: String,
    /// Who acted.
    pub actor_id: Option<Uuid>,
    /// The account acted on.
    pub subject_id: Option<Uuid>,
    /// The client's address.
    pub ip: Option<String>,
    /// Its `User-Agent`.
    pub user_agent: Option<String>,
    /// The request's id.
    pub request_id: Option<String>,
    /// A small object.
    pub details: serde_json::Value,
}

/// A page of events and where the next starts.
#[derive(Debug, Clone)]
pub struct AuditPage {
    /// Newest first.
    pub items: Vec<StoredEvent>,
    /// `None` on the last page.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_none() {
        let at = now();
        let id = Uuid::now_v7();
        assert_eq!(
            AuditFilter::cursor_of(&encode_cursor(at, id)),
            Some((at, id))
        );
        for bad in ["", "x", "!!!", "MTIz", &encode_cursor(at, id)[1..]] {
            assert_eq!(AuditFilter::cursor_of(bad), None, "{bad:?}");
        }
    }
}
