//! Creates `sessions`, `refresh_tokens` and `login_throttle` for the accounts flows.

use sea_orm_migration::prelude::*;

use crate::m20261126_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    // DDL is transactional on both backends: a failed migration leaves nothing behind.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(ColumnDef::new(Sessions::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Sessions::UserId).uuid().not_null())
                    .col(timestamp(Sessions::CreatedAt))
                    .col(timestamp(Sessions::LastUsedAt))
                    .col(timestamp(Sessions::ExpiresAt))
                    .col(
                        ColumnDef::new(Sessions::RevokedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new(Sessions::UserAgent).string_len(512).null())
                    .col(ColumnDef::new(Sessions::Ip).string_len(64).null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sessions_user")
                            .from(Sessions::Table, Sessions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_sessions_user_id")
                    .table(Sessions::Table)
                    .col(Sessions::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    // SHA-256 of the token, hex: the token itself is never stored.
                    .col(
                        ColumnDef::new(RefreshTokens::TokenHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(RefreshTokens::SessionId).uuid().not_null())
                    .col(timestamp(RefreshTokens::IssuedAt))
                    .col(
                        ColumnDef::new(RefreshTokens::RotatedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_refresh_tokens_session")
                            .from(RefreshTokens::Table, RefreshTokens::SessionId)
                            .to(Sessions::Table, Sessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_refresh_tokens_session_id")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::SessionId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LoginThrottle::Table)
                    .col(
                        ColumnDef::new(LoginThrottle::Email)
                            .string_len(254)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(LoginThrottle::Failures).integer().not_null())
                    .col(timestamp(LoginThrottle::WindowStartedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            LoginThrottle::Table.into_iden(),
            RefreshTokens::Table.into_iden(),
            Sessions::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

fn timestamp(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    CreatedAt,
    LastUsedAt,
    ExpiresAt,
    RevokedAt,
    UserAgent,
    Ip,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    TokenHash,
    SessionId,
    IssuedAt,
    RotatedAt,
}

#[derive(DeriveIden)]
enum LoginThrottle {
    Table,
    Email,
    Failures,
    WindowStartedAt,
}
