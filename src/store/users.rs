//! Users: create, look up, change, delete; passwords; the last-admin rule.

use chrono::{DateTime, TimeDelta, Utc};
use entity::{user, user_role_count};
use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, DatabaseTransaction, EntityTrait as _, PaginatorTrait as _,
    QueryFilter as _, QueryOrder as _, QuerySelect as _, UpdateMany, sea_query::Expr,
};
use uuid::Uuid;

use super::{NewToken, Store, StoreError, now, on_unique, outbox, prepared::UserRow, tokens};
use crate::{
    audit::{Event, Record},
    domain::{AccountStatus, Email, Role, TokenPurpose, User, UserName},
    mail::QueuedMail,
};

impl TryFrom<user::Model> for User {
    type Error = StoreError;

    fn try_from(m: user::Model) -> Result<Self, Self::Error> {
        UserRow {
            id: m.id,
            email: m.email,
            name: m.name,
            role: m.role,
            created_at: m.created_at,
            updated_at: m.updated_at,
            status: m.status,
            email_verified: m.email_verified,
            last_login_at: m.last_login_at,
        }
        .try_into()
    }
}

impl Store {
    /// Creates a user; with `token`, issues it to the new user, and queues
    /// `mails` and records `audit` (each about the new user: its id becomes
    /// their subject), all in one transaction.
    ///
    /// # Errors
    ///
    /// `EmailTaken` when the email belongs to another account.
    pub async fn create_user(
        &self,
        new: NewUser<'_>,
        token: Option<&NewToken>,
        mails: &[QueuedMail],
        audit: Vec<Record>,
    ) -> Result<User, StoreError> {
        let at = now();
        let model = user::ActiveModel {
            id: Set(Uuid::now_v7()),
            email: Set(new.email.as_ref().to_owned()),
            password_hash: Set(new.password_hash),
            name: Set(new.name.map(|n| n.as_ref().to_owned())),
            role: Set(new.role.as_str().to_owned()),
            created_at: Set(at),
            updated_at: Set(at),
            status: Set(new.status.as_str().to_owned()),
            email_verified: Set(new.email_verified),
            last_login_at: Set(None),
        };
        let txn = self.write_transaction().await?;
        let inserted = user::Entity::insert(model)
            .exec_with_returning(&*txn)
            .await
            .map_err(|e| on_unique(e, StoreError::EmailTaken))?;
        if let Some(token) = token {
            tokens::issue(&*txn, inserted.id, token).await?;
        }
        outbox::queue(&*txn, mails).await?;
        let audit: Vec<Record> = audit
            .into_iter()
            .map(|r| Record {
                subject_id: Some(inserted.id),
                ..r
            })
            .collect();
        self.commit_audited(txn, &audit).await?;
        inserted.try_into()
    }

    /// The user with an email, with its password hash.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn find_credentials(
        &self,
        email: &str,
    ) -> Result<Option<(User, String)>, StoreError> {
        let Some(model) = user::Entity::find()
            .filter(user::Column::Email.eq(email))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let hash = model.password_hash.clone();
        Ok(Some((model.try_into()?, hash)))
    }

    /// The password hash of a user.
    ///
    /// # Errors
    ///
    /// `NotFound`, or database failures.
    pub async fn password_hash(&self, id: Uuid) -> Result<String, StoreError> {
        user::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(|m| m.password_hash)
            .ok_or(StoreError::NotFound)
    }

    /// Records a successful login. `updated_at` stays: a login is not a
    /// change of the record, and must not move its ETag.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn record_login(&self, id: Uuid) -> Result<(), StoreError> {
        user::Entity::update_many()
            .col_expr(user::Column::LastLoginAt, Expr::value(now()))
            .filter(user::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Replaces a user's password hash: every reset and invitation token
    /// is voided, every session but `keep` ends, and `mail` is queued, in
    /// one transaction.
    ///
    /// # Errors
    ///
    /// `NotFound`, or database failures.
    pub async fn change_password_hash(
        &self,
        id: Uuid,
        hash: String,
        keep: Option<Uuid>,
        mail: Option<&QueuedMail>,
        mut audit: Vec<Record>,
    ) -> Result<(), StoreError> {
        let txn = self.write_transaction().await?;
        let result = user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(hash))
            .col_expr(user::Column::UpdatedAt, Expr::value(now()))
            .filter(user::Column::Id.eq(id))
            .exec(&*txn)
            .await?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound);
        }
        entity::account_token::Entity::update_many()
            .col_expr(entity::account_token::Column::SpentAt, Expr::value(now()))
            .filter(entity::account_token::Column::UserId.eq(id))
            .filter(
                entity::account_token::Column::Purpose
                    .is_in([TokenPurpose::Reset.as_str(), TokenPurpose::Invite.as_str()]),
            )
            .filter(entity::account_token::Column::SpentAt.is_null())
            .exec(&*txn)
            .await?;
        let mut sessions = entity::session::Entity::update_many()
            .col_expr(entity::session::Column::RevokedAt, Expr::value(now()))
            .filter(entity::session::Column::UserId.eq(id))
            .filter(entity::session::Column::RevokedAt.is_null());
        if let Some(keep) = keep {
            sessions = sessions.filter(entity::session::Column::Id.ne(keep));
        }
        if sessions.exec(&*txn).await?.rows_affected > 0 {
            audit.push(Record::sessions_ended(Some(id), id, "password_change"));
        }
        outbox::queue(&*txn, mail.map(std::slice::from_ref).unwrap_or_default()).await?;
        self.commit_audited(txn, &audit).await
    }

    /// Replaces user `id`'s password hash `old` with `new`, only if it is
    /// still `old`; whether it was. Nothing else changes (not `updated_at`:
    /// the record did not change for its clients).
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn replace_password_hash(
        &self,
        id: Uuid,
        old: &str,
        new: String,
    ) -> Result<bool, StoreError> {
        let _turn = self.writer_turn().await?;
        let result = user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(new))
            .filter(user::Column::Id.eq(id))
            .filter(user::Column::PasswordHash.eq(old))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// How many users have each role.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn count_users_by_role(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(user_role_count::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|c| (c.role, c.users))
            .collect())
    }

    /// Whether any admin exists.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn admin_exists(&self) -> Result<bool, StoreError> {
        let admins = user::Entity::find()
            .filter(user::Column::Role.eq(Role::Admin.as_str()))
            .count(&self.db)
            .await?;
        Ok(admins > 0)
    }

    /// One user by id.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn get_user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        user::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(TryInto::try_into)
            .transpose()
    }

    /// Applies a change. With `expected`, only if the user's `updated_at` is
    /// still that (the `If-Match` check, atomic with the write).
    ///
    /// # Errors
    ///
    /// `NotFound`, `PreconditionFailed`, `EmailTaken`, `LastAdmin`.
    pub async fn update_user(
        &self,
        id: Uuid,
        change: UserChange,
        expected: Option<DateTime<Utc>>,
    ) -> Result<User, StoreError> {
        // A role or status change takes the transaction below, which reads
        // the values it replaces for the audit records.
        if !change.may_remove_admin()
            && change.role.is_none()
            && change.status.is_none()
            && change.mails.is_empty()
            && let Some(user) = self.update_user_at_once(id, &change, expected).await?
        {
            return Ok(user);
        }
        let txn = self.write_transaction().await?;
        // Admin rows are locked before the target row, in id order, by every
        // writer that may remove an admin: the same lock order everywhere
        // means no deadlock between two admins demoting each other.
        let admins = if change.may_remove_admin() {
            lock_admins(&txn).await?
        } else {
            Vec::new()
        };
        let current = locked_user(&txn, id, expected).await?;
        if is_active_admin(&current) && change.may_remove_admin() && admins.len() <= 1 {
            return Err(StoreError::LastAdmin);
        }
        let mut audit = change.audit.clone();
        let actor = audit.first().and_then(|r| r.actor_id);
        match change.status {
            Some(status) if status.as_str() != current.status => {
                let event = if status == AccountStatus::Disabled {
                    Event::UserDisabled
                } else {
                    Event::UserEnabled
                };
                audit.push(Record::new(event, actor, Some(id)));
            }
            _ => {}
        }
        if change.status == Some(AccountStatus::Disabled) {
            // In the same transaction: a disabled account has no session.
            if end_sessions_in(&txn, id).await? > 0 {
                audit.push(Record::sessions_ended(actor, id, "disabled"));
            }
        }
        if let Some(role) = change.role
            && role.as_str() != current.role
        {
            for record in &mut audit {
                if record.event == Event::UserUpdated {
                    record.details.insert(
                        "role".into(),
                        serde_json::json!({"from": current.role, "to": role.as_str()}),
                    );
                }
            }
        }
        outbox::queue(&*txn, &change.mails).await?;
        // `updated_at` always moves forward, so the ETag always changes.
        let updated_at = Ord::max(now(), current.updated_at + TimeDelta::microseconds(1));
        // RETURNING: the row as written, without another statement.
        let user = change
            .update(id, updated_at)
            .exec_with_returning(&*txn)
            .await
            .map_err(|e| on_unique(e, StoreError::EmailTaken))?
            .pop()
            .ok_or(StoreError::NotFound)?;
        self.commit_audited(txn, &audit).await?;
        user.try_into()
    }

    /// [`Self::update_user`] as one `UPDATE … RETURNING` and the audit
    /// insert, for a change that sets no role and so cannot remove an
    /// admin: no read first (on SQLite, every statement is a hop to the
    /// connection's thread). The row is written only if its
    /// `updated_at` is before now (and is `expected`, if given), so the
    /// ETag still always changes. `None` when no row was written: no such
    /// user, a stale `If-Match`, or an `updated_at` not before the clock;
    /// the transaction in [`Self::update_user`] then tells these apart.
    ///
    /// On SQLite the comparisons are of text: sqlx writes every timestamp
    /// in UTC as `YYYY-MM-DDTHH:MM:SS[.fff[fff]]+00:00`, whose text order
    /// is time order. A value in another form, written outside Roster,
    /// could compare wrongly.
    async fn update_user_at_once(
        &self,
        id: Uuid,
        change: &UserChange,
        expected: Option<DateTime<Utc>>,
    ) -> Result<Option<User>, StoreError> {
        // The clock is read after the wait for the SQLite writer turn, so
        // the writers that went before have written earlier times.
        let txn = self.write_transaction().await?;
        let at = now();
        let mut update = change.update(id, at).filter(user::Column::UpdatedAt.lt(at));
        if let Some(expected) = expected {
            update = update.filter(user::Column::UpdatedAt.eq(expected));
        }
        let Some(row) = update
            .exec_with_returning(&*txn)
            .await
            .map_err(|e| on_unique(e, StoreError::EmailTaken))?
            .pop()
        else {
            return Ok(None);
        };
        self.commit_audited(txn, &change.audit).await?;
        row.try_into().map(Some)
    }

    /// Deletes a user and (by cascade) its sessions. With `expected`, only if
    /// its `updated_at` is still that.
    ///
    /// # Errors
    ///
    /// `NotFound`, `PreconditionFailed`, `LastAdmin`.
    pub async fn delete_user(
        &self,
        id: Uuid,
        expected: Option<DateTime<Utc>>,
        audit: &[Record],
    ) -> Result<(), StoreError> {
        let txn = self.write_transaction().await?;
        let admins = lock_admins(&txn).await?;
        let current = locked_user(&txn, id, expected).await?;
        if is_active_admin(&current) && admins.len() <= 1 {
            return Err(StoreError::LastAdmin);
        }
        user::Entity::delete_by_id(id).exec(&*txn).await?;
        self.commit_audited(txn, audit).await
    }
}

/// A change to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    /// New email. A new address is unverified unless `email_verified`
    /// says otherwise; the same address keeps its state.
    pub email: Option<Email>,
    /// New name; `Some(None)` clears it.
    pub name: Option<Option<UserName>>,
    /// New role.
    pub role: Option<Role>,
    /// New status; disabling ends every session of the user.
    pub status: Option<AccountStatus>,
    /// Whether the (new) email is verified.
    pub email_verified: Option<bool>,
    /// Mail to queue with the change, in its transaction.
    pub mails: Vec<QueuedMail>,
    /// Recorded with the change: `user.updated` (the store adds the role's
    /// `{from, to}` to it), `user.disabled`, `user.enabled`.
    pub audit: Vec<Record>,
}

/// A user to create.
#[derive(Debug)]
pub struct NewUser<'a> {
    /// Its email.
    pub email: &'a Email,
    /// Its password hash; an invited account's is not a hash at all.
    pub password_hash: String,
    /// Its name.
    pub name: Option<&'a UserName>,
    /// Its role.
    pub role: Role,
    /// `active`, or `invited` for an account without a password yet.
    pub status: AccountStatus,
    /// Whether the address is known to be the user's.
    pub email_verified: bool,
}

impl UserChange {
    /// Whether the change can leave no active admin: a demotion or a
    /// disabling. Only such changes lock the admins first.
    fn may_remove_admin(&self) -> bool {
        self.role == Some(Role::User) || self.status == Some(AccountStatus::Disabled)
    }

    /// The `UPDATE` of user `id` that applies this change and sets
    /// `updated_at`.
    fn update(&self, id: Uuid, updated_at: DateTime<Utc>) -> UpdateMany<user::Entity> {
        let mut update = user::Entity::update_many()
            .col_expr(user::Column::UpdatedAt, Expr::value(updated_at))
            .filter(user::Column::Id.eq(id));
        if let Some(email) = &self.email {
            update = update.col_expr(user::Column::Email, Expr::value(email.as_ref()));
        }
        if let Some(name) = &self.name {
            update = update.col_expr(
                user::Column::Name,
                Expr::value(name.as_ref().map(|n| n.as_ref().to_owned())),
            );
        }
        if let Some(role) = self.role {
            update = update.col_expr(user::Column::Role, Expr::value(role.as_str()));
        }
        if let Some(status) = self.status {
            update = update.col_expr(user::Column::Status, Expr::value(status.as_str()));
        }
        match (self.email_verified, &self.email) {
            (Some(verified), _) => {
                update = update.col_expr(user::Column::EmailVerified, Expr::value(verified));
            }
            // A new address has not been proven yet; the same one keeps its state.
            (None, Some(email)) => {
                update = update.col_expr(
                    user::Column::EmailVerified,
                    Expr::case(
                        user::Column::Email.eq(email.as_ref()),
                        Expr::col(user::Column::EmailVerified),
                    )
                    .finally(false)
                    .into(),
                );
            }
            (None, None) => {}
        }
        update
    }
}

/// The user row, locked for the rest of the transaction.
async fn locked_user(
    txn: &DatabaseTransaction,
    id: Uuid,
    expected: Option<DateTime<Utc>>,
) -> Result<user::Model, StoreError> {
    let current = user::Entity::find_by_id(id)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(StoreError::NotFound)?;
    if expected.is_some_and(|e| e != current.updated_at) {
        return Err(StoreError::PreconditionFailed);
    }
    Ok(current)
}

/// Whether a user row is an admin that counts for the last-admin rule.
fn is_active_admin(row: &user::Model) -> bool {
    row.role == Role::Admin.as_str() && row.status == AccountStatus::Active.as_str()
}

/// Ends every live session of user `id` inside `txn`.
pub(super) async fn end_sessions_in(
    txn: &DatabaseTransaction,
    id: Uuid,
) -> Result<u64, StoreError> {
    Ok(entity::session::Entity::update_many()
        .col_expr(entity::session::Column::RevokedAt, Expr::value(now()))
        .filter(entity::session::Column::UserId.eq(id))
        .filter(entity::session::Column::RevokedAt.is_null())
        .exec(txn)
        .await?
        .rows_affected)
}

/// Locks every active admin row (in id order) and returns their ids. Two admins
/// demoting or deleting each other at once then run one after the other, and
/// the second sees the first one's change.
async fn lock_admins(txn: &DatabaseTransaction) -> Result<Vec<Uuid>, StoreError> {
    Ok(user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::Role.eq(Role::Admin.as_str()))
        .filter(user::Column::Status.eq(AccountStatus::Active.as_str()))
        .order_by_asc(user::Column::Id)
        .lock_exclusive()
        .into_tuple::<Uuid>()
        .all(txn)
        .await?)
}
