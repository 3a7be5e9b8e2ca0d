//! The account lifecycle's columns on `users`: `status` (`active`,
//! `invited`, `disabled`), `email_verified` and `last_login_at`. Accounts
//! that exist already are active; their addresses were never proven, so
//! they start unverified.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Status,
    EmailVerified,
    LastLoginAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        let columns = [
            ColumnDef::new(Users::Status)
                .string_len(16)
                .not_null()
                .default("active")
                .check(Expr::col(Users::Status).is_in(["active", "invited", "disabled"]))
                .to_owned(),
            ColumnDef::new(Users::EmailVerified)
                .boolean()
                .not_null()
                .default(false)
                .to_owned(),
            ColumnDef::new(Users::LastLoginAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Users::LastLoginAt, Users::EmailVerified, Users::Status] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
