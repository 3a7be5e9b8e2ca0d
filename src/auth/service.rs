//! The account flows: register, login, refresh, logout, password change,
//! the bearer check and the user directory's operations, built from the
//! store, the hasher and the JWT keys. The HTTP handlers talk to this
//! service alone.

use std::{net::IpAddr, sync::Arc};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

pub use super::access::{Admin, Caller};
use super::{
    access::Denied,
    jwt::{Claims, JwtKeys},
    password::PasswordHasher,
    throttle::AddressLimiter,
};
use crate::{
    audit::{Event, Record},
    config::{Config, LifecycleConfig, LoginLimits},
    domain::{
        AccountStatus, Email, Password, Role, TokenPurpose, User, UserName,
        listing::{UserFilter, UserPage, UserQuery},
    },
    infra::metrics::{AuthEvent, Metrics},
    mail::{Composer, Template},
    store::{
        AuditFilter, AuditPage, NewUser, RefreshOutcome, SessionInfo, Store, StoreError, UserChange,
    },
};

/// Outcomes of the account flows that callers turn into responses.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown email or wrong password (indistinguishable on purpose).
    #[error("invalid email or password")]
    InvalidCredentials,
    /// Missing, malformed, expired or revoked token.
    #[error("invalid or expired token")]
    InvalidToken,
    /// Too many failed logins; retry after this many seconds.
    #[error("too many failed logins")]
    RateLimited(u64),
    /// Sign-up is disabled.
    #[error("registration is disabled")]
    RegistrationClosed,
    /// The email belongs to another account.
    #[error("email is taken")]
    EmailTaken,
    /// The current password given for a sensitive change is wrong.
    #[error("current password is wrong")]
    WrongPassword,
    /// The right password of a disabled account.
    #[error("the account is disabled")]
    AccountDisabled,
    /// The right password of an unverified account, when verification is
    /// required.
    #[error("the email is not verified")]
    EmailUnverified,
    /// A mailed link's token that is unknown, used, expired, voided or of
    /// another purpose: one answer for all.
    #[error("the link's token is invalid or expired")]
    OneTimeTokenInvalid,
    /// A sensitive change was asked for without the current password.
    #[error("current password is required")]
    PasswordRequired,
    /// No such live session of the caller.
    #[error("no such session")]
    SessionNotFound,
    /// No such user, or one the caller may not see.
    #[error("no such user")]
    UserNotFound,
    /// The caller may not do this.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// Storage failed.
    #[error(transparent)]
    Store(StoreError),
    /// Hashing or signing failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for AuthError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::EmailTaken => Self::EmailTaken,
            StoreError::NotFound => Self::InvalidToken,
            other => Self::Store(other),
        }
    }
}

/// A change to a user's record, as made.
#[derive(Debug)]
pub enum Updated {
    /// Every field applied.
    Applied(User),
    /// Every field but the email applied; the new address was mailed a
    /// link that applies it.
    EmailPending(User),
}

/// A freshly issued access and refresh token.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    /// Signed JWT.
    pub access_token: String,
    /// Access token lifetime, seconds.
    pub expires_in: u64,
    /// Opaque refresh token (only its hash is stored).
    pub refresh_token: String,
}

/// Where a login comes from.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// Client address.
    pub ip: Option<IpAddr>,
    /// `User-Agent` header, truncated.
    pub user_agent: Option<String>,
}

/// The account flows.
#[derive(Debug)]
pub struct AuthService {
    pub(super) store: Store,
    pub(super) hasher: PasswordHasher,
    jwt: JwtKeys,
    refresh_ttl: std::time::Duration,
    allow_registration: bool,
    limits: LoginLimits,
    pub(super) addresses: AddressLimiter,
    metrics: Option<Arc<Metrics>>,
    pub(super) composer: Composer,
    pub(super) lifecycle: LifecycleConfig,
    /// Notified when mail is queued: the sender delivers it at once.
    pub(super) mail_wake: Arc<tokio::sync::Notify>,
}

/// An invited account's password hash: no password verifies against it
/// (and login never tries: it runs the dummy hash instead).
const NO_PASSWORD: &str = "!invited";

impl AuthService {
    /// Builds the service from the configuration.
    ///
    /// # Errors
    ///
    /// When the signing key cannot be used.
    pub fn new(
        config: &Config,
        store: Store,
        metrics: Option<Arc<Metrics>>,
        public_url: url::Url,
        mail_wake: Arc<tokio::sync::Notify>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            addresses: AddressLimiter::new(
                store.clone(),
                config.login_limits.max_failures_per_ip,
                config.login_limits.window,
            ),
            store,
            hasher: PasswordHasher::with(config.password_hash),
            jwt: JwtKeys::from_config(&config.jwt)?,
            refresh_ttl: config.jwt.refresh_ttl,
            allow_registration: config.allow_registration,
            limits: config.login_limits,
            metrics,
            composer: Composer::new(config.mail.from.clone(), public_url),
            lifecycle: config.lifecycle,
            mail_wake,
        })
    }

    /// The signing keys (for the JWKS endpoint).
    #[must_use]
    pub const fn keys(&self) -> &JwtKeys {
        &self.jwt
    }

    /// Open sign-up: always role `user`.
    ///
    /// # Errors
    ///
    /// `RegistrationClosed`, `EmailTaken`.
    pub async fn register(
        &self,
        email: &Email,
        password: &Password,
        name: Option<&UserName>,
    ) -> Result<User, AuthError> {
        if !self.allow_registration {
            return Err(AuthError::RegistrationClosed);
        }
        // The new address is mailed a verification link, in the same transaction.
        let token = self.mint(TokenPurpose::Verify, email.as_ref());
        let mail = self.compose(
            Template::VerifyEmail,
            email,
            name.map(AsRef::as_ref),
            Some(&token),
        )?;
        let hash = self.hasher.hash(password.expose()).await?;
        let user = self
            .store
            .create_user(
                NewUser {
                    email,
                    password_hash: hash,
                    name,
                    role: Role::User,
                    status: AccountStatus::Active,
                    email_verified: false,
                },
                Some(&token.stored),
                mail.as_slice(),
                vec![Record::new(Event::UserRegistered, None, None)],
            )
            .await?;
        self.mail_queued();
        self.event(AuthEvent::Register);
        Ok(user)
    }

    /// An admin creates a user with any role, and says whether its address
    /// is verified. With a password the account is active; without one it
    /// is `invited` and mailed an invitation to set it.
    ///
    /// # Errors
    ///
    /// `EmailTaken`.
    pub async fn create_user(
        &self,
        by: &Admin,
        email: &Email,
        password: Option<&Password>,
        name: Option<&UserName>,
        role: Role,
        email_verified: bool,
    ) -> Result<User, AuthError> {
        let Some(password) = password else {
            let token = self.mint(TokenPurpose::Invite, email.as_ref());
            let mail = self.compose(
                Template::Invite,
                email,
                name.map(AsRef::as_ref),
                Some(&token),
            )?;
            let user = self
                .store
                .create_user(
                    NewUser {
                        email,
                        password_hash: NO_PASSWORD.to_owned(),
                        name,
                        role,
                        status: AccountStatus::Invited,
                        email_verified,
                    },
                    Some(&token.stored),
                    mail.as_slice(),
                    vec![Record::new(
                        Event::UserInvited,
                        Some(by.caller().user.id),
                        None,
                    )],
                )
                .await?;
            self.mail_queued();
            return Ok(user);
        };
        let created = Record::new(Event::UserCreated, Some(by.caller().user.id), None);
        self.create_account(email, password, name, role, email_verified, created)
            .await
    }

    /// The operator creates an admin (`roster create-admin`).
    ///
    /// # Errors
    ///
    /// `EmailTaken`.
    pub async fn create_admin(
        &self,
        email: &Email,
        password: &Password,
    ) -> Result<User, AuthError> {
        // An operator's account: its address is taken on the operator's word.
        let created = Record::new(Event::UserCreated, None, None).with("by", "operator");
        self.create_account(email, password, None, Role::Admin, true, created)
            .await
    }

    async fn create_account(
        &self,
        email: &Email,
        password: &Password,
        name: Option<&UserName>,
        role: Role,
        email_verified: bool,
        created: Record,
    ) -> Result<User, AuthError> {
        let hash = self.hasher.hash(password.expose()).await?;
        Ok(self
            .store
            .create_user(
                NewUser {
                    email,
                    password_hash: hash,
                    name,
                    role,
                    status: AccountStatus::Active,
                    email_verified,
                },
                None,
                &[],
                vec![created],
            )
            .await?)
    }

    /// User `id` as the caller may see it: an admin sees anyone, a user
    /// only itself.
    ///
    /// # Errors
    ///
    /// `UserNotFound` when there is no such user or the caller may not see it.
    pub async fn get_user(&self, caller: &Caller, id: Uuid) -> Result<User, AuthError> {
        if !caller.may_manage(id) {
            return Err(AuthError::UserNotFound);
        }
        self.store
            .get_user(id)
            .await
            .map_err(AuthError::Store)?
            .ok_or(AuthError::UserNotFound)
    }

    /// Applies a change to user `id`'s record, for a caller that may manage
    /// it; only an admin changes a role, and a user changing its own email
    /// must give its current password. With `expected`, only if the record's
    /// `updated_at` is still that.
    ///
    /// # Errors
    ///
    /// `UserNotFound`, `Denied`, `WrongPassword`; `Store` with
    /// `PreconditionFailed`, `EmailTaken`, `LastAdmin`.
    pub async fn update_user(
        &self,
        caller: &Caller,
        id: Uuid,
        mut change: UserChange,
        current_password: Option<&str>,
        expected: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Updated, AuthError> {
        if !caller.may_manage(id) {
            return Err(AuthError::UserNotFound);
        }
        if change.role.is_some() || change.status.is_some() || change.email_verified.is_some() {
            caller.may_set_role()?;
        }
        let changes_email = change
            .email
            .as_ref()
            .is_some_and(|e| *e != caller.user.email);
        let mut pending = None;
        if changes_email && !caller.is_admin() {
            let password = current_password.ok_or(AuthError::PasswordRequired)?;
            self.check_password(&caller.user, password).await?;
            if self.lifecycle.confirm_email_change {
                // The new address must confirm first: the rest applies now.
                pending = change.email.take();
            }
        }
        if change.status == Some(AccountStatus::Disabled) {
            let target = self.get_user(caller, id).await?;
            if target.status != AccountStatus::Disabled {
                change.mails.extend(self.compose(
                    Template::AccountDisabled,
                    &target.email,
                    target.name.as_ref().map(AsRef::as_ref),
                    None,
                )?);
            }
        }
        let fields: Vec<&str> = [
            ("email", change.email.is_some()),
            ("name", change.name.is_some()),
            ("role", change.role.is_some()),
            ("status", change.status.is_some()),
            ("email_verified", change.email_verified.is_some()),
        ]
        .into_iter()
        .filter_map(|(field, set)| set.then_some(field))
        .collect();
        let actor = Some(caller.user.id);
        if !fields.is_empty() {
            change
                .audit
                .push(Record::new(Event::UserUpdated, actor, Some(id)).with("fields", fields));
        }
        let queues_mail = !change.mails.is_empty();
        let user = self
            .store
            .update_user(id, change, expected)
            .await
            .map_err(AuthError::Store)?;
        if queues_mail {
            self.mail_queued();
        }
        match pending {
            Some(email) => {
                self.request_email_change(&user, &email).await?;
                Ok(Updated::EmailPending(user))
            }
            None => Ok(Updated::Applied(user)),
        }
    }

    /// Deletes user `id` (an admin anyone, a user itself); its sessions end
    /// with it. With `expected`, only if its `updated_at` is still that.
    ///
    /// # Errors
    ///
    /// `UserNotFound`; `Store` with `PreconditionFailed`, `LastAdmin`.
    pub async fn delete_user(
        &self,
        caller: &Caller,
        id: Uuid,
        expected: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<(), AuthError> {
        if !caller.may_manage(id) {
            return Err(AuthError::UserNotFound);
        }
        let deleted = Record::new(Event::UserDeleted, Some(caller.user.id), Some(id));
        self.store
            .delete_user(id, expected, &[deleted])
            .await
            .map_err(AuthError::Store)
    }

    /// An admin ends every session of user `id`.
    ///
    /// # Errors
    ///
    /// `UserNotFound` when there is no such user.
    pub async fn end_user_sessions(&self, by: &Admin, id: Uuid) -> Result<(), AuthError> {
        self.get_user(by.caller(), id).await?;
        let ended = Record::sessions_ended(Some(by.caller().user.id), id, "admin");
        self.end_sessions(id, ended).await?;
        Ok(())
    }

    /// How many users match `filter`, for an admin.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn count_users(&self, _by: &Admin, filter: &UserFilter) -> Result<u64, AuthError> {
        Ok(self.store.count_users(filter).await?)
    }

    /// How many users have each role, for the metrics.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn count_users_by_role(&self) -> Result<Vec<(String, i64)>, AuthError> {
        Ok(self.store.count_users_by_role().await?)
    }

    /// Creates the admin when no admin exists; returns whether it did.
    ///
    /// # Errors
    ///
    /// `EmailTaken` when the email belongs to a non-admin.
    pub async fn bootstrap_admin(
        &self,
        email: &Email,
        password: &Password,
    ) -> Result<bool, AuthError> {
        if self.store.admin_exists().await? {
            return Ok(false);
        }
        self.create_admin(email, password).await?;
        Ok(true)
    }

    /// Checks credentials and opens a session.
    ///
    /// # Errors
    ///
    /// `RateLimited` (checked first, so even a right password gets it), then
    /// `InvalidCredentials` for an unknown email and a wrong password alike.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: ClientInfo,
    ) -> Result<IssuedTokens, AuthError> {
        let result = self.try_login(email, password, client).await;
        match &result {
            Ok(_) => self.event(AuthEvent::LoginSuccess),
            Err(AuthError::InvalidCredentials) => self.event(AuthEvent::LoginFailure),
            Err(AuthError::RateLimited(_)) => self.event(AuthEvent::RateLimited),
            Err(_) => {}
        }
        result
    }

    async fn try_login(
        &self,
        email: &str,
        password: &str,
        client: ClientInfo,
    ) -> Result<IssuedTokens, AuthError> {
        let email = email.trim().to_lowercase();
        let address_lock = match client.ip {
            Some(ip) => self.addresses.locked_for(ip).await?,
            None => None,
        };
        if let Some(secs) = address_lock {
            self.login_failed(None, "rate_limited").await?;
            return Err(AuthError::RateLimited(secs));
        }
        if let Err(e) = self.within_account_budget(&email).await {
            self.login_failed(None, "rate_limited").await?;
            return Err(e);
        }
        // An invited account has no password yet: like an unknown email it
        // verifies against the dummy hash, with the same work and answer.
        let found = self
            .store
            .find_credentials(&email)
            .await?
            .filter(|(user, _)| user.status != AccountStatus::Invited);
        let hash = found.as_ref().map(|(_, h)| h.as_str());
        let verdict = self.hasher.check(password, hash).await?;
        let subject = found.as_ref().map(|(user, _)| user.id);
        let Some((user, stored)) = found.filter(|_| verdict.matches) else {
            self.store
                .record_login_failure(&email, self.limits.window)
                .await?;
            self.login_failed(subject, "password").await?;
            if let Some(ip) = client.ip {
                self.addresses.record_failure(ip).await?;
            }
            return Err(AuthError::InvalidCredentials);
        };
        // Only the right password learns that the account is disabled.
        if user.status == AccountStatus::Disabled {
            self.login_failed(Some(user.id), "disabled").await?;
            return Err(AuthError::AccountDisabled);
        }
        if self.lifecycle.require_verified_email && !user.email_verified {
            self.login_failed(Some(user.id), "unverified").await?;
            return Err(AuthError::EmailUnverified);
        }
        self.store.reset_login_failures(&email).await?;
        self.store.record_login(user.id).await?;
        let refresh_token = new_refresh_token();
        let session = self
            .store
            .create_session(
                user.id,
                hash_refresh_token(&refresh_token),
                self.refresh_ttl,
                client.user_agent,
                client.ip.map(|ip| ip.to_string()),
                &[Record::own(Event::LoginSucceeded, user.id)],
            )
            .await?;
        if verdict.outdated {
            self.rehash_later(user.id, stored, password);
        }
        self.tokens(&user, session.id, refresh_token)
    }

    /// Replaces an outdated hash with one of the configured algorithm, from
    /// the password a login just proved, after the login's answer. Only if
    /// the hash is still `stored`: a password change meanwhile wins.
    fn rehash_later(&self, id: Uuid, stored: String, password: &str) {
        let hasher = self.hasher.clone();
        let store = self.store.clone();
        let password = secrecy::SecretString::from(password.to_owned());
        tokio::spawn(async move {
            let outcome = match hasher
                .hash(secrecy::ExposeSecret::expose_secret(&password))
                .await
            {
                Ok(hash) => store
                    .replace_password_hash(id, &stored, hash)
                    .await
                    .map_err(Into::into),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(true) => tracing::info!(user_id = %id, "password hash upgraded"),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(user_id = %id, error = %e, "cannot upgrade a password hash")
                }
            }
        });
    }

    /// Records a failed login of `subject` (`None`: not known) for `reason`.
    async fn login_failed(&self, subject: Option<Uuid>, reason: &str) -> Result<(), AuthError> {
        let record = Record::new(Event::LoginFailed, None, subject).with("reason", reason);
        Ok(self.store.record_events(&[record]).await?)
    }

    /// Rotates a refresh token into a new pair.
    ///
    /// # Errors
    ///
    /// `InvalidToken` for unknown, expired, revoked or already-used tokens
    /// (an already-used one older than 10 s also revokes its session).
    pub async fn refresh(&self, refresh_token: &str) -> Result<IssuedTokens, AuthError> {
        let next = new_refresh_token();
        let outcome = self
            .store
            .rotate_refresh_token(
                &hash_refresh_token(refresh_token),
                hash_refresh_token(&next),
            )
            .await?;
        match outcome {
            RefreshOutcome::Rotated { session_id, user } => {
                self.event(AuthEvent::Refresh);
                self.tokens(&user, session_id, next)
            }
            RefreshOutcome::Reused { session_id } => {
                self.event(AuthEvent::RefreshReuse);
                tracing::warn!(%session_id, "refresh token reused: session revoked");
                Err(AuthError::InvalidToken)
            }
            RefreshOutcome::RecentlyRotated | RefreshOutcome::Invalid => {
                Err(AuthError::InvalidToken)
            }
        }
    }

    /// The caller behind a bearer token, with its current role.
    ///
    /// # Errors
    ///
    /// `InvalidToken` when the token fails verification or its session is not live.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, AuthError> {
        let claims = self.verify_token(token)?;
        self.authenticate_claims(&claims).await
    }

    /// The second half of [`Self::authenticate`], for claims that
    /// [`Self::verify_token`] accepted: the session must be live.
    ///
    /// # Errors
    ///
    /// `InvalidToken` when the session is not live; storage failures.
    pub async fn authenticate_claims(&self, claims: &Claims) -> Result<Caller, AuthError> {
        let Some(user) = self.store.authenticate(claims.sid, claims.sub).await? else {
            return Err(self.rejected());
        };
        Ok(Self::caller(user, claims))
    }

    /// The first half of [`Self::authenticate`]: the token's signature,
    /// issuer, audience and lifetime, without the session. Whoever calls
    /// this must finish with [`Self::authenticate_and_get`].
    ///
    /// # Errors
    ///
    /// `InvalidToken`.
    pub fn verify_token(&self, token: &str) -> Result<Claims, AuthError> {
        self.jwt.verify(token).map_err(|e| {
            tracing::debug!(reason = %e, "bearer token rejected");
            self.rejected()
        })
    }

    /// The second half of [`Self::authenticate`] fused with a read of user
    /// `target`: one database statement for both.
    ///
    /// # Errors
    ///
    /// `InvalidToken` when the session is not live; storage failures.
    pub async fn authenticate_and_get(
        &self,
        claims: &Claims,
        target: Uuid,
    ) -> Result<(Caller, Option<User>), AuthError> {
        let Some((user, found)) = self
            .store
            .authenticate_and_get(claims.sid, claims.sub, target)
            .await?
        else {
            return Err(self.rejected());
        };
        Ok((Self::caller(user, claims), found))
    }

    /// A page of users for the admin whose token these `claims` are. The
    /// bearer check is fused with the listing into one statement; only when
    /// that returns nothing (an empty page, or a caller who may not list) is
    /// the check made on its own, to tell the two apart.
    ///
    /// # Errors
    ///
    /// `InvalidToken` when the session is not live, `Denied` for a
    /// non-admin; storage failures.
    pub async fn list_users(
        &self,
        claims: &Claims,
        query: &UserQuery,
    ) -> Result<UserPage, AuthError> {
        // A token issued to a non-admin takes the full check first, so that
        // such callers get their 403 without running a listing; one promoted
        // since goes on to the list. The token's role only picks the path:
        // the listing statement checks the current role itself.
        if claims.role != Role::Admin.as_str() {
            self.authenticate_claims(claims).await?.admin()?;
        }
        if let Some(page) = self
            .store
            .list_users_as_admin(claims.sid, claims.sub, query)
            .await?
        {
            tracing::Span::current().record("enduser.id", claims.sub.to_string());
            return Ok(page);
        }
        let admin = self.authenticate_claims(claims).await?.admin()?;
        Ok(UserPage {
            items: Vec::new(),
            total: self.count_users(&admin, &query.filter).await?,
            next: None,
        })
    }

    fn rejected(&self) -> AuthError {
        self.event(AuthEvent::TokenRejected);
        AuthError::InvalidToken
    }

    fn caller(user: User, claims: &Claims) -> Caller {
        tracing::Span::current().record("enduser.id", user.id.to_string());
        Caller {
            user,
            session_id: claims.sid,
        }
    }

    /// Ends the caller's session, and the session of `refresh_token` when it
    /// is another of the caller's.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn logout(
        &self,
        caller: &Caller,
        refresh_token: Option<&str>,
    ) -> Result<(), AuthError> {
        let me = caller.user.id;
        let ended =
            |session: Uuid| {
                [Record::sessions_ended(Some(me), me, "logout")
                    .with("session_id", session.to_string())]
            };
        self.store
            .end_session(me, caller.session_id, &ended(caller.session_id))
            .await?;
        self.event(AuthEvent::Logout);
        if let Some(token) = refresh_token
            && let Some((session_id, owner)) = self
                .store
                .session_of_refresh_token(&hash_refresh_token(token))
                .await?
            && owner == me
        {
            self.store
                .end_session(owner, session_id, &ended(session_id))
                .await?;
        }
        Ok(())
    }

    /// Ends every session of the caller (log out everywhere).
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn logout_all(&self, caller: &Caller) -> Result<(), AuthError> {
        let me = caller.user.id;
        let ended = Record::sessions_ended(Some(me), me, "logout_all");
        self.end_sessions(me, ended).await?;
        Ok(())
    }

    /// Ends every session of a user; `ended` is recorded when any did.
    async fn end_sessions(&self, user_id: Uuid, ended: Record) -> Result<u64, AuthError> {
        Ok(self.store.end_sessions(user_id, &[ended]).await?)
    }

    /// Ends one of the caller's live sessions.
    ///
    /// # Errors
    ///
    /// `SessionNotFound` when it is not a live session of the caller.
    pub async fn end_session(&self, user_id: Uuid, session_id: Uuid) -> Result<(), AuthError> {
        let ended = Record::sessions_ended(Some(user_id), user_id, "logout")
            .with("session_id", session_id.to_string());
        if self
            .store
            .end_session(user_id, session_id, &[ended])
            .await?
        {
            Ok(())
        } else {
            Err(AuthError::SessionNotFound)
        }
    }

    /// The caller's live sessions.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn sessions(&self, user_id: Uuid) -> Result<Vec<SessionInfo>, AuthError> {
        Ok(self.store.live_sessions(user_id).await?)
    }

    /// Checks a user's current password, as part of the account's login
    /// budget: a wrong one counts as a failed login.
    ///
    /// # Errors
    ///
    /// `WrongPassword`; `RateLimited` while the account is over its budget.
    pub async fn check_password(&self, user: &User, password: &str) -> Result<(), AuthError> {
        // A wrong current password is a failed login of the account: the
        // same budget bounds guessing here and at `/auth/login`.
        let email = user.email.as_ref();
        self.within_account_budget(email)
            .await
            .inspect_err(|_| self.event(AuthEvent::RateLimited))?;
        let hash = self.store.password_hash(user.id).await?;
        if self.hasher.verify(password, Some(&hash)).await? {
            Ok(())
        } else {
            self.store
                .record_login_failure(email, self.limits.window)
                .await?;
            let failed = Record::new(Event::LoginFailed, Some(user.id), Some(user.id))
                .with("reason", "password")
                .with("via", "current_password");
            self.store.record_events(&[failed]).await?;
            self.event(AuthEvent::LoginFailure);
            Err(AuthError::WrongPassword)
        }
    }

    /// Whether the account of `email` may still try a password.
    ///
    /// # Errors
    ///
    /// `RateLimited` while it is over its failures in the window.
    async fn within_account_budget(&self, email: &str) -> Result<(), AuthError> {
        match self
            .store
            .login_locked_for(email, self.limits.max_failures, self.limits.window)
            .await?
        {
            Some(secs) => Err(AuthError::RateLimited(secs)),
            None => Ok(()),
        }
    }

    /// Changes the caller's password and ends its other sessions.
    ///
    /// # Errors
    ///
    /// `WrongPassword` when `current` is wrong.
    pub async fn change_password(
        &self,
        caller: &Caller,
        current: &str,
        new: &Password,
    ) -> Result<(), AuthError> {
        self.check_password(&caller.user, current).await?;
        let hash = self.hasher.hash(new.expose()).await?;
        let user = &caller.user;
        let mail = self.compose(
            Template::PasswordChanged,
            &user.email,
            user.name.as_ref().map(AsRef::as_ref),
            None,
        )?;
        self.store
            .change_password_hash(
                user.id,
                hash,
                Some(caller.session_id),
                mail.as_ref(),
                vec![Record::own(Event::PasswordChanged, user.id)],
            )
            .await?;
        self.mail_queued();
        Ok(())
    }

    /// A page of the audit log, for an admin.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn audit_events(
        &self,
        _by: &Admin,
        filter: &AuditFilter,
    ) -> Result<AuditPage, AuthError> {
        Ok(self.store.audit_events(filter).await?)
    }

    /// A page of the caller's own security log: the events of which its
    /// account is the subject.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn own_audit_events(
        &self,
        caller: &Caller,
        mut filter: AuditFilter,
    ) -> Result<AuditPage, AuthError> {
        filter.user = None;
        filter.subject = Some(caller.user.id);
        Ok(self.store.audit_events(&filter).await?)
    }

    fn event(&self, event: AuthEvent) {
        if let Some(metrics) = &self.metrics {
            metrics.auth_event(event);
        }
    }

    fn tokens(
        &self,
        user: &User,
        session_id: Uuid,
        refresh_token: String,
    ) -> Result<IssuedTokens, AuthError> {
        Ok(IssuedTokens {
            access_token: self.jwt.issue(user.id, session_id, user.role)?,
            expires_in: self.jwt.ttl().as_secs(),
            refresh_token,
        })
    }
}

/// 256 random bits, base64url: refresh tokens and mailed links' tokens.
pub(super) fn new_refresh_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256, hex: what the database holds instead of the token.
pub(super) fn hash_refresh_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
