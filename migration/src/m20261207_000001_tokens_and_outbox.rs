//! The account lifecycle's tables: `account_tokens`, the one-time tokens of
//! mailed links (only their hashes), and `mail_outbox`, the mail waiting to
//! be delivered, written in the same transaction as the change that causes
//! it.

use sea_orm_migration::prelude::*;

use crate::m20261126_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AccountTokens::Table)
                    // SHA-256 of the token, hex: the token itself is only in the mail.
                    .col(
                        ColumnDef::new(AccountTokens::TokenHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AccountTokens::UserId).uuid().not_null())
                    .col(
                        ColumnDef::new(AccountTokens::Purpose)
                            .string_len(16)
                            .not_null()
                            .check(Expr::col(AccountTokens::Purpose).is_in([
                                "verify",
                                "reset",
                                "invite",
                                "email_change",
                            ])),
                    )
                    // The address the link was mailed to (for an email change,
                    // the new address it applies).
                    .col(
                        ColumnDef::new(AccountTokens::Email)
                            .string_len(254)
                            .not_null(),
                    )
                    .col(timestamp(AccountTokens::CreatedAt))
                    .col(timestamp(AccountTokens::ExpiresAt))
                    // Used or voided: either way, never again.
                    .col(
                        ColumnDef::new(AccountTokens::SpentAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_account_tokens_user")
                            .from(AccountTokens::Table, AccountTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_account_tokens_user_purpose")
                    .table(AccountTokens::Table)
                    .col(AccountTokens::UserId)
                    .col(AccountTokens::Purpose)
                    .col(AccountTokens::CreatedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(MailOutbox::Table)
                    .col(
                        ColumnDef::new(MailOutbox::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(MailOutbox::Template)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(MailOutbox::Sender)
                            .string_len(512)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(MailOutbox::Recipient)
                            .string_len(254)
                            .not_null(),
                    )
                    // The whole RFC 5322 message, rendered when it was queued.
                    .col(ColumnDef::new(MailOutbox::Message).text().not_null())
                    .col(
                        ColumnDef::new(MailOutbox::Attempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(timestamp(MailOutbox::CreatedAt))
                    .col(timestamp(MailOutbox::NextAttemptAt))
                    // A sender's claim: others leave the row alone until then.
                    .col(
                        ColumnDef::new(MailOutbox::ClaimedUntil)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    // A permanent failure: kept for the operator, never retried.
                    .col(
                        ColumnDef::new(MailOutbox::FailedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new(MailOutbox::LastError).string_len(512).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_mail_outbox_due")
                    .table(MailOutbox::Table)
                    .col(MailOutbox::FailedAt)
                    .col(MailOutbox::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MailOutbox::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AccountTokens::Table).to_owned())
            .await
    }
}

fn timestamp(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

#[derive(DeriveIden)]
enum AccountTokens {
    Table,
    TokenHash,
    UserId,
    Purpose,
    Email,
    CreatedAt,
    ExpiresAt,
    SpentAt,
}

#[derive(DeriveIden)]
enum MailOutbox {
    Table,
    Id,
    Template,
    Sender,
    Recipient,
    Message,
    Attempts,
    CreatedAt,
    NextAttemptAt,
    ClaimedUntil,
    FailedAt,
    LastError,
}
