//! Storage: SeaORM queries behind methods that speak domain types. Nothing
//! here knows about HTTP; nothing outside knows about SQL.

mod directory;
mod error;
mod offsets;
mod sessions;
mod throttle;
mod users;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, SubsecRound as _, Utc};
use sea_orm::{
    ConnectionTrait as _, DatabaseConnection, DatabaseConnectionType, DbErr, QueryResult, SqlErr,
    Statement, StatementBuilder,
};

pub use directory::UserChange;
pub use sessions::{RefreshOutcome, SessionInfo};

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
    /// `directory::write_transaction`).
    writer: Arc<tokio::sync::Mutex<()>>,
    /// How long a writer waits for its turn before giving up as a pool
    /// acquire would (a 503).
    writer_timeout: Duration,
    /// Where offset pages of the default order start (see `offsets`).
    offsets: Arc<offsets::Offsets>,
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
        }
    }

    /// Sets how long a writer waits for its turn: the pool's acquire timeout.
    #[must_use]
    pub const fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.writer_timeout = timeout;
        self
    }

    /// The first row of a read, from the backend's pool itself (which times
    /// the statement for the metric callback, as always).
    /// `ConnectionTrait::query_one` makes the same call through two boxed,
    /// instrumented futures for a trace-level span Roster never enables:
    /// callgrind counted 18% of a `GET /users/{id}` in copying them, and
    /// going around them saved 7% (the handler's future, now that much
    /// larger, is still copied once, into poem's box).
    async fn query_one<S: StatementBuilder>(&self, stmt: &S) -> Result<Option<QueryResult>, DbErr> {
        self.fetch_one(self.db.get_database_backend().build(stmt))
            .await
    }

    /// [`Self::query_one`] of a built statement.
    async fn fetch_one(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match &self.db.inner {
            #[cfg(feature = "sqlite")]
            DatabaseConnectionType::SqlxSqlitePoolConnection(pool) => pool.query_one(stmt).await,
            #[cfg(feature = "postgres")]
            DatabaseConnectionType::SqlxPostgresPoolConnection(pool) => pool.query_one(stmt).await,
            _ => self.db.query_one_raw(stmt).await,
        }
    }

    /// Every row of a built statement, as [`Self::query_one`] reads one.
    async fn fetch_all(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match &self.db.inner {
            #[cfg(feature = "sqlite")]
            DatabaseConnectionType::SqlxSqlitePoolConnection(pool) => pool.query_all(stmt).await,
            #[cfg(feature = "postgres")]
            DatabaseConnectionType::SqlxPostgresPoolConnection(pool) => pool.query_all(stmt).await,
            _ => self.db.query_all_raw(stmt).await,
        }
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
