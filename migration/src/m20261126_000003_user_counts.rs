//! `user_role_counts`: how many users have each role, kept exact by
//! triggers on `users`, so that `total` on an unfiltered (or role-only)
//! `GET /users` page is a read of one or two rows instead of a `COUNT(*)`
//! that grows with the table.

use sea_orm_migration::{prelude::*, sea_orm};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// SQLite: one trigger per event. A role change decrements before it
/// increments; both backends hold the whole statement's writes in its
/// transaction, so a count is never seen half-updated.
pub(crate) const SQLITE_UP: &[&str] = &[
    "CREATE TRIGGER users_count_insert AFTER INSERT ON users BEGIN
        INSERT INTO user_role_counts (role, users) VALUES (NEW.role, 1)
        ON CONFLICT (role) DO UPDATE SET users = users + 1;
    END",
    "CREATE TRIGGER users_count_delete AFTER DELETE ON users BEGIN
        UPDATE user_role_counts SET users = users - 1 WHERE role = OLD.role;
    END",
    "CREATE TRIGGER users_count_update AFTER UPDATE OF role ON users
    WHEN OLD.role IS NOT NEW.role BEGIN
        UPDATE user_role_counts SET users = users - 1 WHERE role = OLD.role;
        INSERT INTO user_role_counts (role, users) VALUES (NEW.role, 1)
        ON CONFLICT (role) DO UPDATE SET users = users + 1;
    END",
];

/// Postgres: one function for every event. A role change touches its two
/// count rows in role order, so concurrent promotions and demotions lock
/// them in the same order and cannot deadlock each other.
const POSTGRES_UP: &[&str] = &[
    r"CREATE FUNCTION users_count_bump(which TEXT, delta BIGINT) RETURNS void
    LANGUAGE sql AS $$
        INSERT INTO user_role_counts (role, users) VALUES (which, delta)
        ON CONFLICT (role) DO UPDATE SET users = user_role_counts.users + delta
    $$",
    r"CREATE FUNCTION users_count() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            PERFORM users_count_bump(NEW.role, 1);
        ELSIF TG_OP = 'DELETE' THEN
            PERFORM users_count_bump(OLD.role, -1);
        ELSIF OLD.role < NEW.role THEN
            PERFORM users_count_bump(OLD.role, -1);
            PERFORM users_count_bump(NEW.role, 1);
        ELSE
            PERFORM users_count_bump(NEW.role, 1);
            PERFORM users_count_bump(OLD.role, -1);
        END IF;
        RETURN NULL;
    END
    $$",
    "CREATE TRIGGER users_count_insert_delete AFTER INSERT OR DELETE ON users
        FOR EACH ROW EXECUTE FUNCTION users_count()",
    "CREATE TRIGGER users_count_update AFTER UPDATE OF role ON users
        FOR EACH ROW WHEN (OLD.role IS DISTINCT FROM NEW.role) EXECUTE FUNCTION users_count()",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UserRoleCounts::Table)
                    .col(
                        ColumnDef::new(UserRoleCounts::Role)
                            .string_len(16)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(UserRoleCounts::Users)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        if manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            // Another instance may be writing users while this one migrates:
            // hold their writes until the triggers exist (the migration is one
            // transaction), so the initial count misses nobody. SQLite's
            // migration transaction already excludes every other writer.
            db.execute_unprepared("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
                .await?;
        }
        db.execute_unprepared(
            "INSERT INTO user_role_counts (role, users) SELECT role, COUNT(*) FROM users GROUP BY role",
        )
        .await?;
        let triggers = match manager.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => POSTGRES_UP,
            _ => SQLITE_UP,
        };
        for sql in triggers {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            db.execute_unprepared("DROP TRIGGER IF EXISTS users_count_insert_delete ON users")
                .await?;
            db.execute_unprepared("DROP TRIGGER IF EXISTS users_count_update ON users")
                .await?;
            db.execute_unprepared("DROP FUNCTION IF EXISTS users_count()")
                .await?;
            db.execute_unprepared("DROP FUNCTION IF EXISTS users_count_bump(TEXT, BIGINT)")
                .await?;
        } else {
            for name in [
                "users_count_insert",
                "users_count_delete",
                "users_count_update",
            ] {
                db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {name}"))
                    .await?;
            }
        }
        manager
            .drop_table(Table::drop().table(UserRoleCounts::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum UserRoleCounts {
    Table,
    Role,
    Users,
}
