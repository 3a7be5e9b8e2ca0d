//! The account lifecycle's flows: password reset, email verification,
//! invitations' and email changes' links. Each mail is composed here and
//! queued by the store in the transaction of the change that causes it.

use std::{net::IpAddr, sync::Arc, time::Duration};

use uuid::Uuid;

use super::service::{AuthError, AuthService, hash_refresh_token, new_refresh_token};
use crate::{
    audit::{Context, Event, Record},
    domain::{AccountStatus, Email, Password, TokenPurpose, User},
    mail::{QueuedMail, Template},
    store::NewToken,
};

/// A token just made: the secret for the mail, the hash for the store.
pub(super) struct Minted {
    pub(super) secret: String,
    pub(super) stored: NewToken,
}

impl AuthService {
    /// A new token of `purpose` for a link mailed to `email`.
    pub(super) fn mint(&self, purpose: TokenPurpose, email: &str) -> Minted {
        let secret = new_refresh_token();
        let ttl = self.token_ttl(purpose);
        Minted {
            stored: NewToken {
                hash: hash_refresh_token(&secret),
                purpose,
                email: email.to_owned(),
                ttl,
            },
            secret,
        }
    }

    const fn token_ttl(&self, purpose: TokenPurpose) -> Duration {
        match purpose {
            TokenPurpose::Verify | TokenPurpose::EmailChange => self.lifecycle.verify_ttl,
            TokenPurpose::Reset => self.lifecycle.reset_ttl,
            TokenPurpose::Invite => self.lifecycle.invite_ttl,
        }
    }

    /// Composes `template` to `to`, with `token`'s link when given.
    pub(super) fn compose(
        &self,
        template: Template,
        to: &Email,
        name: Option<&str>,
        token: Option<&Minted>,
    ) -> Result<Option<QueuedMail>, AuthError> {
        Ok(self.composer.compose(
            template,
            to,
            name,
            token.map(|t| (t.secret.as_str(), t.stored.ttl)),
        )?)
    }

    /// Wakes the sender: mail was queued.
    pub(super) fn mail_queued(&self) {
        self.mail_wake.notify_one();
    }

    /// Counts a request of an unauthenticated lifecycle endpoint against
    /// the client address's login budget.
    async fn spend_address_budget(&self, ip: Option<IpAddr>) -> Result<(), AuthError> {
        let Some(ip) = ip else { return Ok(()) };
        if let Some(secs) = self.addresses.locked_for(ip).await? {
            return Err(AuthError::RateLimited(secs));
        }
        self.addresses.record_failure(ip).await?;
        Ok(())
    }

    /// `POST /auth/password/forgot`, for an address [`crate::domain::account::lookup_email`]
    /// normalised: the answer is the same, at once, for
    /// every email; a known `active` or `invited` account is mailed a reset
    /// link after the answer, at most once per account per interval.
    ///
    /// # Errors
    ///
    /// `RateLimited` past the client address's budget.
    pub async fn forgot_password(
        self: &Arc<Self>,
        email: String,
        ip: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        self.after_the_answer(ip, "cannot send a reset link", |this| async move {
            this.send_reset(&email).await
        })
        .await
    }

    /// Spends the address's budget, then runs `work` after the answer (so
    /// the answer takes the same time whatever `work` finds), in the
    /// request's audit context; a failure of `work` is logged as `failure`.
    async fn after_the_answer<W, F>(
        self: &Arc<Self>,
        ip: Option<IpAddr>,
        failure: &'static str,
        work: W,
    ) -> Result<(), AuthError>
    where
        W: FnOnce(Arc<Self>) -> F + Send + 'static,
        F: Future<Output = Result<(), AuthError>> + Send + 'static,
    {
        self.spend_address_budget(ip).await?;
        let this = Arc::clone(self);
        tokio::spawn(Context::current().scope(async move {
            if let Err(e) = work(this).await {
                tracing::warn!(error = %e, "{failure}");
            }
        }));
        Ok(())
    }

    async fn send_reset(&self, email: &str) -> Result<(), AuthError> {
        let Some((user, _)) = self.store.find_credentials(email).await? else {
            return Ok(());
        };
        if user.status == AccountStatus::Disabled {
            return Ok(());
        }
        let requested = Record::new(Event::PasswordResetRequested, None, Some(user.id));
        self.issue_link(
            &user,
            TokenPurpose::Reset,
            Template::ResetPassword,
            true,
            Some(requested),
        )
        .await
    }

    /// `POST /auth/email/verify/resend`: like [`Self::forgot_password`], for
    /// an `active` account whose address is not verified.
    ///
    /// # Errors
    ///
    /// `RateLimited` past the client address's budget.
    pub async fn resend_verification(
        self: &Arc<Self>,
        email: String,
        ip: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        self.after_the_answer(ip, "cannot send a verification link", |this| async move {
            this.send_verification(&email).await
        })
        .await
    }

    async fn send_verification(&self, email: &str) -> Result<(), AuthError> {
        let Some((user, _)) = self.store.find_credentials(email).await? else {
            return Ok(());
        };
        if user.status != AccountStatus::Active || user.email_verified {
            return Ok(());
        }
        self.issue_link(
            &user,
            TokenPurpose::Verify,
            Template::VerifyEmail,
            true,
            None,
        )
        .await
    }

    /// Issues a token of `purpose` to `user` and queues its mail, recording
    /// `audit`; with `limited`, not when one of that purpose went out within
    /// the interval.
    async fn issue_link(
        &self,
        user: &User,
        purpose: TokenPurpose,
        template: Template,
        limited: bool,
        audit: Option<Record>,
    ) -> Result<(), AuthError> {
        let token = self.mint(purpose, user.email.as_ref());
        // A link nobody can receive is not issued.
        let Some(mail) = self.compose(
            template,
            &user.email,
            user.name.as_ref().map(AsRef::as_ref),
            Some(&token),
        )?
        else {
            return Ok(());
        };
        let since = limited.then(|| {
            crate::store::now()
                - chrono::TimeDelta::from_std(self.lifecycle.mail_interval)
                    .unwrap_or(chrono::TimeDelta::MAX)
        });
        if self
            .store
            .issue_token(user.id, &token.stored, &mail, since, audit.as_slice())
            .await?
        {
            self.mail_queued();
        }
        Ok(())
    }

    /// An admin mails user `id` a reset link (never learning the password).
    ///
    /// # Errors
    ///
    /// `UserNotFound`.
    pub async fn start_password_reset(&self, by: &super::Admin, id: Uuid) -> Result<(), AuthError> {
        let user = self.get_user(by.caller(), id).await?;
        let requested = Record::new(
            Event::PasswordResetRequested,
            Some(by.caller().user.id),
            Some(user.id),
        );
        self.issue_link(
            &user,
            TokenPurpose::Reset,
            Template::ResetPassword,
            false,
            Some(requested),
        )
        .await
    }

    /// `POST /auth/password/reset`: a reset or invitation token sets the
    /// password; every session ends, the address counts as verified, an
    /// invitation becomes an active account, and `password-changed` is mailed.
    ///
    /// # Errors
    ///
    /// `OneTimeTokenInvalid`; `RateLimited` past the client address's budget.
    pub async fn reset_password(
        &self,
        token: &str,
        password: &Password,
        ip: Option<IpAddr>,
    ) -> Result<User, AuthError> {
        self.spend_address_budget(ip).await?;
        let hash = self.hasher.hash(password.expose()).await?;
        let composer = &self.composer;
        let user = self
            .store
            .redeem_password_token(&hash_refresh_token(token), hash, |user| {
                composer.compose(
                    Template::PasswordChanged,
                    &user.email,
                    user.name.as_ref().map(AsRef::as_ref),
                    None,
                )
            })
            .await?
            .ok_or(AuthError::OneTimeTokenInvalid)?;
        self.mail_queued();
        Ok(user)
    }

    /// `POST /auth/email/verify`.
    ///
    /// # Errors
    ///
    /// `OneTimeTokenInvalid`; `RateLimited` past the client address's budget.
    pub async fn verify_email(&self, token: &str, ip: Option<IpAddr>) -> Result<User, AuthError> {
        self.spend_address_budget(ip).await?;
        self.store
            .redeem_verify_token(&hash_refresh_token(token))
            .await?
            .ok_or(AuthError::OneTimeTokenInvalid)
    }

    /// `POST /auth/email/confirm`: the pending email change applies; the
    /// old address is told.
    ///
    /// # Errors
    ///
    /// `OneTimeTokenInvalid`, `EmailTaken`; `RateLimited` past the client
    /// address's budget.
    pub async fn confirm_email(&self, token: &str, ip: Option<IpAddr>) -> Result<User, AuthError> {
        self.spend_address_budget(ip).await?;
        let composer = &self.composer;
        let user = self
            .store
            .redeem_email_change(&hash_refresh_token(token), |old| {
                Ok(composer
                    .compose(
                        Template::EmailChanged,
                        &old.email,
                        old.name.as_ref().map(AsRef::as_ref),
                        None,
                    )?
                    .into_iter()
                    .collect())
            })
            .await?
            .ok_or(AuthError::OneTimeTokenInvalid)?;
        self.mail_queued();
        Ok(user)
    }

    /// Mails `user` a link that moves the account to `email`.
    pub(super) async fn request_email_change(
        &self,
        user: &User,
        email: &Email,
    ) -> Result<(), AuthError> {
        if self.store.email_exists(email.as_ref()).await? {
            return Err(AuthError::EmailTaken);
        }
        let token = self.mint(TokenPurpose::EmailChange, email.as_ref());
        let Some(mail) = self.compose(
            Template::ConfirmEmailChange,
            email,
            user.name.as_ref().map(AsRef::as_ref),
            Some(&token),
        )?
        else {
            // New addresses are parsed as mailable; this is not reached.
            return Err(AuthError::Internal(anyhow::anyhow!(
                "unmailable new address"
            )));
        };
        let requested = Record::own(Event::EmailChangeRequested, user.id);
        self.store
            .issue_token(user.id, &token.stored, &mail, None, &[requested])
            .await?;
        self.mail_queued();
        Ok(())
    }
}
