//! `/users`: the user directory.

use std::sync::Arc;

use poem_openapi::{OpenApi, param::Path, payload::Json};
use uuid::Uuid;

use super::{ApiTags, auth::NoContent, error::ApiError, security::BearerAuth, types::UserResponse};
use crate::auth::AuthService;

/// User endpoints.
#[derive(Debug)]
pub struct UsersApi {
    /// The account flows.
    pub auth: Arc<AuthService>,
}

#[OpenApi(tag = "ApiTags::Users")]
impl UsersApi {
    /// Get my account
    ///
    /// The caller's own user record, as stored now.
    #[oai(path = "/users/me", method = "get", operation_id = "getCurrentUser")]
    async fn get_current_user(&self, auth: BearerAuth) -> Result<Json<UserResponse>, ApiError> {
        Ok(Json(auth.0.user.into()))
    }

    /// End a user's sessions (admin)
    ///
    /// Logs the user out everywhere: every session and access token of that
    /// user stops working at once. `403` for non-admins.
    #[oai(
        path = "/users/:id/sessions",
        method = "delete",
        operation_id = "endUserSessions"
    )]
    async fn end_user_sessions(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<NoContent, ApiError> {
        auth.admin()?;
        self.auth.end_sessions(id.0, None).await?;
        Ok(NoContent::Done)
    }
}
