//! `/auth`: registration, login, token refresh, logout, password change and
//! session management; and the JWKS of an asymmetric signing key.

use std::sync::Arc;

use jsonwebtoken::jwk::JwkSet;
use poem::Request;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    ApiTags,
    body::{JsonBody, OptionalJsonBody},
    error::{ApiError, Problems, declare},
    json::{Json, WriteJson},
    params::{EmailText, NameText, PasswordText, Text},
    security::BearerAuth,
    types::{Nullable, Timestamp, UserResponse, example_time},
};
use crate::{
    auth::{
        AuthService,
        service::{ClientInfo, IssuedTokens},
    },
    domain::{
        Password,
        account::{Credentials, NewAccount, lookup_email_field},
        limits,
    },
};

/// What an operation that checks a password can answer: a wrong one is a
/// `401` at login and a `403` elsewhere, a disabled account a `403`, an
/// account past its failures a `429`.
const PASSWORD_CHECKED: u32 = declare::JSON_BODY
    | declare::UNAUTHORIZED
    | declare::FORBIDDEN
    | declare::RATE_LIMITED
    | declare::SERVER;

/// Account endpoints.
#[derive(Debug)]
pub struct AuthApi {
    /// The account flows.
    pub auth: Arc<AuthService>,
}

/// Sign-up form.
#[derive(Debug, Object, Deserialize)]
#[oai(rename_all = "snake_case", deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Email address; stored lower-cased.
    pub email: EmailText,
    /// 8 to 128 characters; not one of the 10,000 most common passwords.
    pub password: PasswordText,
    /// Optional display name, at most 100 characters, no control characters.
    pub name: Option<NameText>,
}

/// Credentials.
#[derive(Debug, Object, Deserialize)]
#[oai(rename_all = "snake_case", deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Email address (any case).
    pub email: EmailText,
    /// Password.
    pub password: String,
}

/// A refresh token to exchange.
#[derive(Debug, Object, Deserialize)]
#[oai(rename_all = "snake_case", deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh.
    pub refresh_token: String,
}

/// Optional logout details.
#[derive(Debug, Object, Deserialize)]
#[oai(rename_all = "snake_case", deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    /// A refresh token of the caller whose session should end too.
    pub refresh_token: Option<String>,
}

/// A password change.
#[derive(Debug, Object, Deserialize)]
#[oai(rename_all = "snake_case", deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The current password.
    pub current_password: String,
    /// The new password: 8 to 128 characters, not a common one.
    pub new_password: PasswordText,
}

/// An address to mail a link to.
#[derive(Debug, Object, Deserialize)]
#[oai(rename_all = "snake_case", deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    /// The account's email address (any case).
    pub email: EmailText,
}

/// A mailed link's token.
#[derive(Debug, Object, Deserialize)]
#[oai(rename_all = "snake_case", deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The `token` of the link's query.
    pub token: LinkToken,
}

/// A reset or invitation link's token and the password to set.
#[derive(Debug, Object, Deserialize)]
#[oai(rename_all = "snake_case", deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The `token` of the link's query.
    pub token: LinkToken,
    /// The new password: 8 to 128 characters, not a common one.
    pub new_password: PasswordText,
}

/// The token of a mailed link: at most 128 characters.
pub type LinkToken = Text<1, { limits::LINK_TOKEN_MAX_CHARS }>;

/// `202`: accepted, whether or not the address has an account.
#[derive(Debug, ApiResponse)]
pub enum Accepted {
    /// Accepted. When the address has an account that may receive it, a
    /// link is mailed; the answer is the same either way.
    #[oai(status = 202)]
    Accepted,
}

/// An access token and the refresh token that renews it.
#[derive(Debug, Object, Serialize)]
#[oai(rename_all = "snake_case", example)]
pub struct TokenPair {
    /// Signed JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque, single-use token for `POST /auth/refresh`.
    pub refresh_token: String,
}

impl WriteJson for TokenPair {}

impl From<IssuedTokens> for TokenPair {
    fn from(t: IssuedTokens) -> Self {
        Self {
            access_token: t.access_token,
            token_type: "Bearer".into(),
            expires_in: t.expires_in,
            refresh_token: t.refresh_token,
        }
    }
}

/// A live login session.
#[derive(Debug, Object, Serialize)]
#[oai(rename_all = "snake_case", rename = "Session", example)]
pub struct SessionResponse {
    /// Session id: the `sid` claim of its tokens.
    pub id: Uuid,
    /// Login time.
    pub created_at: Timestamp,
    /// Last login or refresh.
    pub last_used_at: Timestamp,
    /// When the session's refresh token expires.
    pub expires_at: Timestamp,
    /// `User-Agent` of the login.
    pub user_agent: Nullable<String>,
    /// Client address of the login.
    pub ip: Nullable<String>,
    /// Whether this is the session of the token making the request.
    pub current: bool,
}

/// `POST /auth/register` answers.
#[derive(Debug, ApiResponse)]
pub enum RegisterResponse {
    /// The account was created.
    #[oai(status = 201)]
    Created(
        Json<UserResponse>,
        /// `/users/{id}` of the new account.
        #[oai(header = "Location")]
        String,
    ),
}

/// `POST /auth/login` and `POST /auth/refresh` answers.
#[derive(Debug, ApiResponse)]
pub enum TokensResponse {
    /// A new token pair: the access token for `Authorization: Bearer`, the
    /// refresh token for `POST /auth/refresh`.
    #[oai(status = 200)]
    Ok(Json<TokenPair>),
}

/// `GET /auth/sessions` answers.
#[derive(Debug, ApiResponse)]
pub enum SessionsResponse {
    /// The caller's live sessions, newest first.
    #[oai(status = 200)]
    Ok(Json<Vec<SessionResponse>>),
}

/// An empty success.
#[derive(Debug, ApiResponse)]
pub enum NoContent {
    /// Done.
    #[oai(status = 204)]
    Done,
}

/// `GET /.well-known/jwks.json` answers.
#[derive(Debug, ApiResponse)]
pub enum JwksResponse {
    /// The public keys that verify access tokens.
    #[oai(status = 200)]
    Keys(Json<serde_json::Value>),
}

#[OpenApi(tag = "ApiTags::Auth")]
impl AuthApi {
    /// Register an account
    ///
    /// Creates a `user` account. `403` when registration is disabled, `409`
    /// when the email is taken (case-insensitively; this reveals that the
    /// account exists, which sign-up cannot avoid), `422` for a field rule.
    #[oai(
        path = "/auth/register",
        method = "post",
        operation_id = "registerUser"
    )]
    async fn register_user(
        &self,
        body: JsonBody<RegisterRequest>,
    ) -> Result<
        RegisterResponse,
        Problems<{ declare::JSON_BODY | declare::FORBIDDEN | declare::CONFLICT | declare::SERVER }>,
    > {
        let body = body.0;
        let account = NewAccount::parse(
            body.email.as_str(),
            body.password.as_str(),
            body.name.as_ref().map(Text::as_str),
        )
        .map_err(ApiError::from)?;
        let user = self
            .auth
            .register(&account.email, &account.password, account.name.as_ref())
            .await?;
        let location = format!("/users/{}", user.id);
        Ok(RegisterResponse::Created(Json(user.into()), location))
    }

    /// Log in
    ///
    /// Exchanges email and password for a token pair and opens a session. An
    /// unknown email and a wrong password give the same `401`, in about the
    /// same time. After too many failures for the account or the client
    /// address, `429` with `Retry-After`, even for the right password. The
    /// right password of a disabled account is `403` `account-disabled`.
    #[oai(path = "/auth/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        req: &Request,
        body: JsonBody<LoginRequest>,
    ) -> Result<TokensResponse, Problems<PASSWORD_CHECKED>> {
        let body = body.0;
        let credentials =
            Credentials::parse(body.email.as_str(), &body.password).map_err(ApiError::from)?;
        let tokens = self
            .auth
            .login(&credentials.email, &body.password, client_info(req))
            .await?;
        Ok(TokensResponse::Ok(Json(tokens.into())))
    }

    /// Refresh tokens
    ///
    /// Exchanges a refresh token for a new pair; the old refresh token stops
    /// working. Presenting an already-used refresh token ends its session
    /// (reuse detection) and is a `401`, except within 10 s of its rotation
    /// (two tabs refreshing at once), which is a `401` that leaves the session alive.
    #[oai(
        path = "/auth/refresh",
        method = "post",
        operation_id = "refreshTokens"
    )]
    async fn refresh_tokens(
        &self,
        body: JsonBody<RefreshRequest>,
    ) -> Result<
        TokensResponse,
        Problems<{ declare::JSON_BODY | declare::UNAUTHORIZED | declare::SERVER }>,
    > {
        let tokens = self.auth.refresh(&body.0.refresh_token).await?;
        Ok(TokensResponse::Ok(Json(tokens.into())))
    }

    /// Log out
    ///
    /// Ends the caller's session: its refresh token and the presented access
    /// token stop working at once. The body may be omitted.
    #[oai(path = "/auth/logout", method = "post", operation_id = "logout")]
    async fn logout(
        &self,
        auth: BearerAuth,
        body: OptionalJsonBody<LogoutRequest>,
    ) -> Result<NoContent, Problems<{ declare::JSON_BODY | declare::UNAUTHORIZED | declare::SERVER }>>
    {
        let refresh = body.0.and_then(|b| b.refresh_token);
        self.auth.logout(&auth.0, refresh.as_deref()).await?;
        Ok(NoContent::Done)
    }

    /// Log out everywhere
    ///
    /// Ends every session of the caller; every access token stops working at once.
    #[oai(path = "/auth/logout-all", method = "post", operation_id = "logoutAll")]
    async fn logout_all(
        &self,
        auth: BearerAuth,
    ) -> Result<NoContent, Problems<{ declare::UNAUTHORIZED | declare::SERVER }>> {
        self.auth.logout_all(&auth.0).await?;
        Ok(NoContent::Done)
    }

    /// Change password
    ///
    /// Verifies the current password (`403` when wrong; a wrong one counts
    /// as a failed login of the account, and past the account's limit the
    /// answer is `429`), sets the new one and ends every other session of
    /// the caller.
    #[oai(
        path = "/auth/password",
        method = "post",
        operation_id = "changePassword"
    )]
    async fn change_password(
        &self,
        auth: BearerAuth,
        body: JsonBody<ChangePasswordRequest>,
    ) -> Result<NoContent, Problems<PASSWORD_CHECKED>> {
        let body = body.0;
        let new = Password::parse(body.new_password.as_str())
            .map_err(|m| ApiError::invalid("new_password", m))?;
        self.auth
            .change_password(&auth.0, &body.current_password, &new)
            .await?;
        Ok(NoContent::Done)
    }

    /// List my sessions
    ///
    /// The caller's live sessions, newest first; `current` marks the one
    /// whose token made this request.
    #[oai(path = "/auth/sessions", method = "get", operation_id = "listSessions")]
    async fn list_sessions(
        &self,
        auth: BearerAuth,
    ) -> Result<SessionsResponse, Problems<{ declare::UNAUTHORIZED | declare::SERVER }>> {
        let sessions = self.auth.sessions(auth.0.user.id).await?;
        Ok(SessionsResponse::Ok(Json(
            sessions
                .into_iter()
                .map(|s| SessionResponse {
                    current: s.id == auth.0.session_id,
                    id: s.id,
                    created_at: Timestamp(s.created_at),
                    last_used_at: Timestamp(s.last_used_at),
                    expires_at: Timestamp(s.expires_at),
                    user_agent: Nullable(s.user_agent),
                    ip: Nullable(s.ip),
                })
                .collect(),
        )))
    }

    /// End one of my sessions
    ///
    /// `404` when the id is not a live session of the caller.
    #[oai(
        path = "/auth/sessions/:id",
        method = "delete",
        operation_id = "endSession"
    )]
    async fn end_session(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<NoContent, Problems<{ declare::UNAUTHORIZED | declare::NOT_FOUND | declare::SERVER }>>
    {
        self.auth.end_session(auth.0.user.id, id.0).await?;
        Ok(NoContent::Done)
    }

    /// Ask for a password reset link
    ///
    /// Always `202`, with the same body in about the same time whether or
    /// not the email has an account: the lookup and the mail happen after
    /// the answer. An `active` or `invited` account is mailed a link to
    /// `/account/reset-password`, at most once a minute (extra requests get
    /// `202` and send nothing). Each request counts against the client
    /// address's login budget: `429` past it.
    #[oai(
        path = "/auth/password/forgot",
        method = "post",
        operation_id = "forgotPassword"
    )]
    async fn forgot_password(
        &self,
        req: &Request,
        body: JsonBody<EmailRequest>,
    ) -> Result<
        Accepted,
        Problems<{ declare::JSON_BODY | declare::RATE_LIMITED | declare::INTERNAL }>,
    > {
        let email = lookup_email_field(body.0.email.as_str()).map_err(ApiError::from)?;
        self.auth
            .forgot_password(email, client_info(req).ip)
            .await?;
        Ok(Accepted::Accepted)
    }

    /// Set a new password with a mailed link
    ///
    /// The token of a reset or invitation link sets the password (the
    /// password rules apply), ends every session of the account, marks its
    /// email verified and activates an invited account; the account is
    /// mailed that its password changed. A disabled account stays disabled.
    /// A token that is unknown, used, expired, voided or of another purpose
    /// is one `422` on `token`. Counts against the client address's login
    /// budget.
    #[oai(
        path = "/auth/password/reset",
        method = "post",
        operation_id = "resetPassword"
    )]
    async fn reset_password(
        &self,
        req: &Request,
        body: JsonBody<ResetPasswordRequest>,
    ) -> Result<NoContent, Problems<{ declare::JSON_BODY | declare::RATE_LIMITED | declare::SERVER }>>
    {
        let body = body.0;
        let password = Password::parse(body.new_password.as_str())
            .map_err(|m| ApiError::invalid("new_password", m))?;
        self.auth
            .reset_password(body.token.as_str(), &password, client_info(req).ip)
            .await?;
        Ok(NoContent::Done)
    }

    /// Verify an email address with a mailed link
    ///
    /// The token of a verification link marks the account's email verified.
    /// Bad tokens are one `422` on `token`. Counts against the client
    /// address's login budget.
    #[oai(
        path = "/auth/email/verify",
        method = "post",
        operation_id = "verifyEmail"
    )]
    async fn verify_email(
        &self,
        req: &Request,
        body: JsonBody<TokenRequest>,
    ) -> Result<NoContent, Problems<{ declare::JSON_BODY | declare::RATE_LIMITED | declare::SERVER }>>
    {
        self.auth
            .verify_email(body.0.token.as_str(), client_info(req).ip)
            .await?;
        Ok(NoContent::Done)
    }

    /// Mail a new verification link
    ///
    /// Always `202`, like `forgot`: an `active` account whose email is not
    /// verified is mailed a new link (at most once a minute), which voids
    /// the older ones.
    #[oai(
        path = "/auth/email/verify/resend",
        method = "post",
        operation_id = "resendVerification"
    )]
    async fn resend_verification(
        &self,
        req: &Request,
        body: JsonBody<EmailRequest>,
    ) -> Result<
        Accepted,
        Problems<{ declare::JSON_BODY | declare::RATE_LIMITED | declare::INTERNAL }>,
    > {
        let email = lookup_email_field(body.0.email.as_str()).map_err(ApiError::from)?;
        self.auth
            .resend_verification(email, client_info(req).ip)
            .await?;
        Ok(Accepted::Accepted)
    }

    /// Confirm an email change with a mailed link
    ///
    /// The token mailed to the new address applies the change; the address
    /// counts as verified, and the old one is told. `409` when the address
    /// was taken meanwhile; bad tokens are one `422` on `token`.
    #[oai(
        path = "/auth/email/confirm",
        method = "post",
        operation_id = "confirmEmailChange"
    )]
    async fn confirm_email_change(
        &self,
        req: &Request,
        body: JsonBody<TokenRequest>,
    ) -> Result<
        NoContent,
        Problems<
            { declare::JSON_BODY | declare::CONFLICT | declare::RATE_LIMITED | declare::SERVER },
        >,
    > {
        self.auth
            .confirm_email(body.0.token.as_str(), client_info(req).ip)
            .await?;
        Ok(NoContent::Done)
    }

    /// Public signing keys
    ///
    /// The JWK set that verifies access tokens, when they are signed with an
    /// EdDSA or RS256 key; `404` with HS256, whose key is secret.
    #[oai(
        path = "/.well-known/jwks.json",
        method = "get",
        operation_id = "getJwks"
    )]
    async fn get_jwks(
        &self,
    ) -> Result<JwksResponse, Problems<{ declare::NOT_FOUND | declare::INTERNAL }>> {
        let jwks: &JwkSet = self.auth.keys().jwks().ok_or(ApiError::NotFound)?;
        let value = serde_json::to_value(jwks).map_err(|e| ApiError::Internal(e.into()))?;
        Ok(JwksResponse::Keys(Json(value)))
    }
}

fn client_info(req: &Request) -> ClientInfo {
    ClientInfo {
        ip: req
            .remote_addr()
            .as_socket_addr()
            .map(std::net::SocketAddr::ip),
        user_agent: req
            .headers()
            .get(poem::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(limits::USER_AGENT_MAX_CHARS).collect()),
    }
}

impl poem_openapi::types::Example for RegisterRequest {
    fn example() -> Self {
        Self {
            email: Text("ann@example.com".into()),
            password: Text("correct horse battery".into()),
            name: Some(Text("Ann Lee".into())),
        }
    }
}

impl poem_openapi::types::Example for LoginRequest {
    fn example() -> Self {
        Self {
            email: Text("ann@example.com".into()),
            password: "correct horse battery".into(),
        }
    }
}

impl poem_openapi::types::Example for RefreshRequest {
    fn example() -> Self {
        Self {
            refresh_token: "q1X0f3mVd8yZ2wWc7sGkJb9aT4nR6pLe5uHiOoQxYzE".into(),
        }
    }
}

impl poem_openapi::types::Example for LogoutRequest {
    fn example() -> Self {
        Self {
            refresh_token: Some("q1X0f3mVd8yZ2wWc7sGkJb9aT4nR6pLe5uHiOoQxYzE".into()),
        }
    }
}

impl poem_openapi::types::Example for ChangePasswordRequest {
    fn example() -> Self {
        Self {
            current_password: "correct horse battery".into(),
            new_password: Text("a brand new passphrase".into()),
        }
    }
}

impl poem_openapi::types::Example for EmailRequest {
    fn example() -> Self {
        Self {
            email: Text("ann@example.com".into()),
        }
    }
}

impl poem_openapi::types::Example for TokenRequest {
    fn example() -> Self {
        Self {
            token: Text("Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5".into()),
        }
    }
}

impl poem_openapi::types::Example for ResetPasswordRequest {
    fn example() -> Self {
        Self {
            token: Text("Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5".into()),
            new_password: Text("a brand new passphrase".into()),
        }
    }
}

impl poem_openapi::types::Example for TokenPair {
    fn example() -> Self {
        Self {
            access_token: "eyJhbGciOiJIUzI1NiIsImtpZCI6ImhzMjU2LTFhMmIzYzRkNWU2ZjcwODEiLCJ0eXAiOiJKV1QifQ.e30.c2lnbmF0dXJl".into(),
            token_type: "Bearer".into(),
            expires_in: 900,
            refresh_token: "q1X0f3mVd8yZ2wWc7sGkJb9aT4nR6pLe5uHiOoQxYzE".into(),
        }
    }
}

impl poem_openapi::types::Example for SessionResponse {
    fn example() -> Self {
        let at = example_time();
        Self {
            id: Uuid::from_u128(0x0193_6a4e_0c1d_7000_8000_0000_0000_0001),
            created_at: Timestamp(at),
            last_used_at: Timestamp(at),
            expires_at: Timestamp(at + chrono::TimeDelta::days(30)),
            user_agent: Nullable(Some("Mozilla/5.0".into())),
            ip: Nullable(Some("203.0.113.7".into())),
            current: true,
        }
    }
}
