//! `/health/live`, `/health/ready` and `/health`: what orchestrators and operators poll.

use std::{sync::Arc, time::Instant};

use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Serialize;

use super::{
    ApiTags,
    error::{ApiError, Problems, declare},
    json::{Json, WriteJson},
    types::Nullable,
};
use crate::{auth::AuthService, infra::db::Database, infra::metrics::Metrics};

/// Health endpoints.
#[derive(Debug)]
pub struct HealthApi {
    /// The pool to check.
    pub db: Database,
    /// When the process started serving, for `uptime_seconds`.
    pub started: Instant,
}

/// A one-word status.
#[derive(Debug, Object, Serialize)]
#[oai(rename_all = "snake_case")]
pub struct Status {
    /// Always `ok`.
    pub status: String,
}

impl WriteJson for Status {}

impl Status {
    fn ok() -> Json<Self> {
        Json(Self {
            status: "ok".into(),
        })
    }
}

/// The health document.
#[derive(Debug, Object, Serialize)]
#[oai(rename_all = "snake_case")]
pub struct HealthReport {
    /// `ok` or `unavailable`.
    pub status: String,
    /// The running version of Roster.
    pub version: String,
    /// Seconds since the service started.
    pub uptime_seconds: u64,
    /// Individual checks.
    pub checks: HealthChecks,
}

impl WriteJson for HealthReport {}

/// Individual checks of the health document.
#[derive(Debug, Object, Serialize)]
#[oai(rename_all = "snake_case")]
pub struct HealthChecks {
    /// The database check.
    pub database: DatabaseCheck,
}

/// Database reachability, latency and pool occupancy.
#[derive(Debug, Object, Serialize)]
#[oai(rename_all = "snake_case")]
pub struct DatabaseCheck {
    /// `ok` or `unavailable`.
    pub status: String,
    /// Round-trip time of `SELECT 1`, milliseconds; `null` when it failed.
    pub latency_ms: Nullable<f64>,
    /// Pool occupancy.
    pub pool: PoolFigures,
}

/// Pool occupancy.
#[derive(Debug, Object, Serialize)]
#[oai(rename_all = "snake_case")]
pub struct PoolFigures {
    /// Open connections.
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// Configured maximum.
    pub max: u32,
}

/// `GET /health/live` and `GET /health/ready` answers.
#[derive(Debug, ApiResponse)]
pub enum StatusResponse {
    /// `{"status":"ok"}`.
    #[oai(status = 200)]
    Ok(Json<Status>),
}

/// `GET /health` answers.
#[derive(Debug, ApiResponse)]
pub enum HealthResponse {
    /// Everything works.
    #[oai(status = 200)]
    Ok(Json<HealthReport>),
    /// The database does not answer or migrations are pending; still a health
    /// document, not a problem.
    #[oai(status = 503)]
    Unavailable(Json<HealthReport>),
}

/// `GET /metrics`: the Prometheus text exposition. A plain endpoint rather
/// than an OpenAPI operation, so that `ROSTER_METRICS=false` removes it.
#[derive(Debug)]
pub struct MetricsEndpoint {
    /// The instruments.
    pub metrics: Arc<Metrics>,
    /// For `roster_users`, counted at scrape time.
    pub auth: Arc<AuthService>,
}

impl poem::Endpoint for MetricsEndpoint {
    type Output = poem::Response;

    async fn call(&self, _req: poem::Request) -> poem::Result<Self::Output> {
        // A database that does not answer must not hide the other metrics.
        match self.auth.count_users_by_role().await {
            Ok(counts) => self.metrics.set_user_counts(counts),
            Err(e) => tracing::warn!(error = %e, "counting users for metrics failed"),
        }
        let body = self.metrics.render().map_err(ApiError::Internal)?;
        Ok(poem::Response::builder()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(body))
    }
}

#[OpenApi(tag = "ApiTags::Operations")]
impl HealthApi {
    /// Liveness
    ///
    /// `200 {"status":"ok"}` while the process serves requests. Touches nothing else.
    #[oai(path = "/health/live", method = "get", operation_id = "getLiveness")]
    async fn get_liveness(&self) -> Result<StatusResponse, Problems<{ declare::INTERNAL }>> {
        Ok(StatusResponse::Ok(Status::ok()))
    }

    /// Readiness
    ///
    /// `200 {"status":"ok"}` when the database answers and every migration is
    /// applied; otherwise a `503` problem.
    #[oai(path = "/health/ready", method = "get", operation_id = "getReadiness")]
    async fn get_readiness(&self) -> Result<StatusResponse, Problems<{ declare::SERVER }>> {
        self.db.check_ready().await.map_err(ApiError::Unavailable)?;
        Ok(StatusResponse::Ok(Status::ok()))
    }

    /// Health report
    ///
    /// Version, uptime, database latency and pool figures. `503` with the same
    /// document when the database check fails.
    #[oai(path = "/health", method = "get", operation_id = "getHealth")]
    async fn get_health(&self) -> Result<HealthResponse, Problems<{ declare::INTERNAL }>> {
        let check = self.db.check_ready().await;
        if let Err(e) = &check {
            tracing::warn!(error = ?e, "health check failed");
        }
        let stats = self.db.pool_stats();
        let status = if check.is_ok() { "ok" } else { "unavailable" };
        let report = HealthReport {
            status: status.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_seconds: self.started.elapsed().as_secs(),
            checks: HealthChecks {
                database: DatabaseCheck {
                    status: status.into(),
                    latency_ms: Nullable(check.as_ref().ok().map(|d| d.as_secs_f64() * 1000.0)),
                    pool: PoolFigures {
                        size: stats.size,
                        idle: stats.idle,
                        max: stats.max,
                    },
                },
            },
        };
        Ok(if check.is_ok() {
            HealthResponse::Ok(Json(report))
        } else {
            HealthResponse::Unavailable(Json(report))
        })
    }
}
