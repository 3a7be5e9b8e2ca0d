//! `audit_events`: who did what to which account, when and from where,
//! written in the transaction of the change it records. No foreign key: a
//! deleted user's events stay, with its id.

use sea_orm_migration::prelude::*;

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
                    .table(AuditEvents::Table)
                    .col(
                        ColumnDef::new(AuditEvents::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuditEvents::At)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuditEvents::Event).string_len(64).not_null())
                    .col(ColumnDef::new(AuditEvents::ActorId).uuid().null())
                    .col(ColumnDef::new(AuditEvents::SubjectId).uuid().null())
                    .col(ColumnDef::new(AuditEvents::Ip).string_len(64).null())
                    .col(
                        ColumnDef::new(AuditEvents::UserAgent)
                            .string_len(512)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(AuditEvents::RequestId)
                            .string_len(128)
                            .null(),
                    )
                    // A JSON object, as text on both backends.
                    .col(ColumnDef::new(AuditEvents::Details).text().not_null())
                    .to_owned(),
            )
            .await?;
        // Newest first everywhere: the whole log (and retention), one
        // account's events as subject or as actor, one kind of event.
        for (name, first) in [
            ("ix_audit_events_at", None),
            ("ix_audit_events_subject", Some(AuditEvents::SubjectId)),
            ("ix_audit_events_actor", Some(AuditEvents::ActorId)),
            ("ix_audit_events_event", Some(AuditEvents::Event)),
        ] {
            let mut index = Index::create();
            index.name(name).table(AuditEvents::Table);
            if let Some(first) = first {
                index.col(first);
            }
            manager
                .create_index(index.col(AuditEvents::At).col(AuditEvents::Id).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditEvents::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum AuditEvents {
    Table,
    Id,
    At,
    Event,
    ActorId,
    SubjectId,
    Ip,
    UserAgent,
    RequestId,
    Details,
}
