//! Storage: SeaORM queries behind methods that speak domain types. Nothing
//! here knows about HTTP; nothing outside knows about SQL.
//!
//! One file per table family (`users`, `sessions`, `throttle`), the listing
//! (`listing`, with its remembered `offsets`), write transactions
//! (`transaction`), and what database errors mean (`error`). A query is
//! written with SeaORM or sea-query; the few on the hottest paths opt in to
//! `prepared`, the one fast path, which keeps its equivalence tests.

mod audit;
mod error;
mod listing;
mod offsets;
mod outbox;
mod prepared;
mod sessions;
mod throttle;
mod tokens;
mod transaction;
mod users;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, SubsecRound as _, Utc};
use sea_orm::{DatabaseConnection, DbErr, SqlErr};

pub use audit::{AuditFilter, AuditPage, StoredEvent};
pub use outbox::ClaimedMail;
pub use sessions::{RefreshOutcome, SessionInfo};
pub use tokens::NewToken;
pub use users::{NewUser, UserChange};

/// Outcomes a caller handles, and database failures it cannot.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The (lower-cased) email belongs to another account.
    #[error("email is taken")]
    EmailTaken,
    /// The change would leave no admin.
    #[error("would remove the last admin")]
    LastAdmin,
    /// No such row.
    #[error("not found")]
    NotFound,
    /// The row changed since the caller's `If-Match` ETag.
    #[error("precondition failed")]
    PreconditionFailed,
    /// The database cannot be reached, for now: try again later.
    #[error("database unavailable: {0}")]
    Unavailable(DbErr),
    /// A mail could not be composed inside a transaction (a bug).
    #[error("cannot compose a mail: {0}")]
    Compose(String),
    /// Any other database failure: a bug or a broken invariant.
    #[error(transparent)]
    Internal(DbErr),
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        if error::is_unavailable(&err) {
            Self::Unavailable(err)
        } else {
            Self::Internal(err)
        }
    }
}

/// The storage handle; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// This process's SQLite writers take turns here (see
    /// `transaction::write_transaction`).
    writer: Arc<tokio::sync::Mutex<()>>,
    /// How long a writer waits for its turn before giving up as a pool
    /// acquire would (a 503).
    writer_timeout: Duration,
    /// Where offset pages of the default order start (see `offsets`).
    offsets: Arc<offsets::Offsets>,
    /// Counts the audit events written, when metrics are on.
    metrics: Option<Arc<crate::infra::metrics::Metrics>>,
}

impl Store {
    /// Wraps a connection pool; writers wait for their turn as long as the
    /// default acquire timeout (see [`Self::with_write_timeout`]).
    #[must_use]
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            writer: Arc::default(),
            writer_timeout: Duration::from_secs(5),
            offsets: Arc::default(),
            metrics: None,
        }
    }

    /// Counts the audit events it writes in `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Option<Arc<crate::infra::metrics::Metrics>>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Sets how long a writer waits for its turn: the pool's acquire timeout.
    #[must_use]
    pub const fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.writer_timeout = timeout;
        self
    }
}

/// Now, at the microsecond precision both backends store.
#[must_use]
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Maps a unique violation to `on_unique`, anything else as any `DbErr`.
fn on_unique(err: DbErr, on_unique: StoreError) -> StoreError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => on_unique,
        _ => err.into(),
    }
}
