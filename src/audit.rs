//! The audit log's vocabulary: the events, the record of one about to be
//! written, and the request it happens in.
//!
//! A change and its record are written in one transaction (see
//! `store::audit`); the request's client address, user agent and id come
//! from the task-local [`Context`] the HTTP middleware sets, so the flows
//! name only who acted on whom.

use std::net::IpAddr;

use serde_json::{Map, Value};
use uuid::Uuid;

/// Every kind of event, by its contract name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    UserRegistered,
    UserCreated,
    UserInvited,
    UserUpdated,
    UserDisabled,
    UserEnabled,
    UserDeleted,
    LoginSucceeded,
    LoginFailed,
    SessionEnded,
    RefreshReuseDetected,
    PasswordChanged,
    PasswordResetRequested,
    PasswordReset,
    EmailVerified,
    EmailChangeRequested,
    EmailChanged,
}

impl Event {
    /// Every event.
    pub const ALL: [Self; 17] = [
        Self::UserRegistered,
        Self::UserCreated,
        Self::UserInvited,
        Self::UserUpdated,
        Self::UserDisabled,
        Self::UserEnabled,
        Self::UserDeleted,
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::SessionEnded,
        Self::RefreshReuseDetected,
        Self::PasswordChanged,
        Self::PasswordResetRequested,
        Self::PasswordReset,
        Self::EmailVerified,
        Self::EmailChangeRequested,
        Self::EmailChanged,
    ];

    /// The name in the API, the logs and the metric.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UserRegistered => "user.registered",
            Self::UserCreated => "user.created",
            Self::UserInvited => "user.invited",
            Self::UserUpdated => "user.updated",
            Self::UserDisabled => "user.disabled",
            Self::UserEnabled => "user.enabled",
            Self::UserDeleted => "user.deleted",
            Self::LoginSucceeded => "login.succeeded",
            Self::LoginFailed => "login.failed",
            Self::SessionEnded => "session.ended",
            Self::RefreshReuseDetected => "refresh.reuse_detected",
            Self::PasswordChanged => "password.changed",
            Self::PasswordResetRequested => "password.reset_requested",
            Self::PasswordReset => "password.reset",
            Self::EmailVerified => "email.verified",
            Self::EmailChangeRequested => "email.change_requested",
            Self::EmailChanged => "email.changed",
        }
    }

    /// The event named `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

/// An event about to be written. `details` never holds a password, hash,
/// token, code or secret: only names, reasons and roles.
#[derive(Debug, Clone)]
pub struct Record {
    /// What happened.
    pub event: Event,
    /// Who acted; `None` when anonymous.
    pub actor_id: Option<Uuid>,
    /// The account acted on; `None` for a failed login on an unknown email.
    pub subject_id: Option<Uuid>,
    /// A small object.
    pub details: Map<String, Value>,
}

impl Record {
    /// `event` by `actor` on `subject`, without details.
    #[must_use]
    pub fn new(event: Event, actor_id: Option<Uuid>, subject_id: Option<Uuid>) -> Self {
        Self {
            event,
            actor_id,
            subject_id,
            details: Map::new(),
        }
    }

    /// `event` a user did to its own account.
    #[must_use]
    pub fn own(event: Event, user_id: Uuid) -> Self {
        Self::new(event, Some(user_id), Some(user_id))
    }

    /// Adds `key: value` to the details.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// `session.ended` of `subject` by `actor`, ended `how`.
    #[must_use]
    pub fn sessions_ended(actor_id: Option<Uuid>, subject_id: Uuid, how: &str) -> Self {
        Self::new(Event::SessionEnded, actor_id, Some(subject_id)).with("how", how)
    }
}

/// The request an event happens in.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// Its `User-Agent` header (kept as sent, a reference count; truncated
    /// when written).
    pub user_agent: Option<poem::http::HeaderValue>,
    /// The request's id.
    pub request_id: Option<String>,
}

tokio::task_local! {
    static CONTEXT: Context;
}

impl Context {
    /// The `User-Agent`, as text, at most `max` characters.
    #[must_use]
    pub fn user_agent(&self, max: usize) -> Option<String> {
        self.user_agent
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(max).collect())
    }

    /// Runs `f` with `self` as the context of the events it records.
    pub async fn scope<F: Future>(self, f: F) -> F::Output {
        CONTEXT.scope(self, f).await
    }

    /// The current request's context; empty outside a request (the CLI, a
    /// background task).
    #[must_use]
    pub fn current() -> Self {
        CONTEXT.try_with(Clone::clone).unwrap_or_default()
    }
}

/// Deletes events older than the retention, in batches, every interval.
#[derive(Debug)]
pub struct Pruner {
    store: crate::store::Store,
    config: crate::config::AuditConfig,
}

/// Events deleted per statement: each is short, so no lock is held long.
const PRUNE_BATCH: u64 = 1_000;

impl Pruner {
    /// A pruner of `store`'s events.
    #[must_use]
    pub const fn new(store: crate::store::Store, config: crate::config::AuditConfig) -> Self {
        Self { store, config }
    }

    /// Prunes now and then every interval, forever (the caller aborts it).
    pub async fn run(self) {
        loop {
            let retention = chrono::TimeDelta::from_std(self.config.retention)
                .unwrap_or(chrono::TimeDelta::MAX);
            let cutoff = crate::store::now() - retention;
            let mut deleted = 0;
            loop {
                match self.store.prune_audit_events(cutoff, PRUNE_BATCH).await {
                    Ok(n) => {
                        deleted += n;
                        if n < PRUNE_BATCH {
                            break;
                        }
                        // Let other writers in between batches.
                        tokio::task::yield_now().await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot prune the audit log");
                        break;
                    }
                }
            }
            if deleted > 0 {
                tracing::info!(deleted, "pruned old audit events");
            }
            tokio::time::sleep(self.config.prune_interval).await;
        }
    }
}
