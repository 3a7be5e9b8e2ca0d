//! Migrations on both backends, the Postgres migration lock, and SQLite's pragmas.

use migration::{Migrator, MigratorTrait as _};
use roster::{config::Config, infra::db::Database};
use sea_orm::{
    ActiveModelTrait as _, ActiveValue::Set, ConnectionTrait, EntityTrait as _, Statement,
};

use crate::helpers::{Backend, TestDatabase, backends, test_settings};

async fn connect(url: &str) -> Database {
    let config = Config::from_settings(&test_settings(url)).unwrap();
    Database::connect(&config.database).await.unwrap()
}

#[tokio::test]
async fn migrations_apply_and_report_status_on_every_backend() {
    for backend in backends() {
        let (_database, url) = TestDatabase::create(&backend).await;
        let db = connect(&url).await;
        let before = db.migration_status().await.unwrap();
        assert!(
            !before.is_empty() && before.iter().all(|m| !m.applied),
            "{backend:?}"
        );
        assert!(
            db.check_ready().await.is_err(),
            "pending migrations are not ready"
        );

        db.migrate().await.unwrap();
        let after = db.migration_status().await.unwrap();
        assert!(after.iter().all(|m| m.applied), "{backend:?}: {after:?}");
        db.check_ready().await.unwrap();

        // Applying again is a no-op.
        db.migrate().await.unwrap();
        db.close().await;
    }
}

#[tokio::test]
async fn concurrent_migrations_on_postgres_apply_once() {
    let Some((backend, _)) = crate::helpers::postgres() else {
        return;
    };
    let (_database, url) = TestDatabase::create(&backend).await;
    let (a, b) = (connect(&url).await, connect(&url).await);
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();
    let rows = a
        .conn()
        .query_one_raw(Statement::from_string(
            a.conn().get_database_backend(),
            "SELECT COUNT(*) AS n FROM seaql_migrations",
        ))
        .await
        .unwrap()
        .unwrap();
    let applied: i64 = rows.try_get("", "n").unwrap();
    assert_eq!(applied as usize, a.migration_status().await.unwrap().len());
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn sqlite_connections_use_wal_foreign_keys_busy_timeout_normal_sync_and_a_share_of_cache() {
    let (_database, url) = TestDatabase::create(&Backend::Sqlite).await;
    let db = connect(&url).await;
    let pragma = |name: &'static str| {
        let db = db.clone();
        async move {
            let row = db
                .conn()
                .query_one_raw(Statement::from_string(
                    sea_orm::DatabaseBackend::Sqlite,
                    format!("PRAGMA {name}"),
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get_by_index::<sea_orm::JsonValue>(0)
                .map(|v| v.to_string())
                .or_else(|_| row.try_get_by_index::<i64>(0).map(|v| v.to_string()))
                .or_else(|_| row.try_get_by_index::<String>(0))
                .unwrap()
        }
    };
    assert_eq!(pragma("journal_mode").await.trim_matches('"'), "wal");
    assert_eq!(pragma("foreign_keys").await, "1");
    assert_eq!(pragma("busy_timeout").await, "5000");
    assert_eq!(pragma("synchronous").await, "1", "1 is NORMAL");
    assert_eq!(db.pool_stats().max, 4);
    assert_eq!(
        pragma("cache_size").await,
        "-4096",
        "16 MiB over 4 connections"
    );
    db.close().await;
}

/// The count migrations go down and up again on a database with users: the
/// counts come back exact and the triggers work again.
#[tokio::test]
async fn count_migrations_go_down_and_up_again_on_every_backend() {
    for backend in backends() {
        let (_database, url) = TestDatabase::create(&backend).await;
        let db = connect(&url).await;
        db.migrate().await.unwrap();
        let user = |email: &str| entity::user::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            email: Set(email.into()),
            password_hash: Set("not-a-hash".into()),
            name: Set(None),
            role: Set("user".into()),
            created_at: Set(roster::store::now()),
            updated_at: Set(roster::store::now()),
            status: Set("active".into()),
            email_verified: Set(false),
            last_login_at: Set(None),
        };
        user("a@x.io").insert(db.conn()).await.unwrap();

        // Down past the counts table (migrations 3 to 5), then up again.
        let counted = Migrator::migrations().len() - 2;
        Migrator::down(db.conn(), Some(u32::try_from(counted).unwrap()))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        user("b@x.io").insert(db.conn()).await.unwrap();

        let counts = entity::user_role_count::Entity::find()
            .all(db.conn())
            .await
            .unwrap();
        assert_eq!(counts.len(), 1, "{backend:?}: {counts:?}");
        assert_eq!(counts[0].users, 2, "{backend:?}");
        assert_eq!(
            counts[0].changes, 1,
            "{backend:?}: the insert after going up"
        );
        db.close().await;
    }
}

#[tokio::test]
async fn postgres_columns_are_sized_by_the_domain_limits() {
    use roster::domain::limits::{EMAIL_MAX_CHARS, NAME_MAX_CHARS, USER_AGENT_MAX_CHARS};
    let Some((backend, _)) = crate::helpers::postgres() else {
        return;
    };
    let (_database, url) = TestDatabase::create(&backend).await;
    let db = connect(&url).await;
    db.migrate().await.unwrap();
    for (table, column, limit) in [
        ("users", "email", EMAIL_MAX_CHARS),
        ("users", "name", NAME_MAX_CHARS),
        ("sessions", "user_agent", USER_AGENT_MAX_CHARS),
    ] {
        let row = db
            .conn()
            .query_one_raw(Statement::from_string(
                db.conn().get_database_backend(),
                format!(
                    "SELECT character_maximum_length AS n FROM information_schema.columns \
                     WHERE table_name = '{table}' AND column_name = '{column}'"
                ),
            ))
            .await
            .unwrap()
            .unwrap();
        let size: i32 = row.try_get("", "n").unwrap();
        assert_eq!(size as usize, limit, "{table}.{column}");
    }
    db.close().await;
}
