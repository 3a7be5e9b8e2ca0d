//! Write transactions: `BEGIN IMMEDIATE` on SQLite behind this process's
//! writer turn, row locks on PostgreSQL.

use std::sync::Arc;

use sea_orm::{
    ConnAcquireErr, DatabaseTransaction, DbBackend, DbErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait as _,
};
use tokio::sync::OwnedMutexGuard;

use super::{Store, StoreError};

impl Store {
    /// A transaction that writes: `BEGIN IMMEDIATE` on SQLite, so that
    /// concurrent writers queue instead of deadlocking when a read lock would
    /// be upgraded; row locks do the job on Postgres. On SQLite, writers of
    /// this process first queue on [`Store::writer`]: SQLite admits one writer
    /// anyway, and its busy handler waits by sleeping with backoff (up to
    /// 100 ms at a time), which made concurrent writes slow and their tail
    /// long. Other processes on the same file still meet the busy timeout.
    pub(super) async fn write_transaction(&self) -> Result<WriteTransaction, StoreError> {
        let turn = self.writer_turn().await?;
        let txn = self
            .db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await?;
        Ok(WriteTransaction { txn, _turn: turn })
    }

    /// This process's SQLite writer turn (see [`Self::write_transaction`]);
    /// `None` on Postgres.
    pub(super) async fn writer_turn(&self) -> Result<Option<OwnedMutexGuard<()>>, StoreError> {
        match self.db.get_database_backend() {
            DbBackend::Sqlite => Ok(Some(
                tokio::time::timeout(self.writer_timeout, Arc::clone(&self.writer).lock_owned())
                    .await
                    .map_err(|_| DbErr::ConnectionAcquire(ConnAcquireErr::Timeout))?,
            )),
            _ => Ok(None),
        }
    }
}

/// A write transaction holding this process's SQLite writer turn, if any,
/// until it commits or is dropped (rolled back).
pub(super) struct WriteTransaction {
    txn: DatabaseTransaction,
    _turn: Option<OwnedMutexGuard<()>>,
}

impl WriteTransaction {
    pub(super) async fn commit(self) -> Result<(), StoreError> {
        Ok(self.txn.commit().await?)
    }
}

impl std::ops::Deref for WriteTransaction {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}
