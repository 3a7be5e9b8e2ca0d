//! `ApiError` and its RFC 9457 `application/problem+json` rendering: the only
//! place where an HTTP error status is chosen.

use poem::{
    IntoResponse, Response,
    error::{MethodNotAllowedError, NotFoundError, ResponseError},
    http::{HeaderValue, StatusCode, header},
};
use poem_openapi::{
    ApiResponse, Object,
    error::{ContentTypeError, ParsePathError},
    registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::Type,
};
use serde::Serialize;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Base of every problem `type` URI.
const TYPE_BASE: &str = "https://roster.dev/problems/";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, Object)]
#[oai(rename_all = "snake_case", example)]
pub struct Problem {
    /// Stable URI naming the kind of problem, e.g. `https://roster.dev/problems/validation`.
    #[serde(rename = "type")]
    #[oai(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem; the same for every occurrence.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence.
    pub detail: String,
    /// The `X-Request-Id` of the request, for support and log search.
    pub request_id: String,
    /// Per-field reasons; present on validation problems only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub errors: Option<Vec<FieldError>>,
}

impl poem_openapi::types::Example for Problem {
    fn example() -> Self {
        Self {
            kind: format!("{TYPE_BASE}validation"),
            title: "Request validation failed".into(),
            status: 422,
            detail: "1 field is invalid".into(),
            request_id: "0f5c2a9e1b7d4c3a".into(),
            errors: Some(vec![FieldError::body(
                "email",
                "must be a valid email address",
            )]),
        }
    }
}

/// Why one field or query parameter was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Object)]
#[oai(rename_all = "snake_case")]
pub struct FieldError {
    /// The field or query parameter name.
    pub field: String,
    /// JSON pointer into the body (`#/email`); absent for query parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub pointer: Option<String>,
    /// What the value must be.
    pub message: String,
}

impl FieldError {
    /// A rejected top-level body field.
    pub fn body(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            pointer: Some(format!("#/{}", field.replace('~', "~0").replace('/', "~1"))),
            message: message.into(),
        }
    }

    /// A rejected query parameter.
    pub fn query(param: &str, message: impl Into<String>) -> Self {
        Self {
            field: param.to_owned(),
            pointer: None,
            message: message.into(),
        }
    }
}

/// `parsed`'s value, or `None` with its message added to `errors` as a
/// problem of the query parameter `param`: every bad parameter is reported,
/// not only the first.
pub fn query_check<T>(
    errors: &mut Vec<FieldError>,
    param: &str,
    parsed: Result<T, &'static str>,
) -> Option<T> {
    parsed
        .map_err(|message| errors.push(FieldError::query(param, message)))
        .ok()
}

/// Every failure an endpoint can answer with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON, or a parameter has the wrong type.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Missing, invalid or expired credentials.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// Authenticated, but not allowed.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// The right password of a disabled account.
    #[error("account disabled")]
    AccountDisabled,
    /// The right password of an unverified account, when verification is
    /// required.
    #[error("email unverified")]
    EmailUnverified,
    /// No such resource or route.
    #[error("not found")]
    NotFound,
    /// The route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A uniqueness or last-admin rule.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// `If-Match` does not match.
    #[error("precondition failed")]
    PreconditionFailed,
    /// Body larger than the configured limit.
    #[error("payload larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit, bytes.
        limit: usize,
    },
    /// Body is not JSON where JSON is expected.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// Well-formed input that breaks field rules.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// Too many attempts.
    #[error("rate limited for {retry_after_secs}s")]
    RateLimited {
        /// Seconds until a retry can succeed.
        retry_after_secs: u64,
    },
    /// The database cannot be reached.
    #[error("database unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// Anything else; the cause is logged, never sent.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl ApiError {
    /// A single invalid body field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::body(field, message)])
    }

    /// Status, type slug and title of this kind of problem.
    const fn kind(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            Self::Unauthorized(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Authentication required",
            ),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            Self::AccountDisabled => (
                StatusCode::FORBIDDEN,
                "account-disabled",
                "Account disabled",
            ),
            Self::EmailUnverified => (
                StatusCode::FORBIDDEN,
                "email-unverified",
                "Email unverified",
            ),
            Self::NotFound => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            Self::PreconditionFailed => (
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                "Precondition failed",
            ),
            Self::PayloadTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            ),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            Self::Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Request validation failed",
            ),
            Self::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            ),
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
            ),
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::BadRequest(detail) => detail.clone(),
            Self::Unauthorized(detail) | Self::Forbidden(detail) | Self::Conflict(detail) => {
                (*detail).to_owned()
            }
            Self::NotFound => "No such resource".to_owned(),
            Self::AccountDisabled => "This account is disabled; an admin can enable it".to_owned(),
            Self::EmailUnverified => {
                "Confirm the account's email address first: the link was mailed to it".to_owned()
            }
            Self::MethodNotAllowed => "This route does not support the method".to_owned(),
            Self::PreconditionFailed => {
                "If-Match does not match the current ETag of the resource".to_owned()
            }
            Self::PayloadTooLarge { limit } => {
                format!("The request body is larger than {limit} bytes")
            }
            Self::UnsupportedMediaType => {
                "The request body must be sent as application/json".to_owned()
            }
            Self::Validation(errors) if errors.len() == 1 => "1 field is invalid".to_owned(),
            Self::Validation(errors) => format!("{} fields are invalid", errors.len()),
            Self::RateLimited { retry_after_secs } => {
                format!("Too many attempts; retry after {retry_after_secs} seconds")
            }
            // 5xx bodies are generic on purpose: the cause goes to the log only.
            Self::Unavailable(_) => "The database is unavailable; try again shortly".to_owned(),
            Self::Internal(_) => "An unexpected error occurred".to_owned(),
        }
    }

    /// Renders the problem document for a request.
    #[must_use]
    pub fn to_response(&self, request_id: &str) -> Response {
        let (status, slug, title) = self.kind();
        match self {
            Self::Internal(cause) => tracing::error!(error = ?cause, "request failed"),
            Self::Unavailable(cause) => {
                tracing::warn!(error = %format!("{cause:#}"), "database unavailable")
            }
            _ => {}
        }
        let problem = Problem {
            kind: format!("{TYPE_BASE}{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.detail(),
            request_id: request_id.to_owned(),
            errors: match self {
                Self::Validation(errors) => Some(errors.clone()),
                _ => None,
            },
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = Response::builder()
            .status(status)
            .content_type(PROBLEM_JSON)
            .body(body);
        let headers = response.headers_mut();
        match self {
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        response
    }

    /// Maps any error that reached the top of the stack (framework or ours).
    #[must_use]
    pub fn from_poem(err: poem::Error) -> Self {
        if err.is::<Self>() {
            return err.downcast::<Self>().unwrap_or_else(|_| Self::NotFound);
        }
        if err.is::<NotFoundError>() || err.is::<ParsePathError>() {
            // Unknown routes, and malformed ids in a path, are both "no such resource".
            return Self::NotFound;
        }
        if err.is::<MethodNotAllowedError>() {
            return Self::MethodNotAllowed;
        }
        if err.is::<ContentTypeError>() {
            return Self::UnsupportedMediaType;
        }
        let status = err.status();
        match status {
            StatusCode::BAD_REQUEST => Self::BadRequest(err.to_string()),
            StatusCode::UNAUTHORIZED => Self::Unauthorized("A valid bearer token is required"),
            StatusCode::FORBIDDEN => Self::Forbidden("Not allowed"),
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge { limit: 0 },
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            s if s.is_client_error() => Self::BadRequest(err.to_string()),
            _ => Self::Internal(anyhow::anyhow!("{err}")),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match err {
            StoreError::EmailTaken => Self::Conflict("An account with this email already exists"),
            StoreError::LastAdmin => Self::Conflict("The change would leave no admin"),
            StoreError::NotFound => Self::NotFound,
            StoreError::Compose(why) => Self::Internal(anyhow::anyhow!(why)),
            StoreError::PreconditionFailed => Self::PreconditionFailed,
            StoreError::Unavailable(db) => Self::Unavailable(db.into()),
            StoreError::Internal(db) => Self::Internal(db.into()),
        }
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(err: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError;
        match err {
            AuthError::InvalidCredentials => Self::Unauthorized("Invalid email or password"),
            AuthError::InvalidToken => {
                Self::Unauthorized("The token is invalid, expired or revoked")
            }
            AuthError::RateLimited(retry_after_secs) => Self::RateLimited { retry_after_secs },
            AuthError::RegistrationClosed => Self::Forbidden("Registration is disabled"),
            AuthError::EmailTaken => Self::Conflict("An account with this email already exists"),
            AuthError::WrongPassword => Self::Forbidden("The current password is wrong"),
            AuthError::SessionNotFound | AuthError::UserNotFound => Self::NotFound,
            AuthError::Denied(crate::auth::Denied::NotAdmin) => {
                Self::Forbidden("This operation needs the admin role")
            }
            AuthError::Denied(crate::auth::Denied::RoleChange) => {
                Self::Forbidden("Only an admin can change role, status or email_verified")
            }
            AuthError::AccountDisabled => Self::AccountDisabled,
            AuthError::EmailUnverified => Self::EmailUnverified,
            AuthError::OneTimeTokenInvalid => Self::invalid("token", "is invalid or expired"),
            AuthError::PasswordRequired => {
                Self::invalid("current_password", "is required to change the email")
            }
            AuthError::Store(store) => store.into(),
            AuthError::Internal(e) => e.into(),
        }
    }
}

impl From<Vec<crate::domain::account::Invalid>> for ApiError {
    fn from(errors: Vec<crate::domain::account::Invalid>) -> Self {
        Self::Validation(
            errors
                .iter()
                .map(|e| FieldError::body(e.field, e.message))
                .collect(),
        )
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        Self::Internal(err)
    }
}

impl ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        self.kind().0
    }

    fn as_response(&self) -> Response {
        // The request-id middleware renders errors itself, with the id; this
        // path is only reached by an error converted elsewhere.
        self.to_response("")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.to_response("")
    }
}

/// The problem statuses an operation declares, as bits of `Problems<S>`:
/// each operation names the ones it can answer, no more.
pub mod declare {
    /// `400`: the body is not JSON, or a query parameter has the wrong type.
    pub const BAD_REQUEST: u32 = 1 << 0;
    /// `401`: no, invalid or expired token, or bad credentials.
    pub const UNAUTHORIZED: u32 = 1 << 1;
    /// `403`: authenticated, but not allowed.
    pub const FORBIDDEN: u32 = 1 << 2;
    /// `404`: no such resource.
    pub const NOT_FOUND: u32 = 1 << 3;
    /// `409`: a uniqueness or last-admin rule.
    pub const CONFLICT: u32 = 1 << 4;
    /// `412`: `If-Match` does not match.
    pub const PRECONDITION_FAILED: u32 = 1 << 5;
    /// `413`: the body is larger than the limit.
    pub const PAYLOAD_TOO_LARGE: u32 = 1 << 6;
    /// `415`: the body is not JSON.
    pub const UNSUPPORTED_MEDIA_TYPE: u32 = 1 << 7;
    /// `422`: a field rule is broken.
    pub const VALIDATION: u32 = 1 << 8;
    /// `429`: rate limited.
    pub const RATE_LIMITED: u32 = 1 << 9;
    /// `500`: an unexpected failure.
    pub const INTERNAL: u32 = 1 << 10;
    /// `503`: the database is unavailable.
    pub const UNAVAILABLE: u32 = 1 << 11;

    /// What every operation that reads a JSON body can answer.
    pub const JSON_BODY: u32 =
        BAD_REQUEST | PAYLOAD_TOO_LARGE | UNSUPPORTED_MEDIA_TYPE | VALIDATION;
    /// What every operation that touches the database can answer.
    pub const SERVER: u32 = INTERNAL | UNAVAILABLE;
}

/// Each declarable problem status: its bit, code and description.
const DECLARED: &[(u32, u16, &str)] = &[
    (
        declare::BAD_REQUEST,
        400,
        "The body is not valid JSON, or a query parameter has the wrong type.",
    ),
    (
        declare::UNAUTHORIZED,
        401,
        "No, invalid or expired bearer token, or bad credentials.",
    ),
    (
        declare::FORBIDDEN,
        403,
        "Not allowed (`forbidden`), or the right password of a disabled account (`account-disabled`) or, when verification is required, of an unverified one (`email-unverified`).",
    ),
    (declare::NOT_FOUND, 404, "No such resource."),
    (
        declare::CONFLICT,
        409,
        "The email is taken, or the change would remove the last admin.",
    ),
    (
        declare::PRECONDITION_FAILED,
        412,
        "`If-Match` does not match the current `ETag`.",
    ),
    (
        declare::PAYLOAD_TOO_LARGE,
        413,
        "The body is larger than the configured limit.",
    ),
    (
        declare::UNSUPPORTED_MEDIA_TYPE,
        415,
        "The body is not `application/json`.",
    ),
    (
        declare::VALIDATION,
        422,
        "Well-formed input that breaks a field rule; `errors` says which.",
    ),
    (
        declare::RATE_LIMITED,
        429,
        "Rate limited; retry after `Retry-After` seconds.",
    ),
    (
        declare::INTERNAL,
        500,
        "Unexpected failure; the body is generic and the cause is logged.",
    ),
    (declare::UNAVAILABLE, 503, "The database is unavailable."),
];

/// An operation's failure: an [`ApiError`], documented as the problem
/// statuses whose [`declare`] bits are in `S`. Handlers use `?` on anything
/// that converts into an `ApiError`.
#[derive(Debug)]
pub struct Problems<const S: u32>(pub ApiError);

impl<const S: u32, E> From<E> for Problems<S>
where
    ApiError: From<E>,
{
    fn from(err: E) -> Self {
        Self(ApiError::from(err))
    }
}

impl<const S: u32> From<Problems<S>> for poem::Error {
    fn from(problems: Problems<S>) -> Self {
        problems.0.into()
    }
}

impl<const S: u32> ApiResponse for Problems<S> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: DECLARED
                .iter()
                .filter(|(bit, _, _)| S & bit != 0)
                .map(|&(_, status, description)| MetaResponse {
                    description,
                    status: Some(status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: PROBLEM_JSON,
                        schema: Problem::schema_ref(),
                    }],
                    headers: match status {
                        401 => vec![header_meta("WWW-Authenticate", "Always `Bearer`.")],
                        429 => vec![header_meta("Retry-After", "Seconds to wait.")],
                        _ => vec![],
                    },
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

fn header_meta(name: &str, description: &str) -> MetaHeader {
    MetaHeader {
        name: name.to_owned(),
        description: Some(description.to_owned()),
        required: true,
        deprecated: false,
        schema: String::schema_ref(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_problem_has_errors_and_counted_detail() {
        let err = ApiError::Validation(vec![
            FieldError::body("email", "must be a valid email address"),
            FieldError::query("per_page", "must be from 1 to 100"),
        ]);
        let (status, slug, _) = err.kind();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(slug, "validation");
        assert_eq!(err.detail(), "2 fields are invalid");
    }

    #[test]
    fn pointer_escapes_json_pointer_characters() {
        assert_eq!(
            FieldError::body("a/b~c", "x").pointer.as_deref(),
            Some("#/a~1b~0c")
        );
        assert_eq!(FieldError::query("page", "x").pointer, None);
    }

    #[test]
    fn internal_detail_never_carries_the_cause() {
        let err = ApiError::Internal(anyhow::anyhow!("SELECT * FROM users; /src/secret.rs"));
        assert!(!err.detail().contains("SELECT"));
        // A database that cannot be reached is a 503 with a generic body.
        let unavailable = crate::store::StoreError::Unavailable(sea_orm::DbErr::Conn(
            sea_orm::RuntimeErr::Internal("connection refused to 10.0.0.7".into()),
        ));
        let err = ApiError::from(unavailable);
        assert_eq!(err.kind().0, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!err.detail().contains("10.0.0.7"));
    }
}
