//! The store's one fast path, for the statements on the hottest paths: SQL
//! rendered once per shape ([`Rendered`]), run on the backend's pool
//! directly ([`Store::fetch_one`], [`Store::fetch_all`]), and user rows
//! decoded by position ([`UserRow::read`]). Every other query is written the
//! plain way, with SeaORM; one opts in by building its statement through a
//! `static` [`Rendered`] and running it with `fetch_one`/`fetch_all`. Each
//! part is held to the plain path's result by a test: here for the pool and
//! the decoding, beside each rendered statement for its values' order.
//! `benches/bearer.rs` and the k6 W1/W2c workloads measure what it buys.

use std::sync::OnceLock;

use entity::user;
use sea_orm::{
    ConnectionTrait as _, DatabaseConnectionType, DbBackend, DbErr, QueryResult, Statement,
    StatementBuilder, Value, sea_query::Values,
};
use uuid::Uuid;

use super::{Store, StoreError};
use crate::domain::{AccountStatus, Email, Role, User, UserName};

/// SQL rendered once per slot: a statement whose shape is fixed and whose
/// values change is built and rendered by sea-query the first time only.
/// The caller lists the values in the order the SQL takes them, which a
/// test beside each use compares with sea-query's own statement.
pub(super) struct Rendered<const N: usize>([OnceLock<String>; N]);

impl<const N: usize> Rendered<N> {
    /// No slot rendered yet.
    pub(super) const fn new() -> Self {
        Self([const { OnceLock::new() }; N])
    }

    /// The statement of `slot` (which must name the backend and shape):
    /// its SQL as `build` renders it the first time, with `values`.
    pub(super) fn statement<S: StatementBuilder>(
        &self,
        slot: usize,
        backend: DbBackend,
        values: Vec<Value>,
        build: impl FnOnce() -> S,
    ) -> Statement {
        let sql = self.0[slot].get_or_init(|| backend.build(&build()).sql);
        Statement {
            sql: sql.clone(),
            values: Some(Values(values)),
            db_backend: backend,
        }
    }
}

/// The slot of a statement that has one shape per backend, among 3.
pub(super) const fn backend_slot(backend: DbBackend) -> usize {
    match backend {
        DbBackend::Sqlite => 0,
        DbBackend::Postgres => 1,
        _ => 2,
    }
}

impl Store {
    /// The first row of a read, from the backend's pool itself (which times
    /// the statement for the metric callback, as always).
    /// `ConnectionTrait::query_one` makes the same call through two boxed,
    /// instrumented futures for a trace-level span Roster never enables,
    /// and copying them costs a read of W1 measurably (`k6/callgrind.sh`).
    pub(super) async fn query_one<S: StatementBuilder>(
        &self,
        stmt: &S,
    ) -> Result<Option<QueryResult>, DbErr> {
        self.fetch_one(self.db.get_database_backend().build(stmt))
            .await
    }

    /// [`Self::query_one`] of a built statement.
    pub(super) async fn fetch_one(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match &self.db.inner {
            #[cfg(feature = "sqlite")]
            DatabaseConnectionType::SqlxSqlitePoolConnection(pool) => pool.query_one(stmt).await,
            #[cfg(feature = "postgres")]
            DatabaseConnectionType::SqlxPostgresPoolConnection(pool) => pool.query_one(stmt).await,
            _ => self.db.query_one_raw(stmt).await,
        }
    }

    /// Every row of a built statement, as [`Self::query_one`] reads one.
    pub(super) async fn fetch_all(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match &self.db.inner {
            #[cfg(feature = "sqlite")]
            DatabaseConnectionType::SqlxSqlitePoolConnection(pool) => pool.query_all(stmt).await,
            #[cfg(feature = "postgres")]
            DatabaseConnectionType::SqlxPostgresPoolConnection(pool) => pool.query_all(stmt).await,
            _ => self.db.query_all_raw(stmt).await,
        }
    }
}

/// The columns of a [`User`]: every column but the password hash.
pub(super) const USER_COLUMNS: [user::Column; 9] = [
    user::Column::Id,
    user::Column::Email,
    user::Column::Name,
    user::Column::Role,
    user::Column::CreatedAt,
    user::Column::UpdatedAt,
    user::Column::Status,
    user::Column::EmailVerified,
    user::Column::LastLoginAt,
];

// `UserRow::read` takes the columns by position, in this order.
const _: () = assert!(matches!(
    USER_COLUMNS,
    [
        user::Column::Id,
        user::Column::Email,
        user::Column::Name,
        user::Column::Role,
        user::Column::CreatedAt,
        user::Column::UpdatedAt,
        user::Column::Status,
        user::Column::EmailVerified,
        user::Column::LastLoginAt,
    ]
));

/// A user row read without its password hash (see [`USER_COLUMNS`]).
#[derive(Debug)]
pub(super) struct UserRow {
    pub(super) id: Uuid,
    pub(super) email: String,
    pub(super) name: Option<String>,
    pub(super) role: String,
    pub(super) created_at: chrono::DateTime<chrono::Utc>,
    pub(super) updated_at: chrono::DateTime<chrono::Utc>,
    pub(super) status: String,
    pub(super) email_verified: bool,
    pub(super) last_login_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl UserRow {
    /// The row whose [`USER_COLUMNS`] are the statement's columns `first`
    /// to `first + 8`, in that order. By position rather than by name: a
    /// name is looked up in the row's column map, and a prefixed one is
    /// formatted first, for every column of every row.
    pub(super) fn read(row: &QueryResult, first: usize) -> Result<Self, DbErr> {
        Ok(Self {
            id: row.try_get_by_index(first)?,
            email: row.try_get_by_index(first + 1)?,
            name: row.try_get_by_index(first + 2)?,
            role: row.try_get_by_index(first + 3)?,
            created_at: row.try_get_by_index(first + 4)?,
            updated_at: row.try_get_by_index(first + 5)?,
            status: row.try_get_by_index(first + 6)?,
            email_verified: row.try_get_by_index(first + 7)?,
            last_login_at: row.try_get_by_index(first + 8)?,
        })
    }
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(m: UserRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: m.id,
            email: Email::from_stored(m.email),
            name: m.name.map(UserName::from_stored),
            role: Role::parse(&m.role).map_err(|e| {
                StoreError::Internal(sea_orm::DbErr::Type(format!("users.role: {e}")))
            })?,
            created_at: m.created_at,
            updated_at: m.updated_at,
            status: AccountStatus::parse(&m.status).map_err(|e| {
                StoreError::Internal(sea_orm::DbErr::Type(format!("users.status: {e}")))
            })?,
            email_verified: m.email_verified,
            last_login_at: m.last_login_at,
        })
    }
}

#[cfg(test)]
mod tests {
    #[cfg(feature = "sqlite")]
    use migration::{Migrator, MigratorTrait as _};
    use sea_orm::sea_query::{Expr, Query};
    #[cfg(feature = "sqlite")]
    use sea_orm::{EntityTrait as _, sea_query::ExprTrait as _};

    use super::*;
    #[cfg(feature = "sqlite")]
    use crate::domain::{Email, UserName};

    /// A store on a fresh in-memory SQLite database with every migration.
    #[cfg(feature = "sqlite")]
    async fn store() -> Store {
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        Migrator::up(&db, None).await.unwrap();
        Store::new(db)
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn the_fast_path_reads_what_seaorm_reads() {
        let store = store().await;
        let name = UserName::parse("Ann \"Lee\" ü").unwrap();
        let mut ids = Vec::new();
        for (email, name, role) in [
            ("ann@x.io", Some(&name), Role::Admin),
            ("bob@x.io", None, Role::User),
        ] {
            let user = store
                .create_user(
                    super::super::NewUser {
                        email: &Email::parse(email).unwrap(),
                        password_hash: "hash".into(),
                        name,
                        role,
                        status: crate::domain::AccountStatus::Active,
                        email_verified: true,
                    },
                    None,
                    &[],
                    Vec::new(),
                )
                .await
                .unwrap();
            ids.push(user.id);
        }
        let select = Query::select()
            .columns(USER_COLUMNS.map(|column| (user::Entity, column)))
            .from(user::Entity)
            .to_owned();
        let stmt = DbBackend::Sqlite.build(&select);
        // The pool bypass returns the rows the connection's own path does.
        let fast = store.fetch_all(stmt.clone()).await.unwrap();
        let plain = store.db.query_all_raw(stmt.clone()).await.unwrap();
        assert_eq!(fast.len(), plain.len());
        let one = store.fetch_one(stmt).await.unwrap();
        assert!(one.is_some());
        // Decoding by position gives the users SeaORM's models give.
        for (row, plain_row) in fast.iter().zip(&plain) {
            let by_position = User::try_from(UserRow::read(row, 0).unwrap()).unwrap();
            let again = User::try_from(UserRow::read(plain_row, 0).unwrap()).unwrap();
            let model = user::Entity::find_by_id(by_position.id)
                .one(&store.db)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(by_position, User::try_from(model).unwrap());
            assert_eq!(by_position, again);
        }
        // Columns after others are read from their offset.
        let wide = Query::select()
            .expr(Expr::val(7))
            .columns(USER_COLUMNS.map(|column| (user::Entity, column)))
            .from(user::Entity)
            .and_where(Expr::col(user::Column::Id).eq(ids[1]))
            .to_owned();
        let row = store
            .fetch_one(DbBackend::Sqlite.build(&wide))
            .await
            .unwrap()
            .unwrap();
        let bob = User::try_from(UserRow::read(&row, 1).unwrap()).unwrap();
        assert_eq!((bob.id, bob.name), (ids[1], None));
    }

    #[test]
    fn rendered_sql_is_built_once_and_takes_new_values() {
        static SQL: Rendered<3> = Rendered::new();
        let build = |id: i32| Query::select().expr(Expr::val(id)).to_owned();
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            for id in [1, 2] {
                let fast = SQL.statement(backend_slot(backend), backend, vec![id.into()], || {
                    build(id)
                });
                assert_eq!(fast, backend.build(&build(id)), "{backend:?} {id}");
            }
        }
    }
}
