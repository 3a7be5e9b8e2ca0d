//! Creates `users` with the indexes the list endpoint's sorts and filters use.

use sea_orm_migration::{prelude::*, sea_orm};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    // DDL is transactional on both backends: a failed migration leaves nothing behind.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The contract sorts `email` and `name` by code point. SQLite's default
        // BINARY collation does; on Postgres the database's locale would not,
        // so those columns (and their indexes) use the "C" collation.
        let mut email = ColumnDef::new(Users::Email);
        let mut name = ColumnDef::new(Users::Name);
        if manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            email.extra("COLLATE \"C\"");
            name.extra("COLLATE \"C\"");
        }
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(ColumnDef::new(Users::Id).uuid().not_null().primary_key())
                    // Stored lower-cased by the application, so a plain unique
                    // index gives case-insensitive uniqueness on both backends.
                    .col(email.string_len(254).not_null())
                    .col(ColumnDef::new(Users::PasswordHash).string().not_null())
                    .col(name.string_len(100).null())
                    .col(
                        ColumnDef::new(Users::Role)
                            .string_len(16)
                            .not_null()
                            .check(Expr::col(Users::Role).is_in(["admin", "user"])),
                    )
                    .col(
                        ColumnDef::new(Users::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Users::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        let indexes = [
            ("ux_users_email", vec![Users::Email], true),
            // Default sort (`-created_at`) and `created_after`/`created_before`,
            // with `id` as the keyset tie-break.
            (
                "ix_users_created_at_id",
                vec![Users::CreatedAt, Users::Id],
                false,
            ),
            ("ix_users_name_id", vec![Users::Name, Users::Id], false),
            (
                "ix_users_role_created_at_id",
                vec![Users::Role, Users::CreatedAt, Users::Id],
                false,
            ),
        ];
        for (name, cols, unique) in indexes {
            let mut index = Index::create();
            index.name(name).table(Users::Table);
            for col in cols {
                index.col(col);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }
        if manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            // `-name` sorts unnamed users last: a backward scan of the index
            // above would put them first, so Postgres needs this order too.
            manager
                .get_connection()
                .execute_unprepared(
                    "CREATE INDEX ix_users_name_desc_id ON users (name DESC NULLS LAST, id DESC)",
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub(crate) enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    Name,
    Role,
    CreatedAt,
    UpdatedAt,
}
