//! `/users`: the user directory. Admins manage everyone; a user reads and
//! writes only itself, and anyone else's record is a 404 to it.

use std::{fmt::Write as _, io::Write as _, sync::Arc};

use chrono::{DateTime, Utc};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Header, Path, Query},
    types::MaybeUndefined,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    ApiTags,
    auth::NoContent,
    body::{JsonBody, MergePatch},
    error::{ApiError, FieldError, Problems, declare, query_check},
    json::{Json, WriteJson, write_str},
    params::{
        Bounded, DateTimeText, EmailText, NameText, OneOf, PasswordText, Roles, Statuses, Text,
        UserSorts,
    },
    security::{BearerAuth, BearerToken},
    types::{Nullable, RoleName, StatusName, UserResponse},
};
use crate::{
    auth::{AuthService, Caller, service::Updated},
    domain::{
        AccountStatus, Role, User,
        account::{NewAccount, RecordEdit},
        limits::{
            PAGE_MAX, PAGE_MIN, PAGE_RANGE, PER_PAGE_DEFAULT, PER_PAGE_MAX, PER_PAGE_MIN,
            PER_PAGE_RANGE,
        },
        listing::{self, Cursor, Paging, Sort, UserFilter, UserQuery},
    },
    store::UserChange,
};

/// The `page` parameter.
type PageParam = Bounded<PAGE_MIN, PAGE_MAX, 1>;
/// The `per_page` parameter.
type PerPageParam = Bounded<PER_PAGE_MIN, PER_PAGE_MAX, PER_PAGE_DEFAULT>;

/// What every operation on one user by id can answer.
const ONE_USER: u32 = declare::UNAUTHORIZED | declare::NOT_FOUND | declare::SERVER;
/// What every write of a user record can answer besides.
const USER_WRITE: u32 = ONE_USER
    | declare::JSON_BODY
    | declare::FORBIDDEN
    | declare::CONFLICT
    | declare::PRECONDITION_FAILED
    | declare::RATE_LIMITED;

/// User endpoints.
#[derive(Debug)]
pub struct UsersApi {
    /// The account flows and the directory.
    pub auth: Arc<AuthService>,
}

/// A page of users.
#[derive(Debug, Object, Serialize)]
#[oai(rename_all = "snake_case", rename = "UserPage", example)]
pub struct UserPageResponse {
    /// The users of this page.
    pub items: Vec<UserResponse>,
    /// The page number (offset paging; echoed as given when a cursor is used).
    pub page: i64,
    /// Page size.
    pub per_page: i64,
    /// How many users match the filters in all.
    pub total: u64,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Nullable<String>,
}

impl WriteJson for UserPageResponse {
    /// serde's output, with each user written by [`UserResponse`]'s own
    /// [`WriteJson::write_json`].
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(b"{\"items\":[");
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            item.write_json(out)?;
        }
        let (page, per_page, total) = (self.page, self.per_page, self.total);
        write!(
            out,
            "],\"page\":{page},\"per_page\":{per_page},\"total\":{total},\"next_cursor\":"
        )
        .map_err(serde_json::Error::io)?;
        match &self.next_cursor.0 {
            Some(cursor) => write_str(out, cursor)?,
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
        Ok(())
    }
}

// The `role` fields below carry no doc comment of their own: poem-openapi
// would wrap the enum's `$ref` in an `allOf` to attach it, which generated
// clients refuse for an enum. The object's description says it instead.

/// A new user, created by an admin. `role` is `user` when omitted.
#[derive(Debug, Object, Deserialize)]
#[oai(rename_all = "snake_case", deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// Email address; stored lower-cased.
    pub email: EmailText,
    /// 8 to 128 characters; not one of the 10,000 most common passwords.
    /// Omitted, the account is `invited`: it is mailed a link to set its
    /// password, and cannot log in before.
    pub password: Option<PasswordText>,
    /// Optional display name.
    pub name: Option<NameText>,
    pub role: Option<RoleName>,
    /// Whether the admin vouches for the address; `false` when omitted.
    pub email_verified: Option<bool>,
}

/// A full replacement of a user's record. `role` and `status` (`active`
/// or `disabled`; disabling ends every session at once) are for admins
/// only (a non-admin sending either gets `403`); omitted, they stay as
/// they are.
#[derive(Debug, Object, Deserialize)]
#[oai(rename_all = "snake_case", deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct ReplaceUserRequest {
    /// Email address.
    pub email: EmailText,
    /// Display name; omitting it clears the name.
    pub name: Option<NameText>,
    pub role: Option<RoleName>,
    pub status: Option<StatusName>,
    /// Admins only. Omitted: unchanged, except that a new email starts
    /// unverified.
    pub email_verified: Option<bool>,
    /// Required when a non-admin changes its own email.
    pub current_password: Option<String>,
}

/// A JSON merge patch of a user's record: absent fields are unchanged, a
/// `null` name clears it. `role`, `status` (`active` or `disabled`) and
/// `email_verified` are for admins only.
#[derive(Debug, Object, Deserialize)]
#[oai(rename_all = "snake_case", deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct PatchUserRequest {
    /// New email address.
    #[serde(default)]
    pub email: MaybeUndefined<EmailText>,
    /// New display name, or `null` to clear it.
    #[serde(default)]
    pub name: MaybeUndefined<NameText>,
    #[serde(default)]
    pub role: MaybeUndefined<RoleName>,
    #[serde(default)]
    pub status: MaybeUndefined<StatusName>,
    /// Admins only; a new email starts unverified unless this says otherwise.
    #[serde(default)]
    pub email_verified: MaybeUndefined<bool>,
    /// Required when a non-admin changes its own email.
    #[serde(default)]
    pub current_password: MaybeUndefined<String>,
}

/// `GET /users` answers.
#[derive(Debug, ApiResponse)]
pub enum ListUsersResponse {
    /// A page of users.
    #[oai(status = 200)]
    Ok(
        Json<UserPageResponse>,
        /// RFC 8288 links: `rel="next"` when there is a next page, and
        /// `rel="prev"` for offset pages after the first.
        #[oai(header = "Link")]
        Option<String>,
    ),
}

/// `GET /users/me` answers.
#[derive(Debug, ApiResponse)]
pub enum CurrentUserResponse {
    /// The caller's own record.
    #[oai(status = 200)]
    Ok(Json<UserResponse>),
}

/// `PUT` and `PATCH /users/{id}` answers.
#[derive(Debug, ApiResponse)]
pub enum UpdatedUser {
    /// The user as it now is.
    #[oai(status = 200)]
    Ok(
        Json<UserResponse>,
        /// The new ETag.
        #[oai(header = "ETag")]
        String,
    ),
    /// A user's own email change waits for the new address: it was mailed
    /// a link that applies it. The user as it now is: every other field
    /// applied, the email unchanged.
    #[oai(status = 202)]
    EmailPending(
        Json<UserResponse>,
        /// The new ETag.
        #[oai(header = "ETag")]
        String,
    ),
}

/// `GET /users/{id}` answers.
#[derive(Debug, ApiResponse)]
pub enum UserWithEtag {
    /// The user.
    #[oai(status = 200)]
    Ok(
        Json<UserResponse>,
        /// Strong validator for `If-None-Match` and `If-Match`.
        #[oai(header = "ETag")]
        String,
    ),
    /// `If-None-Match` matched: the client's copy is current.
    #[oai(status = 304)]
    NotModified(
        /// The current ETag.
        #[oai(header = "ETag")]
        String,
    ),
}

/// `POST /users` answers.
#[derive(Debug, ApiResponse)]
pub enum CreateUserResponse {
    /// Created.
    #[oai(status = 201)]
    Created(
        Json<UserResponse>,
        /// `/users/{id}` of the new user.
        #[oai(header = "Location")]
        String,
        /// Its ETag.
        #[oai(header = "ETag")]
        String,
    ),
}

#[OpenApi(tag = "ApiTags::Users")]
impl UsersApi {
    /// Get my account
    ///
    /// The caller's own user record, as stored now.
    #[oai(path = "/users/me", method = "get", operation_id = "getCurrentUser")]
    async fn get_current_user(
        &self,
        auth: BearerAuth,
    ) -> Result<CurrentUserResponse, Problems<{ declare::UNAUTHORIZED | declare::SERVER }>> {
        Ok(CurrentUserResponse::Ok(Json(auth.0.user.into())))
    }

    /// List users (admin)
    ///
    /// Offset paging with `page`/`per_page`, or keyset paging with the
    /// opaque `cursor` from a previous `next_cursor` (then `page` is ignored
    /// and no deep offset is scanned). Filters combine with AND; text filters
    /// match literally (`%` and `_` are not wildcards). `403` for non-admins.
    #[oai(path = "/users", method = "get", operation_id = "listUsers")]
    #[allow(clippy::too_many_arguments)]
    async fn list_users(
        &self,
        auth: BearerToken,
        /// Page number, from 1 (offset paging).
        page: Query<Option<PageParam>>,
        /// Page size, 1-100 (default 20).
        per_page: Query<Option<PerPageParam>>,
        /// Opaque cursor from a previous `next_cursor`.
        cursor: Query<Option<String>>,
        /// `admin` or `user`.
        role: Query<Option<OneOf<Roles>>>,
        /// Case-insensitive substring of the email.
        email: Query<Option<String>>,
        /// Case-insensitive substring of the email or the name.
        q: Query<Option<String>>,
        /// Only users created strictly after this RFC 3339 time.
        created_after: Query<Option<DateTimeText>>,
        /// Only users created strictly before this RFC 3339 time.
        created_before: Query<Option<DateTimeText>>,
        /// `created_at`, `-created_at` (default), `email`, `-email`, `name` or `-name`.
        sort: Query<Option<OneOf<UserSorts>>>,
        /// `active`, `invited` or `disabled`.
        status: Query<Option<OneOf<Statuses>>>,
        /// `true` or `false`: only verified, or only unverified, addresses.
        email_verified: Query<Option<bool>>,
    ) -> Result<
        ListUsersResponse,
        Problems<
            {
                declare::BAD_REQUEST
                    | declare::UNAUTHORIZED
                    | declare::FORBIDDEN
                    | declare::VALIDATION
                    | declare::SERVER
            },
        >,
    > {
        let claims = &auth.0;
        let mut errors = Vec::new();
        let page_no = PageParam::value_or_default(page.0, "page", PAGE_RANGE)
            .map_err(|e| errors.push(e))
            .unwrap_or(PAGE_MIN);
        let size = PerPageParam::value_or_default(per_page.0, "per_page", PER_PAGE_RANGE)
            .map_err(|e| errors.push(e))
            .unwrap_or(PER_PAGE_DEFAULT);
        let sort_order = query_check(
            &mut errors,
            "sort",
            sort.0
                .as_ref()
                .map_or(Ok(Sort::default()), |s| Sort::parse(s.as_str())),
        );
        let role_filter = query_check(
            &mut errors,
            "role",
            role.0.as_ref().map(|r| Role::parse(r.as_str())).transpose(),
        );
        let status_filter = query_check(
            &mut errors,
            "status",
            status
                .0
                .as_ref()
                .map(|s| AccountStatus::parse(s.as_str()))
                .transpose(),
        );
        let email_filter = query_check(
            &mut errors,
            "email",
            listing::text_filter(email.0.as_deref()),
        );
        let q_filter = query_check(&mut errors, "q", listing::text_filter(q.0.as_deref()));
        let after = query_check(
            &mut errors,
            "created_after",
            listing::time_bound(created_after.0.as_ref().map(|t| t.0.as_str())),
        );
        let before = query_check(
            &mut errors,
            "created_before",
            listing::time_bound(created_before.0.as_ref().map(|t| t.0.as_str())),
        );
        let paging = sort_order.and_then(|sort| match cursor.0.as_deref() {
            Some(raw) => query_check(
                &mut errors,
                "cursor",
                Cursor::decode(raw, sort).map(Paging::After),
            ),
            None => Some(Paging::Offset(page_no.unsigned_abs())),
        });
        let (
            Some(sort),
            Some(role),
            Some(email),
            Some(q),
            Some(created_after),
            Some(created_before),
            Some(status),
            Some(paging),
            true,
        ) = (
            sort_order,
            role_filter,
            email_filter,
            q_filter,
            after,
            before,
            status_filter,
            paging,
            errors.is_empty(),
        )
        else {
            // The full check first: a non-admin gets 403 before any 422.
            auth.admin(&self.auth).await?;
            return Err(ApiError::Validation(errors).into());
        };
        let query = UserQuery {
            filter: UserFilter {
                role,
                email,
                q,
                created_after,
                created_before,
                status,
                email_verified: email_verified.0,
            },
            sort,
            per_page: size.unsigned_abs(),
            paging,
        };
        let result = self.auth.list_users(claims, &query).await?;
        let next_cursor = result.next.as_ref().map(Cursor::encode);
        let link = links(&query, page_no, size, next_cursor.as_deref());
        Ok(ListUsersResponse::Ok(
            Json(UserPageResponse {
                items: result.items.into_iter().map(Into::into).collect(),
                page: page_no,
                per_page: size,
                total: result.total,
                next_cursor: Nullable(next_cursor),
            }),
            link,
        ))
    }

    /// Get a user
    ///
    /// Admins read anyone; a user reads only itself (anyone else's id is a
    /// `404`, whether or not it exists). Carries an `ETag`; with a matching
    /// `If-None-Match` the answer is `304`.
    #[oai(path = "/users/:id", method = "get", operation_id = "getUser")]
    async fn get_user(
        &self,
        auth: BearerToken,
        id: Path<Uuid>,
        /// ETags of the client's copies.
        #[oai(name = "If-None-Match")]
        if_none_match: Header<Option<String>>,
    ) -> Result<UserWithEtag, Problems<ONE_USER>> {
        // The hot read: the bearer check and the read are one statement.
        let (caller, user) = self.auth.authenticate_and_get(&auth.0, id.0).await?;
        let user = user
            .filter(|_| caller.may_manage(id.0))
            .ok_or(ApiError::NotFound)?;
        let tag = etag(&user);
        if if_none_match
            .0
            .as_deref()
            .is_some_and(|h| etag_listed(h, &tag, true))
        {
            return Ok(UserWithEtag::NotModified(tag));
        }
        Ok(UserWithEtag::Ok(Json(user.into()), tag))
    }

    /// Create a user (admin)
    ///
    /// Any role; `user` by default. `409` when the email is taken.
    #[oai(path = "/users", method = "post", operation_id = "createUser")]
    async fn create_user(
        &self,
        auth: BearerAuth,
        body: JsonBody<CreateUserRequest>,
    ) -> Result<
        CreateUserResponse,
        Problems<
            {
                declare::JSON_BODY
                    | declare::UNAUTHORIZED
                    | declare::FORBIDDEN
                    | declare::CONFLICT
                    | declare::SERVER
            },
        >,
    > {
        let admin = auth.admin()?;
        let body = body.0;
        let (email, password, name) = match &body.password {
            Some(password) => {
                let NewAccount {
                    email,
                    password,
                    name,
                } = NewAccount::parse(
                    body.email.as_str(),
                    password.as_str(),
                    body.name.as_ref().map(Text::as_str),
                )
                .map_err(ApiError::from)?;
                (email, Some(password), name)
            }
            None => {
                let RecordEdit { email, name } = RecordEdit::parse(
                    Some(body.email.as_str()),
                    Some(body.name.as_ref().map(Text::as_str)),
                )?;
                let email = email.ok_or_else(|| ApiError::invalid("email", "is required"))?;
                (email, None, name.flatten())
            }
        };
        let role = body.role.map_or(Role::User, Into::into);
        let user = self
            .auth
            .create_user(
                &admin,
                &email,
                password.as_ref(),
                name.as_ref(),
                role,
                body.email_verified.unwrap_or(false),
            )
            .await?;
        let tag = etag(&user);
        Ok(CreateUserResponse::Created(
            Json(user.clone().into()),
            format!("/users/{}", user.id),
            tag,
        ))
    }

    /// Replace a user
    ///
    /// Full replacement: a missing `name` clears it. Admins may set `role`; a
    /// non-admin sending `role` gets `403`, and must send `current_password`
    /// to change its own email (missing: `422`, wrong: `403`). With
    /// `If-Match`, `412` unless it matches the current `ETag`.
    #[oai(path = "/users/:id", method = "put", operation_id = "replaceUser")]
    async fn replace_user(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// Apply only if this is the current `ETag`.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
        body: JsonBody<ReplaceUserRequest>,
    ) -> Result<UpdatedUser, Problems<USER_WRITE>> {
        let body = body.0;
        let edit = Edit {
            email: Some(body.email.0),
            name: Some(body.name.map(|n| n.0)),
            role: body.role,
            status: body.status,
            email_verified: body.email_verified,
            current_password: body.current_password,
        };
        Ok(self
            .apply(&auth.0, id.0, if_match.0.as_deref(), edit)
            .await?)
    }

    /// Update a user
    ///
    /// JSON merge patch (`application/merge-patch+json` or
    /// `application/json`): absent fields stay, a `null` name is cleared.
    /// Same rules as replace for `role`, `current_password` and `If-Match`.
    #[oai(path = "/users/:id", method = "patch", operation_id = "updateUser")]
    async fn update_user(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// Apply only if this is the current `ETag`.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
        body: MergePatch<PatchUserRequest>,
    ) -> Result<UpdatedUser, Problems<USER_WRITE>> {
        let body = body.0;
        let mut errors = Vec::new();
        let email = not_null(&mut errors, "email", body.email).map(|e| e.0);
        let role = not_null(&mut errors, "role", body.role);
        let status = not_null(&mut errors, "status", body.status);
        let email_verified = not_null(&mut errors, "email_verified", body.email_verified);
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors).into());
        }
        let edit = Edit {
            email,
            name: match body.name {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(name) => Some(Some(name.0)),
            },
            role,
            status,
            email_verified,
            current_password: body.current_password.take(),
        };
        Ok(self
            .apply(&auth.0, id.0, if_match.0.as_deref(), edit)
            .await?)
    }

    /// Delete a user
    ///
    /// Admins delete anyone, users themselves; the user's sessions end with
    /// it. Deleting the last admin is `409`. With `If-Match`, `412` unless it
    /// matches the current `ETag`.
    #[oai(path = "/users/:id", method = "delete", operation_id = "deleteUser")]
    async fn delete_user(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// Delete only if this is the current `ETag`.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
    ) -> Result<NoContent, Problems<{ ONE_USER | declare::CONFLICT | declare::PRECONDITION_FAILED }>>
    {
        let expected = self
            .precondition(&auth.0, id.0, if_match.0.as_deref())
            .await?;
        self.auth.delete_user(&auth.0, id.0, expected).await?;
        Ok(NoContent::Done)
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
    ) -> Result<NoContent, Problems<{ ONE_USER | declare::FORBIDDEN }>> {
        let admin = auth.admin()?;
        self.auth.end_user_sessions(&admin, id.0).await?;
        Ok(NoContent::Done)
    }

    /// Mail a user a password reset link (admin)
    ///
    /// The user is mailed a link to `/account/reset-password`; the admin
    /// never learns or sets the password this way. `403` for non-admins.
    #[oai(
        path = "/users/:id/password-reset",
        method = "post",
        operation_id = "startPasswordReset"
    )]
    async fn start_password_reset(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<ResetStarted, Problems<{ ONE_USER | declare::FORBIDDEN }>> {
        let admin = auth.admin()?;
        self.auth.start_password_reset(&admin, id.0).await?;
        Ok(ResetStarted::Accepted)
    }
}

/// `POST /users/{id}/password-reset` answers.
#[derive(Debug, ApiResponse)]
pub enum ResetStarted {
    /// The reset link was queued for the user's address.
    #[oai(status = 202)]
    Accepted,
}

/// A requested change, before validation.
struct Edit {
    email: Option<String>,
    name: Option<Option<String>>,
    role: Option<RoleName>,
    status: Option<StatusName>,
    email_verified: Option<bool>,
    current_password: Option<String>,
}

impl UsersApi {
    /// The `updated_at` an `If-Match` header pins, after checking it against
    /// the current ETag (`412` on mismatch, `404` when the user is gone).
    async fn precondition(
        &self,
        caller: &Caller,
        id: Uuid,
        if_match: Option<&str>,
    ) -> Result<Option<DateTime<Utc>>, ApiError> {
        let Some(header) = if_match else {
            return Ok(None);
        };
        let current = self.auth.get_user(caller, id).await?;
        if etag_listed(header, &etag(&current), false) {
            Ok(Some(current.updated_at))
        } else {
            Err(ApiError::PreconditionFailed)
        }
    }

    async fn apply(
        &self,
        caller: &Caller,
        id: Uuid,
        if_match: Option<&str>,
        edit: Edit,
    ) -> Result<UpdatedUser, ApiError> {
        if !caller.may_manage(id) {
            return Err(ApiError::NotFound);
        }
        // A non-admin sending an admin's field is refused before its fields
        // are checked.
        if edit.role.is_some() || edit.status.is_some() || edit.email_verified.is_some() {
            caller
                .may_set_role()
                .map_err(crate::auth::AuthError::from)?;
        }
        if edit.status == Some(StatusName::Invited) {
            return Err(ApiError::invalid(
                "status",
                "must be `active` or `disabled`: an invitation is made by creating a user",
            ));
        }
        let RecordEdit { email, name } = RecordEdit::parse(
            edit.email.as_deref(),
            edit.name.as_ref().map(Option::as_deref),
        )?;
        let expected = self.precondition(caller, id, if_match).await?;
        let change = UserChange {
            email,
            name,
            role: edit.role.map(Into::into),
            status: edit.status.map(Into::into),
            email_verified: edit.email_verified,
            mails: Vec::new(),
            audit: Vec::new(),
        };
        let updated = self
            .auth
            .update_user(
                caller,
                id,
                change,
                edit.current_password.as_deref(),
                expected,
            )
            .await?;
        Ok(match updated {
            Updated::Applied(user) => {
                let tag = etag(&user);
                UpdatedUser::Ok(Json(user.into()), tag)
            }
            Updated::EmailPending(user) => {
                let tag = etag(&user);
                UpdatedUser::EmailPending(Json(user.into()), tag)
            }
        })
    }
}

/// A merge patch's field that may be absent but not `null`.
fn not_null<T>(errors: &mut Vec<FieldError>, field: &str, value: MaybeUndefined<T>) -> Option<T> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => {
            errors.push(FieldError::body(field, "must not be null"));
            None
        }
        MaybeUndefined::Value(value) => Some(value),
    }
}

/// A strong ETag from the id and `updated_at` (which moves on every change).
fn etag(user: &User) -> String {
    format!(
        "\"{}-{}\"",
        user.id.simple(),
        user.updated_at.timestamp_micros()
    )
}

/// Whether an `If-Match`/`If-None-Match` list names `tag` (or is `*`).
/// `If-None-Match` compares weakly (a `W/` prefix is ignored), `If-Match` strongly.
fn etag_listed(header: &str, tag: &str, weak: bool) -> bool {
    header.split(',').map(str::trim).any(|candidate| {
        let candidate = if weak {
            candidate.strip_prefix("W/").unwrap_or(candidate)
        } else {
            candidate
        };
        candidate == "*" || candidate == tag
    })
}

/// The `Link` header of a list page.
fn links(query: &UserQuery, page: i64, per_page: i64, next_cursor: Option<&str>) -> Option<String> {
    let mut base = format!("/users?per_page={per_page}&sort={}", query.sort.as_str());
    let filter = &query.filter;
    let params = [
        ("role", filter.role.map(|r| r.as_str().to_owned())),
        ("status", filter.status.map(|s| s.as_str().to_owned())),
        (
            "email_verified",
            filter.email_verified.map(|v| v.to_string()),
        ),
        ("email", filter.email.clone()),
        ("q", filter.q.clone()),
        (
            "created_after",
            filter
                .created_after
                .map(crate::domain::listing::format_time),
        ),
        (
            "created_before",
            filter
                .created_before
                .map(crate::domain::listing::format_time),
        ),
    ];
    for (name, value) in params {
        if let Some(value) = value {
            let _ = write!(base, "&{name}={}", percent_encode(&value));
        }
    }
    let mut links = Vec::new();
    if let Some(next) = next_cursor {
        let target = match query.paging {
            Paging::Offset(_) => format!("{base}&page={}", page + 1),
            Paging::After(_) => format!("{base}&cursor={next}"),
        };
        links.push(format!("<{target}>; rel=\"next\""));
    }
    if matches!(query.paging, Paging::Offset(_)) && page > 1 {
        links.push(format!("<{base}&page={}>; rel=\"prev\"", page - 1));
    }
    (!links.is_empty()).then(|| links.join(", "))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(value: &str) -> String {
    value.bytes().fold(String::new(), |mut out, b| {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
        out
    })
}

impl poem_openapi::types::Example for CreateUserRequest {
    fn example() -> Self {
        Self {
            email: Text("bob@example.com".into()),
            password: Some(Text("a long passphrase".into())),
            name: Some(Text("Bob".into())),
            role: Some(RoleName::Admin),
            email_verified: Some(true),
        }
    }
}

impl poem_openapi::types::Example for ReplaceUserRequest {
    fn example() -> Self {
        Self {
            email: Text("ann@example.com".into()),
            name: Some(Text("Ann Lee".into())),
            role: None,
            status: None,
            email_verified: None,
            current_password: None,
        }
    }
}

impl poem_openapi::types::Example for PatchUserRequest {
    fn example() -> Self {
        Self {
            email: MaybeUndefined::Undefined,
            name: MaybeUndefined::Value(Text("Ann Lee".into())),
            role: MaybeUndefined::Undefined,
            status: MaybeUndefined::Undefined,
            email_verified: MaybeUndefined::Undefined,
            current_password: MaybeUndefined::Undefined,
        }
    }
}

impl poem_openapi::types::Example for UserPageResponse {
    fn example() -> Self {
        Self {
            items: vec![UserResponse::example()],
            page: 1,
            per_page: 20,
            total: 1,
            next_cursor: Nullable(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_lists() {
        let tag = "\"abc-1\"";
        assert!(etag_listed("\"abc-1\"", tag, false));
        assert!(etag_listed("\"x\", \"abc-1\"", tag, false));
        assert!(etag_listed("*", tag, false));
        assert!(
            !etag_listed("W/\"abc-1\"", tag, false),
            "If-Match is strong"
        );
        assert!(
            etag_listed("W/\"abc-1\"", tag, true),
            "If-None-Match is weak"
        );
        assert!(!etag_listed("\"abc-2\"", tag, true));
    }

    #[test]
    fn percent_encoding_keeps_unreserved_only() {
        assert_eq!(percent_encode("a b%_&ü"), "a%20b%25_%26%C3%BC");
    }
}
