//! The database connection: pool set-up per backend, migrations, and health figures.

use std::{str::FromStr, sync::Arc, time::Duration};

use anyhow::Context as _;
use migration::{Migrator, MigratorTrait};
#[cfg(feature = "postgres")]
use sea_orm::SqlxPostgresConnector;
#[cfg(feature = "sqlite")]
use sea_orm::SqlxSqliteConnector;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use secrecy::ExposeSecret;
#[cfg(feature = "postgres")]
use sqlx::{
    Connection as _, PgPool,
    postgres::{PgConnectOptions, PgConnection, PgPoolOptions},
};
#[cfg(feature = "sqlite")]
use sqlx::{
    SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!("enable at least one database backend: the `sqlite` or `postgres` feature");

use crate::config::{Backend, DatabaseConfig};

/// Told of every statement the pool runs. The metrics implement it, so that
/// this layer needs to know nothing of them.
pub trait StatementObserver: Send + Sync {
    /// A statement of `operation` (see [`operation_of`]) on `system`
    /// (`sqlite`, `postgresql`) finished after `elapsed`.
    fn statement_finished(&self, system: &'static str, operation: &'static str, elapsed: Duration);
}

/// How long a SQLite writer waits for the lock before failing with "busy".
#[cfg(feature = "sqlite")]
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite's page cache, in KiB, for the whole pool: each connection keeps
/// its own, and the pool hands its connections out in turn, so every
/// connection's cache meets the whole working set. Split evenly, a smaller
/// pool gets larger caches that miss less, and a larger one, up to 64
/// connections, does not grow the process (past 64, each keeps 256 KiB).
#[cfg(feature = "sqlite")]
const SQLITE_PAGE_CACHE_KIB: u32 = 16 * 1024;

/// Each connection's share of [`SQLITE_PAGE_CACHE_KIB`], at least 256 KiB,
/// as `PRAGMA cache_size` takes it (negative: KiB rather than pages).
#[cfg(feature = "sqlite")]
fn sqlite_cache_size(max_connections: u32) -> String {
    let kib = (SQLITE_PAGE_CACHE_KIB / max_connections.max(1)).max(256);
    format!("-{kib}")
}

/// A Postgres connection idle for longer than this is pinged before a
/// request gets it: the server may have closed it meanwhile (a restart, an
/// idle timeout, `pg_terminate_backend`). sqlx already pings every
/// connection as it goes back to the pool, so one that is handed out again
/// sooner was alive a moment ago, and under load the ping would be a second
/// round trip on every request's path. The cost: a connection that dies
/// within that second (a restart under load) fails the one statement it is
/// handed, with a 503, before the pool replaces it.
#[cfg(feature = "postgres")]
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// An arbitrary, fixed key for `pg_advisory_lock`, so that instances starting
/// at once on one Postgres apply migrations one after the other.
#[cfg(feature = "postgres")]
const MIGRATION_LOCK_KEY: i64 = 0x526f_7374_6572; // "Roster" in ASCII

/// The connection pool, with the SeaORM handle and the sqlx pool behind it.
#[derive(Clone, Debug)]
pub struct Database {
    conn: DatabaseConnection,
    pool: Pool,
}

#[derive(Clone, Debug)]
enum Pool {
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
}

/// A pooled connection held out of the pool.
#[derive(Debug)]
pub enum HeldConnection {
    /// SQLite.
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    /// Postgres.
    #[cfg(feature = "postgres")]
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

/// Pool occupancy for `/health` and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections.
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// Configured maximum.
    pub max: u32,
}

/// One migration and whether it has been applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    /// Migration name, e.g. `m20261126_000001_create_users`.
    pub name: String,
    /// Whether it is applied.
    pub applied: bool,
}

impl Database {
    /// Opens the pool. SQLite gets WAL, foreign keys, a busy timeout,
    /// `synchronous=NORMAL` and 16 MiB of page cache split across the
    /// pool's connections (1 MiB each for the default 16).
    ///
    /// # Errors
    ///
    /// When the URL cannot be parsed or the first connection fails.
    pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<Self> {
        let url = config.url.expose_secret();
        match config.backend {
            #[cfg(not(feature = "sqlite"))]
            Backend::Sqlite => anyhow::bail!("roster was built without sqlite support"),
            #[cfg(not(feature = "postgres"))]
            Backend::Postgres => anyhow::bail!("roster was built without postgres support"),
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)
                    .context("DATABASE_URL is not a valid SQLite URL")?
                    .journal_mode(SqliteJournalMode::Wal)
                    .foreign_keys(true)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .synchronous(SqliteSynchronous::Normal)
                    // SQLite's default is 2 MiB per connection: 16
                    // connections would hold 32 MiB of pages the OS already
                    // caches for the file.
                    .pragma("cache_size", sqlite_cache_size(config.max_connections));
                // No ping before each acquire: a connection to a file cannot
                // go stale, and sqlx's SQLite ping is a round trip to the
                // connection's worker thread, as dear as a statement.
                let mut pool = SqlitePoolOptions::new()
                    .max_connections(config.max_connections)
                    .min_connections(config.min_connections)
                    .acquire_timeout(config.acquire_timeout)
                    .test_before_acquire(false);
                if url.contains(":memory:") {
                    // The only connection *is* the database: never recycle it.
                    pool = pool.idle_timeout(None).max_lifetime(None);
                }
                let pool = pool
                    .connect_with(options)
                    .await
                    .context("cannot open the SQLite database")?;
                Ok(Self {
                    conn: SqlxSqliteConnector::from_sqlx_sqlite_pool(pool.clone()),
                    pool: Pool::Sqlite(pool),
                })
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                let options = PgConnectOptions::from_str(url)
                    .context("DATABASE_URL is not a valid PostgreSQL URL")?;
                let pool = PgPoolOptions::new()
                    .max_connections(config.max_connections)
                    .min_connections(config.min_connections)
                    .acquire_timeout(config.acquire_timeout)
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            if meta.idle_for > PING_IF_IDLE_FOR
                                && let Err(error) = conn.ping().await
                            {
                                // Expected after a restart or an idle
                                // timeout: the pool opens another.
                                tracing::debug!(%error, "an idle connection was closed; replacing it");
                                return Ok(false);
                            }
                            Ok(true)
                        })
                    })
                    .connect_with(options)
                    .await
                    .context("cannot connect to PostgreSQL")?;
                Ok(Self {
                    conn: SqlxPostgresConnector::from_sqlx_postgres_pool(pool.clone()),
                    pool: Pool::Postgres(pool),
                })
            }
        }
    }

    /// Times every statement: `db_client_operation_duration_seconds` by
    /// operation, and a client span under the request's span (statement
    /// kind only: no SQL text, no parameter values).
    pub fn instrument(&mut self, observer: Option<Arc<dyn StatementObserver>>) {
        let system = match self.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgresql",
        };
        // Looked up once: the callback runs on every statement.
        let tracer = opentelemetry::global::tracer("roster");
        self.conn.set_metric_callback(move |info| {
            let operation = operation_of(&info.statement.sql);
            if let Some(observer) = &observer {
                observer.statement_finished(system, operation, info.elapsed);
            }
            record_db_span(&tracer, system, operation, info.elapsed, info.failed);
        });
    }

    /// The SeaORM handle for queries.
    #[must_use]
    pub const fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// Applies pending migrations. On Postgres a session advisory lock, held
    /// on a connection of its own, makes concurrent starts take turns; each
    /// migration runs in a transaction, so a failure leaves nothing half-done.
    ///
    /// # Errors
    ///
    /// When a migration fails or the lock cannot be taken.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => Migrator::up(&self.conn, None)
                .await
                .context("applying migrations"),
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => {
                let mut lock = PgConnection::connect_with(&pool.connect_options())
                    .await
                    .context("connecting for the migration lock")?;
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(MIGRATION_LOCK_KEY)
                    .execute(&mut lock)
                    .await
                    .context("taking the migration lock")?;
                let result = Migrator::up(&self.conn, None)
                    .await
                    .context("applying migrations");
                // Closing the session releases the lock even if the unlock fails.
                let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(MIGRATION_LOCK_KEY)
                    .execute(&mut lock)
                    .await;
                let _ = lock.close().await;
                result
            }
        }
    }

    /// Every migration with its state, oldest first.
    ///
    /// # Errors
    ///
    /// When the migration table cannot be read.
    pub async fn migration_status(&self) -> anyhow::Result<Vec<MigrationState>> {
        let all = Migrator::get_migration_with_status_read_only(&self.conn)
            .await
            .context("reading migration state")?;
        Ok(all
            .iter()
            .map(|m| MigrationState {
                name: m.name().to_owned(),
                applied: m.status() == migration::MigrationStatus::Applied,
            })
            .collect())
    }

    /// Round-trips a trivial query and checks that no migration is pending;
    /// returns the round-trip time.
    ///
    /// # Errors
    ///
    /// When the database does not answer or migrations are pending.
    pub async fn check_ready(&self) -> anyhow::Result<Duration> {
        let started = std::time::Instant::now();
        self.conn
            .execute_unprepared("SELECT 1")
            .await
            .context("database does not answer")?;
        let latency = started.elapsed();
        let pending = Migrator::get_pending_migrations_read_only(&self.conn)
            .await
            .context("reading migration state")?;
        anyhow::ensure!(
            pending.is_empty(),
            "{} migrations are pending",
            pending.len()
        );
        Ok(latency)
    }

    /// Current pool occupancy.
    #[must_use]
    pub fn pool_stats(&self) -> PoolStats {
        let (size, idle, max) = match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
        };
        PoolStats {
            size,
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            max,
        }
    }

    /// Takes a connection out of the pool until the guard is dropped (tests
    /// use it to observe the pool gauges).
    ///
    /// # Errors
    ///
    /// When no connection can be acquired.
    pub async fn hold_connection(&self) -> anyhow::Result<HeldConnection> {
        Ok(match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => HeldConnection::Sqlite(p.acquire().await?),
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => HeldConnection::Postgres(p.acquire().await?),
        })
    }

    /// Which backend this is.
    #[must_use]
    pub const fn backend(&self) -> Backend {
        match self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => Backend::Sqlite,
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => p.close().await,
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => p.close().await,
        }
    }
}

/// A finished statement as a child span of the current request span. The
/// callback runs after the statement, so the span is built with explicit
/// start and end times.
fn record_db_span(
    tracer: &opentelemetry::global::BoxedTracer,
    system: &'static str,
    operation: &'static str,
    elapsed: Duration,
    failed: bool,
) {
    use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _};
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    let parent = tracing::Span::current().context();
    if !parent.span().span_context().is_valid() {
        return;
    }
    let end = std::time::SystemTime::now();
    let mut span = tracer
        .span_builder(operation)
        .with_kind(SpanKind::Client)
        .with_start_time(end.checked_sub(elapsed).unwrap_or(end))
        .with_attributes([
            opentelemetry::KeyValue::new("db.system.name", system),
            opentelemetry::KeyValue::new("db.operation.name", operation),
        ])
        .start_with_context(tracer, &parent);
    if failed {
        span.set_status(Status::error("statement failed"));
    }
    span.end_with_timestamp(end);
}

/// The lower-case first keyword of a statement: `select`, `insert`, `update`,
/// `delete`, or `other`.
#[must_use]
pub fn operation_of(sql: &str) -> &'static str {
    let word = sql
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default();
    match word.to_ascii_lowercase().as_str() {
        "select" => "select",
        "insert" => "insert",
        "update" => "update",
        "delete" => "delete",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "sqlite")]
    #[test]
    fn the_sqlite_page_cache_is_split_across_the_pool() {
        assert_eq!(sqlite_cache_size(16), "-1024");
        assert_eq!(sqlite_cache_size(4), "-4096");
        assert_eq!(sqlite_cache_size(1), "-16384");
        assert_eq!(sqlite_cache_size(0), "-16384");
        assert_eq!(sqlite_cache_size(1_000), "-256", "a floor for large pools");
    }

    #[test]
    fn operations_from_sql() {
        assert_eq!(operation_of("SELECT 1"), "select");
        assert_eq!(operation_of("  insert INTO x"), "insert");
        assert_eq!(operation_of("UPDATE\"users\""), "update");
        assert_eq!(operation_of("DELETE FROM x"), "delete");
        assert_eq!(
            operation_of("WITH x AS (SELECT 1) SELECT * FROM x"),
            "other"
        );
    }
}
