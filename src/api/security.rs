//! The bearer security scheme: every authenticated operation takes a
//! `BearerAuth`, which exists only for a valid token of a live session and
//! carries the caller's *current* user row. Admin-only operations turn it
//! into the [`Admin`] capability with [`BearerAuth::admin`] (the role itself
//! is decided in `auth::access`) and hand that to the service.

use std::sync::Arc;

use poem::Request;
use poem_openapi::{SecurityScheme, auth::Bearer};

use super::error::ApiError;
use crate::auth::{Admin, AuthService, Caller, jwt::Claims};

/// `Authorization: Bearer <access_token>` from `POST /auth/login`.
#[derive(Debug, SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_bearer")]
pub struct BearerAuth(pub Caller);

/// The same scheme, checked in two halves: the token here, and its session
/// and current role by the handler, fused with the handler's own read into
/// one statement ([`AuthService::authenticate_and_get`],
/// [`AuthService::list_users`]). Only for handlers that finish
/// the check that way; everything else takes [`BearerAuth`].
#[derive(Debug, SecurityScheme)]
#[oai(
    rename = "BearerAuth",
    ty = "bearer",
    bearer_format = "JWT",
    checker = "verify_bearer"
)]
pub struct BearerToken(pub Claims);

impl BearerAuth {
    /// The caller as an admin.
    ///
    /// # Errors
    ///
    /// 403 when the caller's current role is not `admin`.
    pub fn admin(self) -> Result<Admin, ApiError> {
        Ok(self.0.admin().map_err(crate::auth::AuthError::from)?)
    }
}

impl BearerToken {
    /// The whole check at once, as [`BearerAuth`] makes it, then the admin
    /// role: for the paths of a handler that cannot fuse the check.
    ///
    /// # Errors
    ///
    /// 401 when the token's session is not live; 403 when the caller's
    /// current role is not `admin`.
    pub async fn admin(&self, auth: &AuthService) -> Result<Admin, ApiError> {
        BearerAuth(auth.authenticate_claims(&self.0).await?).admin()
    }
}

fn auth_service(req: &Request) -> Result<&Arc<AuthService>, ApiError> {
    req.data::<Arc<AuthService>>()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("AuthService missing from request data")))
}

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<Caller> {
    let caller = auth_service(req)?
        .authenticate(&bearer.token)
        .await
        .map_err(ApiError::from)?;
    Ok(caller)
}

#[allow(clippy::unused_async)] // poem-openapi awaits every checker
async fn verify_bearer(req: &Request, bearer: Bearer) -> poem::Result<Claims> {
    Ok(auth_service(req)?
        .verify_token(&bearer.token)
        .map_err(ApiError::from)?)
}
