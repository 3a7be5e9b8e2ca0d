//! The changes counter of `user_role_counts` (see
//! `m20261126_000004_user_changes`) also moves when a user's `created_at` or
//! `id` changes. Roster never changes either, but a row edited in SQL moves
//! in the `created_at` order just as a new one does, and remembered offset
//! pages must notice.

use sea_orm_migration::{prelude::*, sea_orm};

#[derive(DeriveMigrationName)]
pub struct Migration;

const SQLITE_UP: &[&str] = &[
    "CREATE TRIGGER users_order_update AFTER UPDATE OF created_at, id ON users
    WHEN OLD.created_at IS NOT NEW.created_at OR OLD.id IS NOT NEW.id BEGIN
        INSERT INTO user_role_counts (role, users, changes) VALUES (NEW.role, 0, 1)
        ON CONFLICT (role) DO UPDATE SET changes = changes + 1;
    END",
];

const SQLITE_DOWN: &[&str] = &["DROP TRIGGER IF EXISTS users_order_update"];

/// A bump by 0 users still counts as a change (`users_count_bump`).
const POSTGRES_UP: &[&str] = &[
    r"CREATE FUNCTION users_order_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM users_count_bump(NEW.role, 0);
        RETURN NULL;
    END
    $$",
    "CREATE TRIGGER users_order_update AFTER UPDATE OF created_at, id ON users
        FOR EACH ROW
        WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at OR OLD.id IS DISTINCT FROM NEW.id)
        EXECUTE FUNCTION users_order_changed()",
];

const POSTGRES_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS users_order_update ON users",
    "DROP FUNCTION IF EXISTS users_order_changed()",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, SQLITE_UP, POSTGRES_UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, SQLITE_DOWN, POSTGRES_DOWN).await
    }
}

async fn run(manager: &SchemaManager<'_>, sqlite: &[&str], postgres: &[&str]) -> Result<(), DbErr> {
    let statements = match manager.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => postgres,
        _ => sqlite,
    };
    for sql in statements {
        manager.get_connection().execute_unprepared(sql).await?;
    }
    Ok(())
}
