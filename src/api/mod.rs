//! The HTTP API: one `#[OpenApi]` struct per resource, combined into one
//! service with its document, Swagger UI and the request-context layer.

pub mod audit;
pub mod auth;
pub mod body;
pub mod document;
pub mod error;
pub mod health;
pub mod json;
pub mod middleware;
pub mod pages;
pub mod params;
pub mod security;
pub mod types;
pub mod users;

use std::{sync::Arc, time::Instant};

use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::{
    ContactObject, ExternalDocumentObject, LicenseObject, OpenApiService, ServerObject, Tags,
};

use crate::{auth::AuthService, config::Config, infra::db::Database, infra::metrics::Metrics};

/// The tags that group operations in the document.
#[derive(Debug, Tags)]
pub enum ApiTags {
    /// Registration, login, tokens and sessions.
    Auth,
    /// The user directory.
    Users,
    /// Health, metrics and documentation.
    Operations,
}

/// Everything an API struct may need, built once at start-up.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database pool.
    pub db: Database,
    /// The validated configuration.
    pub config: Config,
    /// When the service started.
    pub started: Instant,
    /// The account flows.
    pub auth: Arc<AuthService>,
    /// Metrics, when `ROSTER_METRICS` is on.
    pub metrics: Option<Arc<Metrics>>,
}

/// Every operation of the service.
pub type Apis = (
    health::HealthApi,
    auth::AuthApi,
    users::UsersApi,
    audit::AuditApi,
);

const DESCRIPTION: &str = "Roster is a user directory and authentication service: accounts, \
login with JWT, roles and user administration.\n\nEvery error is an RFC 9457 \
`application/problem+json` document (see the `Problem` schema) carrying the request's \
`X-Request-Id`. Authenticate with `Authorization: Bearer <access_token>` from `POST /auth/login`.";

/// The OpenAPI service: every operation, with the document's metadata.
#[must_use]
pub fn openapi(state: &AppState) -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            health::HealthApi {
                db: state.db.clone(),
                started: state.started,
            },
            auth::AuthApi {
                auth: Arc::clone(&state.auth),
            },
            users::UsersApi {
                auth: Arc::clone(&state.auth),
            },
            audit::AuditApi {
                auth: Arc::clone(&state.auth),
            },
        ),
        "Roster",
        env!("CARGO_PKG_VERSION"),
    )
    .description(DESCRIPTION)
    .contact(
        ContactObject::new()
            .name("Roster maintainers")
            .url("https://roster.dev"),
    )
    .license(LicenseObject::new("MIT OR Apache-2.0"))
    .external_document(ExternalDocumentObject::new("https://roster.dev/docs"))
    .server(ServerObject::new("/").description("This server"))
}

/// The whole application endpoint.
#[must_use]
pub fn app(state: &AppState) -> impl Endpoint + use<> {
    let api = openapi(state);
    let generated = api.spec();
    const GET: &[&str] = &["GET"];
    let mut plain: Vec<(&str, &[&str])> = pages::PATHS
        .iter()
        .map(|p| (*p, &["GET", "POST"][..]))
        .collect();
    if state.config.docs {
        plain.extend([("/openapi.json", GET), ("/docs", GET)]);
    }
    if state.metrics.is_some() {
        plain.push(("/metrics", GET));
    }
    let routes = Arc::new(middleware::RequestContext::route_names(&generated, &plain));
    let mut route = Route::new();
    if state.config.docs {
        let served = document::patch(&generated);
        // Swagger UI embeds the document: give it the corrected one too.
        let html = api.swagger_ui_html().replacen(&generated, &served, 1);
        route = route
            .at(
                "/openapi.json",
                poem::get(poem::endpoint::make_sync(move |_| {
                    poem::Response::builder()
                        .content_type(json::SERVED_CONTENT_TYPE)
                        .body(served.clone())
                })),
            )
            .at(
                "/docs",
                poem::get(poem::endpoint::make_sync(move |_| {
                    poem::web::Html(html.clone())
                })),
            );
    }
    if let Some(metrics) = &state.metrics {
        route = route.at(
            "/metrics",
            poem::get(health::MetricsEndpoint {
                metrics: Arc::clone(metrics),
                auth: Arc::clone(&state.auth),
            }),
        );
    }
    for page in [
        pages::Page::ResetPassword,
        pages::Page::VerifyEmail,
        pages::Page::ConfirmEmail,
        pages::Page::AcceptInvite,
    ] {
        route = route.at(
            page.path(),
            pages::PageEndpoint {
                page,
                auth: Arc::clone(&state.auth),
            },
        );
    }
    route
        .nest("/", api)
        .data(body::BodyLimit {
            bytes: state.config.max_body_bytes,
            timeout: state.config.client_timeouts.body,
        })
        .data(Arc::clone(&state.auth))
        .with(middleware::RequestContext {
            max_body_bytes: state.config.max_body_bytes,
            metrics: state.metrics.clone(),
            routes,
        })
}
