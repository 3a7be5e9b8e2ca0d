//! The account pages that mailed links open: `/account/reset-password`,
//! `/account/verify-email`, `/account/confirm-email` and
//! `/account/accept-invite`. Server-rendered HTML that works without
//! JavaScript: `GET` shows a form (and never uses up the token, as mail
//! scanners open links), whose `POST` back to the page calls the same
//! service as the API and answers with HTML.

use std::sync::Arc;

use askama::Template as _;
use poem::{
    Endpoint, Request, Response, Result,
    http::{StatusCode, header},
    web::Form,
};
use serde::Deserialize;

use crate::{
    auth::{AuthError, AuthService},
    domain::{Password, limits},
    mail::PRODUCT,
};

/// The pages, by path.
pub const PATHS: [&str; 4] = [
    Page::ResetPassword.path(),
    Page::VerifyEmail.path(),
    Page::ConfirmEmail.path(),
    Page::AcceptInvite.path(),
];

/// One account page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// Sets a new password with a reset link.
    ResetPassword,
    /// Verifies the address.
    VerifyEmail,
    /// Applies an email change.
    ConfirmEmail,
    /// Sets an invited account's first password.
    AcceptInvite,
}

impl Page {
    /// The page's path.
    #[must_use]
    pub const fn path(self) -> &'static str {
        match self {
            Self::ResetPassword => "/account/reset-password",
            Self::VerifyEmail => "/account/verify-email",
            Self::ConfirmEmail => "/account/confirm-email",
            Self::AcceptInvite => "/account/accept-invite",
        }
    }

    const fn title(self) -> &'static str {
        match self {
            Self::ResetPassword => "Choose a new password",
            Self::VerifyEmail => "Confirm your email address",
            Self::ConfirmEmail => "Confirm your new email address",
            Self::AcceptInvite => "Accept your invitation",
        }
    }

    const fn intro(self) -> &'static str {
        match self {
            Self::ResetPassword => {
                "Choose the password you will sign in with from now on. Every session of the account is signed out."
            }
            Self::VerifyEmail => "Confirm that this address belongs to your account.",
            Self::ConfirmEmail => "Confirm that your account should use this address from now on.",
            Self::AcceptInvite => "Choose the password you will sign in with.",
        }
    }

    const fn button(self) -> &'static str {
        match self {
            Self::ResetPassword => "Set the password",
            Self::VerifyEmail | Self::ConfirmEmail => "Confirm",
            Self::AcceptInvite => "Set the password and accept",
        }
    }

    const fn done(self) -> &'static str {
        match self {
            Self::ResetPassword => "Your password was changed. You can sign in with it now.",
            Self::VerifyEmail => "Your email address is confirmed.",
            Self::ConfirmEmail => "Your account uses the new address from now on.",
            Self::AcceptInvite => "Your account is ready. You can sign in with your new password.",
        }
    }

    const fn sets_password(self) -> bool {
        matches!(self, Self::ResetPassword | Self::AcceptInvite)
    }
}

#[derive(askama::Template)]
#[template(path = "page.html")]
struct Html<'a> {
    title: &'a str,
    product: &'a str,
    problems: Vec<String>,
    done: Option<&'a str>,
    form: Option<FormView<'a>>,
}

struct FormView<'a> {
    intro: &'a str,
    action: &'a str,
    token: &'a str,
    password: bool,
    button: &'a str,
}

/// What a page's form posts.
#[derive(Debug, Deserialize)]
struct Posted {
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: Option<String>,
}

/// The query of a link.
#[derive(Debug, Deserialize)]
struct Query {
    #[serde(default)]
    token: String,
}

/// Serves one page.
pub struct PageEndpoint {
    /// Which page.
    pub page: Page,
    /// The account flows.
    pub auth: Arc<AuthService>,
}

impl Endpoint for PageEndpoint {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        let page = self.page;
        let ip = req
            .remote_addr()
            .as_socket_addr()
            .map(std::net::SocketAddr::ip);
        let (status, html) = match *req.method() {
            poem::http::Method::GET | poem::http::Method::HEAD => {
                let query = req.params::<Query>().unwrap_or(Query {
                    token: String::new(),
                });
                if query.token.is_empty() {
                    (StatusCode::BAD_REQUEST, broken_link(page))
                } else {
                    (StatusCode::OK, form(page, &query.token, Vec::new()))
                }
            }
            poem::http::Method::POST => {
                let (req, mut body) = req.split();
                let posted = match Form::<Posted>::from_request(&req, &mut body).await {
                    Ok(Form(posted)) => posted,
                    Err(_) => Posted {
                        token: String::new(),
                        new_password: None,
                    },
                };
                self.submit(page, posted, ip).await
            }
            _ => {
                return Ok(Response::builder()
                    .status(StatusCode::METHOD_NOT_ALLOWED)
                    .header(header::ALLOW, "GET, HEAD, POST")
                    .finish());
            }
        };
        Ok(secured(
            Response::builder()
                .status(status)
                .content_type("text/html; charset=utf-8"),
        )
        .body(html))
    }
}

use poem::FromRequest as _;

impl PageEndpoint {
    async fn submit(
        &self,
        page: Page,
        posted: Posted,
        ip: Option<std::net::IpAddr>,
    ) -> (StatusCode, String) {
        let token = posted.token.trim();
        if token.is_empty() || token.chars().count() > limits::LINK_TOKEN_MAX_CHARS {
            return (StatusCode::UNPROCESSABLE_ENTITY, broken_link(page));
        }
        let outcome = if page.sets_password() {
            let raw = posted.new_password.unwrap_or_default();
            let password = match Password::parse(&raw) {
                Ok(password) => password,
                Err(message) => {
                    return (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        form(page, token, vec![format!("The new password {message}.")]),
                    );
                }
            };
            self.auth
                .reset_password(token, &password, ip)
                .await
                .map(drop)
        } else if page == Page::VerifyEmail {
            self.auth.verify_email(token, ip).await.map(drop)
        } else {
            self.auth.confirm_email(token, ip).await.map(drop)
        };
        match outcome {
            Ok(()) => (
                StatusCode::OK,
                render(page, Vec::new(), Some(page.done()), None),
            ),
            Err(AuthError::OneTimeTokenInvalid) => {
                (StatusCode::UNPROCESSABLE_ENTITY, broken_link(page))
            }
            Err(AuthError::RateLimited(secs)) => (
                StatusCode::TOO_MANY_REQUESTS,
                form(
                    page,
                    token,
                    vec![format!(
                        "Too many attempts from your address: try again in {secs} seconds."
                    )],
                ),
            ),
            Err(AuthError::EmailTaken) => (
                StatusCode::CONFLICT,
                render(
                    page,
                    vec![
                        "Another account uses this address now: the change cannot be made.".into(),
                    ],
                    None,
                    None,
                ),
            ),
            Err(e) => {
                tracing::error!(error = %e, page = page.path(), "account page failed");
                let status = if matches!(
                    &e,
                    AuthError::Store(crate::store::StoreError::Unavailable(_))
                ) {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                };
                (
                    status,
                    form(
                        page,
                        token,
                        vec!["Something went wrong on our side: please try again shortly.".into()],
                    ),
                )
            }
        }
    }
}

fn form(page: Page, token: &str, problems: Vec<String>) -> String {
    render(
        page,
        problems,
        None,
        Some(FormView {
            intro: page.intro(),
            action: page.path(),
            token,
            password: page.sets_password(),
            button: page.button(),
        }),
    )
}

fn broken_link(page: Page) -> String {
    let retry = if page.sets_password() {
        "This link is invalid or has expired. Ask for a new one from the sign-in page (\"forgot password\") or from your administrator."
    } else {
        "This link is invalid or has expired. Ask for a new one from your account."
    };
    render(page, vec![retry.into()], None, None)
}

fn render(
    page: Page,
    problems: Vec<String>,
    done: Option<&str>,
    form: Option<FormView<'_>>,
) -> String {
    Html {
        title: page.title(),
        product: PRODUCT,
        problems,
        done,
        form,
    }
    .render()
    .unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot render an account page");
        "<!DOCTYPE html><title>Error</title><p>Something went wrong.</p>".to_owned()
    })
}

/// The headers every page carries: never cached (the token is in the URL),
/// never sent as a referrer, never framed, nothing but its own inline style.
fn secured(builder: poem::ResponseBuilder) -> poem::ResponseBuilder {
    builder
        .header(header::CACHE_CONTROL, "no-store")
        .header("Referrer-Policy", "no-referrer")
        .header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::X_FRAME_OPTIONS, "DENY")
}
