//! Login sessions and their refresh tokens.

use chrono::{DateTime, Utc};
use entity::{refresh_token, session, user};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait as _, Condition, DbBackend, EntityTrait as _, QueryFilter as _, QueryOrder as _,
    Statement,
    sea_query::{Expr, ExprTrait as _, JoinType, Query, SelectStatement},
};
use uuid::Uuid;

use super::{
    Store, StoreError, now,
    prepared::{Rendered, USER_COLUMNS, UserRow, backend_slot},
};
use crate::{
    audit::{Event, Record},
    domain::User,
};

/// Session `session_id` of user `user_id`, not revoked and not expired at
/// `at`: the bearer check's condition on `sessions`, for statements that
/// fuse it.
pub(super) fn live_session_at(session_id: Uuid, user_id: Uuid, at: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(Expr::col((session::Entity, session::Column::Id)).eq(session_id))
        .add(Expr::col((session::Entity, session::Column::UserId)).eq(user_id))
        .add(Expr::col((session::Entity, session::Column::RevokedAt)).is_null())
        .add(Expr::col((session::Entity, session::Column::ExpiresAt)).gt(at))
}

/// The statement of [`Store::authenticate_and_get`], built by sea-query.
fn bearer_read_query(
    session_id: Uuid,
    user_id: Uuid,
    target: Uuid,
    at: DateTime<Utc>,
) -> SelectStatement {
    // Static aliases, and no column aliases (the row is read by position).
    let (caller, other) = ("caller", "target");
    let mut select = Query::select();
    for alias in [caller, other] {
        select.columns(USER_COLUMNS.map(|column| (alias, column)));
    }
    select
        .from(session::Entity)
        .join_as(
            JoinType::InnerJoin,
            user::Entity,
            caller,
            Expr::col((caller, user::Column::Id))
                .equals((session::Entity, session::Column::UserId)),
        )
        .join_as(
            JoinType::LeftJoin,
            user::Entity,
            other,
            Expr::col((other, user::Column::Id)).eq(target),
        )
        .cond_where(live_session_at(session_id, user_id, at));
    select
}

/// [`bearer_read_query`] as a statement, from SQL rendered once per backend:
/// it runs on every `GET /users/{id}` (W1), and only its values change. The
/// values go in the order the SQL takes them; a test compares the whole
/// statement with sea-query's on both backends.
fn bearer_read(
    backend: DbBackend,
    session_id: Uuid,
    user_id: Uuid,
    target: Uuid,
    at: DateTime<Utc>,
) -> Statement {
    static SQL: Rendered<3> = Rendered::new();
    let values = vec![target.into(), session_id.into(), user_id.into(), at.into()];
    SQL.statement(backend_slot(backend), backend, values, || {
        bearer_read_query(session_id, user_id, target, at)
    })
}

/// How long after its rotation a refresh token may be presented again
/// without being treated as stolen (two tabs refreshing at once).
const REUSE_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// A live session as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The tokens' `sid`.
    pub id: Uuid,
    /// Login time.
    pub created_at: DateTime<Utc>,
    /// Last login or refresh.
    pub last_used_at: DateTime<Utc>,
    /// When the refresh token stops working.
    pub expires_at: DateTime<Utc>,
    /// `User-Agent` of the login.
    pub user_agent: Option<String>,
    /// Client address of the login.
    pub ip: Option<String>,
}

impl From<session::Model> for SessionInfo {
    fn from(m: session::Model) -> Self {
        Self {
            id: m.id,
            created_at: m.created_at,
            last_used_at: m.last_used_at,
            expires_at: m.expires_at,
            user_agent: m.user_agent,
            ip: m.ip,
        }
    }
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was current: it is now rotated and `new_hash` is current.
    Rotated {
        /// The session.
        session_id: Uuid,
        /// Its owner, as stored now.
        user: User,
    },
    /// No such token, or its session has ended or expired.
    Invalid,
    /// Rotated less than 10 s ago: refused, session left alive.
    RecentlyRotated,
    /// Rotated earlier: reuse of a stolen token; the session is now revoked.
    Reused {
        /// The revoked session.
        session_id: Uuid,
    },
}

impl Store {
    /// Opens a session with its first refresh token, and records `audit`,
    /// in one transaction.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn create_session(
        &self,
        user_id: Uuid,
        refresh_hash: String,
        ttl: std::time::Duration,
        user_agent: Option<String>,
        ip: Option<String>,
        audit: &[Record],
    ) -> Result<SessionInfo, StoreError> {
        let at = now();
        let expires_at = chrono::TimeDelta::from_std(ttl)
            .ok()
            .and_then(|ttl| at.checked_add_signed(ttl))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let txn = self.write_transaction().await?;
        let created = session::Entity::insert(session::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user_id),
            created_at: Set(at),
            last_used_at: Set(at),
            expires_at: Set(expires_at),
            revoked_at: Set(None),
            user_agent: Set(user_agent),
            ip: Set(ip),
        })
        .exec_with_returning(&*txn)
        .await?;
        refresh_token::Entity::insert(refresh_token::ActiveModel {
            token_hash: Set(refresh_hash),
            session_id: Set(created.id),
            issued_at: Set(at),
            rotated_at: Set(None),
        })
        .exec_without_returning(&*txn)
        .await?;
        self.commit_audited(txn, audit).await?;
        Ok(created.into())
    }

    /// The user behind an access token, if its session is live and belongs to
    /// it: one query, run on every authenticated request.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn authenticate(
        &self,
        session_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<User>, StoreError> {
        let found = session::Entity::find_by_id(session_id)
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(now()))
            .find_also_related(user::Entity)
            .one(&self.db)
            .await?;
        match found {
            Some((_, Some(user))) => Ok(Some(user.try_into()?)),
            _ => Ok(None),
        }
    }

    /// [`Self::authenticate`] and a read of user `target` in one statement:
    /// the caller's live session and current row, and the target's row if
    /// it exists. `None` when the session is not live (whatever `target` is).
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn authenticate_and_get(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        target: Uuid,
    ) -> Result<Option<(User, Option<User>)>, StoreError> {
        let select = bearer_read(
            self.db.get_database_backend(),
            session_id,
            user_id,
            target,
            now(),
        );
        let Some(row) = self.fetch_one(select).await? else {
            return Ok(None);
        };
        let target_at = USER_COLUMNS.len();
        let caller = UserRow::read(&row, 0)?.try_into()?;
        let target = if row.try_get_by_index::<Option<Uuid>>(target_at)?.is_some() {
            Some(UserRow::read(&row, target_at)?.try_into()?)
        } else {
            None
        };
        Ok(Some((caller, target)))
    }

    /// Rotates a refresh token: exactly one of several concurrent callers
    /// presenting the same current token wins.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new_hash: String,
    ) -> Result<RefreshOutcome, StoreError> {
        let at = now();
        let txn = self.write_transaction().await?;
        // The conditional update is the race's referee on both backends.
        let claimed = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::RotatedAt, Expr::value(at))
            .filter(refresh_token::Column::TokenHash.eq(old_hash))
            .filter(refresh_token::Column::RotatedAt.is_null())
            .exec(&*txn)
            .await?
            .rows_affected
            == 1;
        let token = refresh_token::Entity::find_by_id(old_hash.to_owned())
            .find_also_related(session::Entity)
            .one(&*txn)
            .await?;
        let Some((token, Some(session))) = token else {
            txn.commit().await?;
            return Ok(RefreshOutcome::Invalid);
        };
        let live = session.revoked_at.is_none() && session.expires_at > at;
        if !claimed {
            let rotated_at = token.rotated_at.unwrap_or(at);
            let outcome = if !live {
                RefreshOutcome::Invalid
            } else if at - rotated_at < REUSE_GRACE {
                RefreshOutcome::RecentlyRotated
            } else {
                revoke(&*txn, session.id, at).await?;
                let reuse = Record::new(Event::RefreshReuseDetected, None, Some(session.user_id))
                    .with("session_id", session.id.to_string());
                self.commit_audited(txn, &[reuse]).await?;
                return Ok(RefreshOutcome::Reused {
                    session_id: session.id,
                });
            };
            txn.commit().await?;
            return Ok(outcome);
        }
        if !live {
            txn.commit().await?;
            return Ok(RefreshOutcome::Invalid);
        }
        refresh_token::Entity::insert(refresh_token::ActiveModel {
            token_hash: Set(new_hash),
            session_id: Set(session.id),
            issued_at: Set(at),
            rotated_at: Set(None),
        })
        .exec_without_returning(&*txn)
        .await?;
        session::Entity::update_many()
            .col_expr(session::Column::LastUsedAt, Expr::value(at))
            .filter(session::Column::Id.eq(session.id))
            .exec(&*txn)
            .await?;
        let owner = user::Entity::find_by_id(session.user_id)
            .one(&*txn)
            .await?
            .ok_or(StoreError::NotFound)?;
        txn.commit().await?;
        Ok(RefreshOutcome::Rotated {
            session_id: session.id,
            user: owner.try_into()?,
        })
    }

    /// The session a refresh token belongs to, if any.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn session_of_refresh_token(
        &self,
        hash: &str,
    ) -> Result<Option<(Uuid, Uuid)>, StoreError> {
        let found = refresh_token::Entity::find_by_id(hash.to_owned())
            .find_also_related(session::Entity)
            .one(&self.db)
            .await?;
        Ok(found.and_then(|(_, s)| s).map(|s| (s.id, s.user_id)))
    }

    /// Ends one live session of a user, recording `audit` with it; false
    /// (and nothing recorded) when there is no such live session.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn end_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        audit: &[Record],
    ) -> Result<bool, StoreError> {
        let txn = self.write_transaction().await?;
        let at = now();
        let result = session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(at))
            .filter(session::Column::Id.eq(session_id))
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(at))
            .exec(&*txn)
            .await?;
        if result.rows_affected != 1 {
            return Ok(false);
        }
        self.commit_audited(txn, audit).await?;
        Ok(true)
    }

    /// Ends every live session of a user, recording `audit` when any ended;
    /// returns how many.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn end_sessions(&self, user_id: Uuid, audit: &[Record]) -> Result<u64, StoreError> {
        let txn = self.write_transaction().await?;
        let ended = super::users::end_sessions_in(&txn, user_id).await?;
        if ended > 0 {
            self.commit_audited(txn, audit).await?;
        }
        Ok(ended)
    }

    /// A user's live sessions, newest first.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn live_sessions(&self, user_id: Uuid) -> Result<Vec<SessionInfo>, StoreError> {
        let rows = session::Entity::find()
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(now()))
            .order_by_desc(session::Column::CreatedAt)
            .order_by_desc(session::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

async fn revoke<C: sea_orm::ConnectionTrait>(
    db: &C,
    session_id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(at))
        .filter(session::Column::Id.eq(session_id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remembered_bearer_read_is_the_one_sea_query_builds() {
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            for i in 0..100 {
                let (session_id, user_id, target) =
                    (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
                let at = now() + chrono::TimeDelta::microseconds(i * 7_919);
                let built = backend.build(&bearer_read_query(session_id, user_id, target, at));
                assert_eq!(
                    bearer_read(backend, session_id, user_id, target, at),
                    built,
                    "{backend:?}"
                );
            }
        }
    }
}
