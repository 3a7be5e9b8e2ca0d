//! Migrations on both backends, the Postgres migration lock, and SQLite's pragmas.

use roster::{config::Config, db::Database};
use sea_orm::{ConnectionTrait, Statement};

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
    let Some(backend) = backends()
        .into_iter()
        .find(|b| matches!(b, Backend::Postgres(_)))
    else {
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
async fn sqlite_connections_use_wal_foreign_keys_busy_timeout_and_normal_sync() {
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
    db.close().await;
}
