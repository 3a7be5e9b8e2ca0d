//! `GET /audit` (admin) and `GET /auth/audit` (the caller's own events).

use std::{collections::BTreeMap, sync::Arc};

use poem_openapi::{ApiResponse, Object, OpenApi, param::Query};
use serde::Serialize;
use uuid::Uuid;

use super::{
    ApiTags,
    error::{ApiError, FieldError, Problems, declare, query_check},
    json::{Json, WriteJson},
    params::{Bounded, DateTimeText},
    security::BearerAuth,
    types::{Nullable, Timestamp},
};
use crate::{
    audit::Event,
    auth::AuthService,
    domain::{limits::PER_PAGE_RANGE, listing},
    store::{AuditFilter, AuditPage, StoredEvent},
};

/// 1 to 100 events a page, 50 by default.
type AuditPerPage = Bounded<1, 100, 50>;

/// The audit log's endpoints.
pub struct AuditApi {
    /// The account flows.
    pub auth: Arc<AuthService>,
}

/// One recorded event.
#[derive(Debug, Object, Serialize)]
#[oai(rename_all = "snake_case")]
pub struct AuditEvent {
    /// Its id (UUID v7).
    pub id: Uuid,
    /// When it was recorded.
    pub at: Timestamp,
    /// What happened: `user.registered`, `login.failed`, `session.ended`, ...
    pub event: String,
    /// Who acted; `null` when anonymous.
    pub actor_id: Nullable<Uuid>,
    /// The account acted on; `null` for a failed login on an unknown email.
    pub subject_id: Nullable<Uuid>,
    /// The client's address.
    pub ip: Nullable<String>,
    /// The client's `User-Agent`.
    pub user_agent: Nullable<String>,
    /// The request's `X-Request-Id`.
    pub request_id: Nullable<String>,
    /// A small object: `fields`, `role`, `reason`, `how`, `via`,
    /// `session_id`; never a password, hash, token or secret.
    pub details: BTreeMap<String, serde_json::Value>,
}

impl From<StoredEvent> for AuditEvent {
    fn from(e: StoredEvent) -> Self {
        Self {
            id: e.id,
            at: Timestamp(e.at),
            event: e.event,
            actor_id: Nullable(e.actor_id),
            subject_id: Nullable(e.subject_id),
            ip: Nullable(e.ip),
            user_agent: Nullable(e.user_agent),
            request_id: Nullable(e.request_id),
            details: match e.details {
                serde_json::Value::Object(map) => map.into_iter().collect(),
                _ => BTreeMap::new(),
            },
        }
    }
}

/// A page of events, newest first.
#[derive(Debug, Object, Serialize)]
#[oai(rename_all = "snake_case")]
pub struct AuditPageResponse {
    /// The events of this page.
    pub items: Vec<AuditEvent>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Nullable<String>,
}

impl WriteJson for AuditPageResponse {}

impl From<AuditPage> for AuditPageResponse {
    fn from(page: AuditPage) -> Self {
        Self {
            items: page.items.into_iter().map(Into::into).collect(),
            next_cursor: Nullable(page.next_cursor),
        }
    }
}

/// `GET /audit` and `GET /auth/audit` answers.
#[derive(Debug, ApiResponse)]
pub enum AuditPageResult {
    /// A page of events.
    #[oai(status = 200)]
    Ok(Json<AuditPageResponse>),
}

const LISTED: u32 =
    declare::BAD_REQUEST | declare::UNAUTHORIZED | declare::VALIDATION | declare::SERVER;

#[OpenApi(tag = "ApiTags::Auth")]
impl AuditApi {
    /// List audit events (admin)
    ///
    /// Newest first, by keyset: pass `next_cursor` back as `cursor`.
    /// Filters combine with AND; `event` may be repeated (any of them).
    /// `403` for non-admins.
    #[oai(path = "/audit", method = "get", operation_id = "listAuditEvents")]
    #[allow(clippy::too_many_arguments)]
    async fn list_audit_events(
        &self,
        auth: BearerAuth,
        /// Events where this user id is the actor or the subject.
        user: Query<Option<String>>,
        /// Only events of these kinds (repeatable).
        event: Query<Vec<String>>,
        /// Only events strictly after this RFC 3339 time.
        after: Query<Option<DateTimeText>>,
        /// Only events strictly before this RFC 3339 time.
        before: Query<Option<DateTimeText>>,
        /// Opaque cursor from a previous `next_cursor`.
        cursor: Query<Option<String>>,
        /// Page size, 1-100 (default 50).
        per_page: Query<Option<AuditPerPage>>,
    ) -> Result<AuditPageResult, Problems<{ LISTED | declare::FORBIDDEN }>> {
        // A non-admin gets 403 before any 422.
        let admin = auth.admin()?;
        let mut errors = Vec::new();
        let user = user.0.as_deref().and_then(|raw| {
            query_check(
                &mut errors,
                "user",
                Uuid::parse_str(raw).map_err(|_| "must be a user id (a UUID)"),
            )
        });
        let mut filter = parse_filter(
            &mut errors,
            &event.0,
            &after.0,
            &before.0,
            &cursor.0,
            per_page.0,
        );
        filter.user = user;
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors).into());
        }
        let page = self.auth.audit_events(&admin, &filter).await?;
        Ok(AuditPageResult::Ok(Json(page.into())))
    }

    /// My security log
    ///
    /// The events of which the caller's account is the subject, newest
    /// first; the same filters as `GET /audit` but `user`.
    #[oai(
        path = "/auth/audit",
        method = "get",
        operation_id = "listOwnAuditEvents"
    )]
    async fn list_own_audit_events(
        &self,
        auth: BearerAuth,
        /// Only events of these kinds (repeatable).
        event: Query<Vec<String>>,
        /// Only events strictly after this RFC 3339 time.
        after: Query<Option<DateTimeText>>,
        /// Only events strictly before this RFC 3339 time.
        before: Query<Option<DateTimeText>>,
        /// Opaque cursor from a previous `next_cursor`.
        cursor: Query<Option<String>>,
        /// Page size, 1-100 (default 50).
        per_page: Query<Option<AuditPerPage>>,
    ) -> Result<AuditPageResult, Problems<LISTED>> {
        let mut errors = Vec::new();
        let filter = parse_filter(
            &mut errors,
            &event.0,
            &after.0,
            &before.0,
            &cursor.0,
            per_page.0,
        );
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors).into());
        }
        let page = self.auth.own_audit_events(&auth.0, filter).await?;
        Ok(AuditPageResult::Ok(Json(page.into())))
    }
}

/// The filters both endpoints share; every bad one is added to `errors`.
fn parse_filter(
    errors: &mut Vec<FieldError>,
    events: &[String],
    after: &Option<DateTimeText>,
    before: &Option<DateTimeText>,
    cursor: &Option<String>,
    per_page: Option<AuditPerPage>,
) -> AuditFilter {
    let kinds = events
        .iter()
        .filter_map(|name| {
            query_check(
                errors,
                "event",
                Event::parse(name).ok_or("must be an audit event name such as `login.failed`"),
            )
        })
        .collect();
    let after = query_check(
        errors,
        "after",
        listing::time_bound(after.as_ref().map(|t| t.0.as_str())),
    )
    .flatten();
    let before = query_check(
        errors,
        "before",
        listing::time_bound(before.as_ref().map(|t| t.0.as_str())),
    )
    .flatten();
    let cursor = cursor.as_deref().and_then(|raw| {
        query_check(
            errors,
            "cursor",
            AuditFilter::cursor_of(raw).ok_or("must be a `next_cursor` from a previous page"),
        )
    });
    let per_page = AuditPerPage::value_or_default(per_page, "per_page", PER_PAGE_RANGE)
        .map_err(|e| errors.push(e))
        .unwrap_or(50);
    AuditFilter {
        user: None,
        subject: None,
        events: kinds,
        after,
        before,
        cursor,
        per_page: u32::try_from(per_page).unwrap_or(50),
    }
}
