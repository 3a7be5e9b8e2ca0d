//! `user_role_counts.changes`: how many times the triggers have touched each
//! count row, bumped by every insert, delete and role change of a user. Their
//! sum only grows, and it stays the same exactly while the set of users (and
//! their roles) does, so a `GET /users` statement that reads it alongside its
//! rows can tell whether an offset page it remembered earlier still starts
//! where it did (see `src/store/offsets.rs`) — across instances too, since
//! the number lives in the database.

use sea_orm_migration::{prelude::*, sea_orm};

#[derive(DeriveMigrationName)]
pub struct Migration;

const SQLITE_TRIGGERS: [&str; 3] = [
    "users_count_insert",
    "users_count_delete",
    "users_count_update",
];

/// The triggers of `m20261126_000003_user_counts`, each bumping `changes`
/// on the rows it touches.
const SQLITE_UP: &[&str] = &[
    "CREATE TRIGGER users_count_insert AFTER INSERT ON users BEGIN
        INSERT INTO user_role_counts (role, users, changes) VALUES (NEW.role, 1, 1)
        ON CONFLICT (role) DO UPDATE SET users = users + 1, changes = changes + 1;
    END",
    "CREATE TRIGGER users_count_delete AFTER DELETE ON users BEGIN
        UPDATE user_role_counts SET users = users - 1, changes = changes + 1
        WHERE role = OLD.role;
    END",
    "CREATE TRIGGER users_count_update AFTER UPDATE OF role ON users
    WHEN OLD.role IS NOT NEW.role BEGIN
        UPDATE user_role_counts SET users = users - 1, changes = changes + 1
        WHERE role = OLD.role;
        INSERT INTO user_role_counts (role, users, changes) VALUES (NEW.role, 1, 1)
        ON CONFLICT (role) DO UPDATE SET users = users + 1, changes = changes + 1;
    END",
];

/// `m20261126_000003_user_counts`'s triggers, as they were.
const SQLITE_DOWN: &[&str] = crate::m20261126_000003_user_counts::SQLITE_UP;

/// Postgres: every trigger event goes through this one function.
const POSTGRES_UP: &str = r"CREATE OR REPLACE FUNCTION users_count_bump(which TEXT, delta BIGINT)
    RETURNS void LANGUAGE sql AS $$
        INSERT INTO user_role_counts (role, users, changes) VALUES (which, delta, 1)
        ON CONFLICT (role) DO UPDATE SET users = user_role_counts.users + delta,
            changes = user_role_counts.changes + 1
    $$";

const POSTGRES_DOWN: &str = r"CREATE OR REPLACE FUNCTION users_count_bump(which TEXT, delta BIGINT)
    RETURNS void LANGUAGE sql AS $$
        INSERT INTO user_role_counts (role, users) VALUES (which, delta)
        ON CONFLICT (role) DO UPDATE SET users = user_role_counts.users + delta
    $$";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(UserRoleCounts::Table)
                    .add_column(
                        ColumnDef::new(UserRoleCounts::Changes)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        replace_triggers(manager, SQLITE_UP, POSTGRES_UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        replace_triggers(manager, SQLITE_DOWN, POSTGRES_DOWN).await?;
        manager
            .alter_table(
                Table::alter()
                    .table(UserRoleCounts::Table)
                    .drop_column(UserRoleCounts::Changes)
                    .to_owned(),
            )
            .await
    }
}

async fn replace_triggers(
    manager: &SchemaManager<'_>,
    sqlite: &[&str],
    postgres: &str,
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    if manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        return db.execute_unprepared(postgres).await.map(drop);
    }
    for name in SQLITE_TRIGGERS {
        db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {name}"))
            .await?;
    }
    for sql in sqlite {
        db.execute_unprepared(sql).await?;
    }
    Ok(())
}

#[derive(DeriveIden)]
enum UserRoleCounts {
    Table,
    Changes,
}
