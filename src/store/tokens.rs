//! One-time tokens of mailed links, by hash: issued with the mail that
//! carries them, spent at most once, bound to one purpose, one user and the
//! address they were mailed to.

use chrono::{DateTime, TimeDelta, Utc};
use entity::{account_token, user};
use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, ConnectionTrait, EntityTrait as _, PaginatorTrait as _,
    QueryFilter as _, sea_query::Expr,
};
use uuid::Uuid;

use super::{Store, StoreError, now, outbox, users::end_sessions_in};
use crate::{
    audit::{Event, Record},
    domain::{AccountStatus, TokenPurpose, User},
    mail::QueuedMail,
};

/// A token to store: only its hash.
#[derive(Clone)]
pub struct NewToken {
    /// SHA-256 of the token, hex.
    pub hash: String,
    /// What it is for.
    pub purpose: TokenPurpose,
    /// The address it is mailed to.
    pub email: String,
    /// How long it is good for.
    pub ttl: std::time::Duration,
}

/// Stores `token` for user `id`, voiding the user's older tokens of the
/// same purpose.
pub(super) async fn issue(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    token: &NewToken,
) -> Result<(), StoreError> {
    let at = now();
    void(db, user_id, &[token.purpose], at).await?;
    account_token::Entity::insert(account_token::ActiveModel {
        token_hash: Set(token.hash.clone()),
        user_id: Set(user_id),
        purpose: Set(token.purpose.as_str().to_owned()),
        email: Set(token.email.clone()),
        created_at: Set(at),
        expires_at: Set(at + TimeDelta::from_std(token.ttl).unwrap_or(TimeDelta::MAX)),
        spent_at: Set(None),
    })
    .exec(db)
    .await?;
    Ok(())
}

/// Voids every unspent token of user `id` with one of `purposes`.
async fn void(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    purposes: &[TokenPurpose],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    account_token::Entity::update_many()
        .col_expr(account_token::Column::SpentAt, Expr::value(at))
        .filter(account_token::Column::UserId.eq(user_id))
        .filter(account_token::Column::Purpose.is_in(purposes.iter().map(|p| p.as_str())))
        .filter(account_token::Column::SpentAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Spends the live token with this hash and one of `purposes`: the user it
/// belongs to, locked, when it was mailed to the user's current address.
async fn spend(
    db: &impl ConnectionTrait,
    hash: &str,
    purposes: &[TokenPurpose],
) -> Result<Option<(account_token::Model, user::Model)>, StoreError> {
    let at = now();
    let Some(token) = account_token::Entity::update_many()
        .col_expr(account_token::Column::SpentAt, Expr::value(at))
        .filter(account_token::Column::TokenHash.eq(hash))
        .filter(account_token::Column::Purpose.is_in(purposes.iter().map(|p| p.as_str())))
        .filter(account_token::Column::SpentAt.is_null())
        .filter(account_token::Column::ExpiresAt.gt(at))
        .exec_with_returning(db)
        .await?
        .pop()
    else {
        return Ok(None);
    };
    let Some(user) = sea_orm::QuerySelect::lock_exclusive(user::Entity::find_by_id(token.user_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    // An email change since the mail voids it: its address is no longer the
    // account's (an email change token names the new address instead).
    if token.purpose != TokenPurpose::EmailChange.as_str() && token.email != user.email {
        return Ok(None);
    }
    Ok(Some((token, user)))
}

impl Store {
    /// Issues `token` to user `id` and queues `mail` with it and records
    /// `audit`, unless `since` is given and the user was issued a token of
    /// the same purpose after it (then nothing is written and the answer is
    /// `false`).
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn issue_token(
        &self,
        user_id: Uuid,
        token: &NewToken,
        mail: &QueuedMail,
        since: Option<DateTime<Utc>>,
        audit: &[Record],
    ) -> Result<bool, StoreError> {
        let txn = self.write_transaction().await?;
        // The user row's lock orders two requests for the same account.
        let exists = sea_orm::QuerySelect::lock_exclusive(user::Entity::find_by_id(user_id))
            .one(&*txn)
            .await?
            .is_some();
        if !exists {
            return Ok(false);
        }
        if let Some(since) = since {
            let recent = account_token::Entity::find()
                .filter(account_token::Column::UserId.eq(user_id))
                .filter(account_token::Column::Purpose.eq(token.purpose.as_str()))
                .filter(account_token::Column::CreatedAt.gt(since))
                .count(&*txn)
                .await?;
            if recent > 0 {
                return Ok(false);
            }
        }
        issue(&*txn, user_id, token).await?;
        outbox::queue(&*txn, std::slice::from_ref(mail)).await?;
        self.commit_audited(txn, audit).await?;
        Ok(true)
    }

    /// Spends a reset or invitation token: sets the password hash, verifies
    /// the address, activates an invited account, ends every session, voids
    /// the user's other reset and invitation tokens, and queues the mail
    /// `compose` makes for the user. `None` for a token that is not live.
    ///
    /// # Errors
    ///
    /// Database failures, or `compose`'s.
    pub async fn redeem_password_token(
        &self,
        hash: &str,
        password_hash: String,
        compose: impl FnOnce(&User) -> anyhow::Result<Option<QueuedMail>>,
    ) -> Result<Option<User>, StoreError> {
        let txn = self.write_transaction().await?;
        let purposes = [TokenPurpose::Reset, TokenPurpose::Invite];
        let Some((token, current)) = spend(&*txn, hash, &purposes).await? else {
            return Ok(None);
        };
        let at = now();
        void(&*txn, current.id, &purposes, at).await?;
        // The link proves the account's address: its owner acts.
        let owner = Some(current.id);
        let via = if token.purpose == TokenPurpose::Invite.as_str() {
            "invitation"
        } else {
            "reset"
        };
        let mut audit = vec![Record::own(Event::PasswordReset, current.id).with("via", via)];
        if end_sessions_in(&txn, current.id).await? > 0 {
            audit.push(Record::sessions_ended(owner, current.id, "password_reset"));
        }
        // A reset does not re-enable a disabled account.
        let status = if current.status == AccountStatus::Invited.as_str() {
            AccountStatus::Active.as_str()
        } else {
            current.status.as_str()
        };
        let updated_at = Ord::max(at, current.updated_at + TimeDelta::microseconds(1));
        let row = user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(password_hash))
            .col_expr(user::Column::EmailVerified, Expr::value(true))
            .col_expr(user::Column::Status, Expr::value(status))
            .col_expr(user::Column::UpdatedAt, Expr::value(updated_at))
            .filter(user::Column::Id.eq(current.id))
            .exec_with_returning(&*txn)
            .await?
            .pop()
            .ok_or(StoreError::NotFound)?;
        let user = User::try_from(row)?;
        let mail = compose(&user).map_err(|e| StoreError::Compose(e.to_string()))?;
        outbox::queue(&*txn, mail.as_slice()).await?;
        self.commit_audited(txn, &audit).await?;
        Ok(Some(user))
    }

    /// Spends a verification token: the address is verified. `None` for a
    /// token that is not live.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn redeem_verify_token(&self, hash: &str) -> Result<Option<User>, StoreError> {
        let txn = self.write_transaction().await?;
        let Some((_, current)) = spend(&*txn, hash, &[TokenPurpose::Verify]).await? else {
            return Ok(None);
        };
        let row = user::Entity::update_many()
            .col_expr(user::Column::EmailVerified, Expr::value(true))
            .filter(user::Column::Id.eq(current.id))
            .exec_with_returning(&*txn)
            .await?
            .pop()
            .ok_or(StoreError::NotFound)?;
        self.commit_audited(txn, &[Record::own(Event::EmailVerified, current.id)])
            .await?;
        Ok(Some(row.try_into()?))
    }

    /// Spends an email change token: the account takes the address it was
    /// mailed to, verified, and `compose` makes the mails to queue (to the
    /// old address). `None` for a token that is not live.
    ///
    /// # Errors
    ///
    /// `EmailTaken` when the address was taken meanwhile; database failures.
    pub async fn redeem_email_change(
        &self,
        hash: &str,
        compose: impl FnOnce(&User) -> anyhow::Result<Vec<QueuedMail>>,
    ) -> Result<Option<User>, StoreError> {
        let txn = self.write_transaction().await?;
        let Some((token, current)) = spend(&*txn, hash, &[TokenPurpose::EmailChange]).await? else {
            return Ok(None);
        };
        let old = User::try_from(current.clone())?;
        let at = now();
        // The old address's links go with it.
        void(
            &*txn,
            current.id,
            &[
                TokenPurpose::Verify,
                TokenPurpose::Reset,
                TokenPurpose::EmailChange,
            ],
            at,
        )
        .await?;
        let updated_at = Ord::max(at, current.updated_at + TimeDelta::microseconds(1));
        let row = user::Entity::update_many()
            .col_expr(user::Column::Email, Expr::value(token.email))
            .col_expr(user::Column::EmailVerified, Expr::value(true))
            .col_expr(user::Column::UpdatedAt, Expr::value(updated_at))
            .filter(user::Column::Id.eq(current.id))
            .exec_with_returning(&*txn)
            .await
            .map_err(|e| super::on_unique(e, StoreError::EmailTaken))?
            .pop()
            .ok_or(StoreError::NotFound)?;
        let mails = compose(&old).map_err(|e| StoreError::Compose(e.to_string()))?;
        outbox::queue(&*txn, &mails).await?;
        self.commit_audited(txn, &[Record::own(Event::EmailChanged, current.id)])
            .await?;
        Ok(Some(row.try_into()?))
    }

    /// Whether an email belongs to an account.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn email_exists(&self, email: &str) -> Result<bool, StoreError> {
        Ok(user::Entity::find()
            .filter(user::Column::Email.eq(email))
            .count(&self.db)
            .await?
            > 0)
    }
}
