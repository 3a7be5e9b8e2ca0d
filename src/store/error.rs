//! What a database error means to a caller: the one place that knows the
//! drivers' error kinds and SQLSTATE codes.

use sea_orm::{DbErr, RuntimeErr};

/// Whether a database error means "cannot reach the database" (503) rather
/// than a bug (500): pool timeouts, closed or reset connections, and a server
/// that is shutting down or terminated our backend.
#[must_use]
pub(super) fn is_unavailable(err: &DbErr) -> bool {
    let runtime = match err {
        // Failing to get or open a connection is unavailability by definition,
        // whatever the server's reason ("not accepting connections", "too
        // many clients", a dropped database…).
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(e) | DbErr::Query(e) => e,
        _ => return false,
    };
    let RuntimeErr::SqlxError(sqlx_err) = runtime else {
        return false;
    };
    match sqlx_err.as_ref() {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // Postgres class 08 (connection exception), 57P01-57P03 (admin
            // shutdown, crash shutdown, cannot connect now); SQLite BUSY/LOCKED
            // after the busy timeout, CANTOPEN and IOERR.
            code.starts_with("08")
                || matches!(
                    code.as_ref(),
                    "57P01" | "57P02" | "57P03" | "5" | "6" | "14" | "10"
                )
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_say_which_kind_of_failure() {
        let err = super::super::StoreError::from(DbErr::ConnectionAcquire(
            sea_orm::error::ConnAcquireErr::Timeout,
        ));
        assert!(matches!(err, super::super::StoreError::Unavailable(_)));
        let err = super::super::StoreError::from(DbErr::Type("x".into()));
        assert!(matches!(err, super::super::StoreError::Internal(_)));
    }

    #[test]
    fn acquiring_a_connection_that_fails_is_unavailability() {
        assert!(is_unavailable(&DbErr::ConnectionAcquire(
            sea_orm::error::ConnAcquireErr::Timeout
        )));
        assert!(!is_unavailable(&DbErr::Type("users.role: x".into())));
        assert!(!is_unavailable(&DbErr::RecordNotFound("x".into())));
    }
}
