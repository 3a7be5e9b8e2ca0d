//! Prometheus metrics through OpenTelemetry meters and the Prometheus bridge.
//! Names and labels follow the contract (and OpenTelemetry's semantic
//! conventions, which the bridge renders as `http_server_request_duration_seconds`…).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    time::Duration,
};

use opentelemetry::{
    KeyValue,
    metrics::{
        Counter, Histogram, Meter, MeterProvider as _, ObservableGauge, ObservableUpDownCounter,
    },
};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use poem::http::Method;
use prometheus::{Registry, TextEncoder};

use crate::infra::db::{Database, PoolStats, StatementObserver};

/// Bucket boundaries (seconds) for a fast API: 0.5 ms to 10 s.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];

/// Gauge values with their optional `db.client.connection.state`.
type PoolReadings = Vec<(i64, Option<&'static str>)>;

/// Route label of requests that matched no route: one value, so that a
/// scanner cannot create a series per probed path.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Authentication events counted in `roster_auth_events_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthEvent {
    /// A login succeeded.
    LoginSuccess,
    /// A login failed (unknown email or wrong password).
    LoginFailure,
    /// An account was registered.
    Register,
    /// A refresh token was rotated.
    Refresh,
    /// A rotated refresh token was presented again (the session was revoked).
    RefreshReuse,
    /// A session was ended by its owner.
    Logout,
    /// A bearer token was refused.
    TokenRejected,
    /// A login was refused by the rate limit.
    RateLimited,
}

impl AuthEvent {
    const fn label(self) -> &'static str {
        match self {
            Self::LoginSuccess => "login_success",
            Self::LoginFailure => "login_failure",
            Self::Register => "register",
            Self::Refresh => "refresh",
            Self::RefreshReuse => "refresh_reuse",
            Self::Logout => "logout",
            Self::TokenRejected => "token_rejected",
            Self::RateLimited => "rate_limited",
        }
    }
}

/// What became of a delivery attempt, counted in `roster_mail_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailOutcome {
    /// The server accepted the mail.
    Sent,
    /// A temporary failure: it will be tried again.
    Retried,
    /// A permanent failure, or the last try: it will not be.
    Failed,
}

impl MailOutcome {
    const fn label(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Retried => "retried",
            Self::Failed => "failed",
        }
    }
}

/// The service's instruments and the registry they are rendered from.
pub struct Metrics {
    registry: Registry,
    provider: SdkMeterProvider,
    http_duration: Histogram<f64>,
    in_flight: Arc<InFlight>,
    db_duration: Histogram<f64>,
    auth_events: Counter<u64>,
    users_by_role: Arc<Mutex<Vec<(String, i64)>>>,
    mail: Counter<u64>,
    audit_events: Counter<u64>,
    mail_waiting: Arc<AtomicI64>,
    _gauges: Vec<ObservableGauge<i64>>,
    _in_flight: ObservableUpDownCounter<i64>,
}

/// Requests in flight by method label, read when metrics are collected:
/// two atomic additions a request, where the synchronous instrument hashed
/// the label set on the way in and again on the way out.
#[derive(Default)]
struct InFlight {
    count: [AtomicI64; METHOD_LABELS.len()],
    /// Whether a request with the label has come: only those are reported,
    /// as the synchronous instrument did.
    seen: [AtomicBool; METHOD_LABELS.len()],
}

/// A request counted in flight until this is dropped: when it finishes,
/// or when its future is dropped unfinished (a client gone, a shutdown's
/// grace period over), which would otherwise leave it counted for good.
#[must_use = "the request stops counting as in flight when this is dropped"]
pub struct InFlightRequest<'a> {
    in_flight: &'a InFlight,
    /// The method label's index in [`METHOD_LABELS`].
    slot: usize,
}

impl Drop for InFlightRequest<'_> {
    fn drop(&mut self) {
        self.in_flight.count[self.slot].fetch_sub(1, Ordering::Relaxed);
    }
}

impl InFlight {
    fn start(&self, method: &'static str) -> InFlightRequest<'_> {
        let slot = METHOD_LABELS
            .iter()
            .position(|label| *label == method)
            .unwrap_or(METHOD_LABELS.len() - 1);
        if !self.seen[slot].load(Ordering::Relaxed) {
            self.seen[slot].store(true, Ordering::Relaxed);
        }
        self.count[slot].fetch_add(1, Ordering::Relaxed);
        InFlightRequest {
            in_flight: self,
            slot,
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Builds the instruments; pool gauges read `db` at scrape time.
    ///
    /// # Errors
    ///
    /// When the Prometheus exporter cannot be built.
    pub fn new(db: &Database) -> anyhow::Result<Self> {
        let registry = Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .without_target_info()
            .scope_info_enabled(false)
            .build()?;
        let provider = SdkMeterProvider::builder().with_reader(exporter).build();
        let meter: Meter = provider.meter("roster");

        let pool = |db: &Database, pick: fn(PoolStats) -> PoolReadings| {
            let db = db.clone();
            move |observer: &dyn opentelemetry::metrics::AsyncInstrument<i64>| {
                for (value, state) in pick(db.pool_stats()) {
                    let mut attributes =
                        vec![KeyValue::new("db.client.connection.pool.name", "roster")];
                    if let Some(state) = state {
                        attributes.push(KeyValue::new("db.client.connection.state", state));
                    }
                    observer.observe(value, &attributes);
                }
            }
        };
        let in_flight = Arc::new(InFlight::default());
        let observed = Arc::clone(&in_flight);
        let in_flight_counter = meter
            .i64_observable_up_down_counter("http.server.active_requests")
            .with_description("HTTP requests in flight")
            .with_unit("{request}")
            .with_callback(move |observer| {
                for (i, label) in METHOD_LABELS.iter().enumerate() {
                    if observed.seen[i].load(Ordering::Relaxed) {
                        observer.observe(
                            observed.count[i].load(Ordering::Relaxed),
                            &[KeyValue::new("http.request.method", *label)],
                        );
                    }
                }
            })
            .build();
        let users_by_role = Arc::new(Mutex::new(Vec::<(String, i64)>::new()));
        let counts = Arc::clone(&users_by_role);
        let mail_waiting = Arc::new(AtomicI64::new(0));
        let waiting = Arc::clone(&mail_waiting);
        let gauges = vec![
            meter
                .i64_observable_gauge("roster.mail.outbox")
                .with_description("Mails waiting in the outbox, as the sender last counted")
                .with_unit("{mail}")
                .with_callback(move |observer| {
                    observer.observe(waiting.load(Ordering::Relaxed), &[]);
                })
                .build(),
            meter
                .i64_observable_gauge("db.client.connections.usage")
                .with_description("Connections in the pool, by state (used or idle)")
                .with_unit("{connection}")
                .with_callback(pool(db, |s| {
                    vec![
                        (i64::from(s.size.saturating_sub(s.idle)), Some("used")),
                        (i64::from(s.idle), Some("idle")),
                    ]
                }))
                .build(),
            meter
                .i64_observable_gauge("db.client.connections.max")
                .with_description("The pool's maximum number of connections")
                .with_unit("{connection}")
                .with_callback(pool(db, |s| vec![(i64::from(s.max), None)]))
                .build(),
            meter
                .i64_observable_gauge("roster.users")
                .with_description("Users by role, counted at scrape time")
                .with_unit("{user}")
                .with_callback(move |observer| {
                    let counts = counts
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    for (role, count) in counts.iter() {
                        observer.observe(*count, &[KeyValue::new("role", role.clone())]);
                    }
                })
                .build(),
        ];
        Ok(Self {
            http_duration: meter
                .f64_histogram("http.server.request.duration")
                .with_description("Duration of HTTP server requests")
                .with_unit("s")
                .with_boundaries(LATENCY_BUCKETS.to_vec())
                .build(),
            in_flight,
            db_duration: meter
                .f64_histogram("db.client.operation.duration")
                .with_description("Duration of database statements, by operation")
                .with_unit("s")
                .with_boundaries(LATENCY_BUCKETS.to_vec())
                .build(),
            auth_events: meter
                .u64_counter("roster.auth.events")
                .with_description("Authentication events, by event")
                .build(),
            users_by_role,
            mail: meter
                .u64_counter("roster.mail")
                .with_description("Mail delivery attempts, by template and outcome")
                .build(),
            audit_events: meter
                .u64_counter("roster.audit.events")
                .with_description("Audit events recorded, by event")
                .build(),
            mail_waiting,
            _gauges: gauges,
            _in_flight: in_flight_counter,
            registry,
            provider,
        })
    }

    /// A request started; `method` is a [`method_label`]. It counts as in
    /// flight until the returned guard is dropped.
    pub fn request_started(&self, method: &'static str) -> InFlightRequest<'_> {
        self.in_flight.start(method)
    }

    /// A request finished; `method` is a [`method_label`].
    pub fn request_finished(
        &self,
        method: &'static str,
        route: &Arc<str>,
        status: u16,
        elapsed: Duration,
    ) {
        self.http_duration.record(
            elapsed.as_secs_f64(),
            &[
                KeyValue::new("http.request.method", method),
                KeyValue::new("http.route", Arc::clone(route)),
                KeyValue::new("http.response.status_code", i64::from(status)),
            ],
        );
    }

    /// Counts an authentication event.
    pub fn auth_event(&self, event: AuthEvent) {
        self.auth_events
            .add(1, &[KeyValue::new("event", event.label())]);
    }

    /// Counts an audit event, once it is written.
    pub fn audit_event(&self, event: &'static str) {
        self.audit_events.add(1, &[KeyValue::new("event", event)]);
    }

    /// Counts a delivery attempt of a mail of `template`.
    pub fn mail(&self, template: &str, outcome: MailOutcome) {
        self.mail.add(
            1,
            &[
                KeyValue::new("template", template.to_owned()),
                KeyValue::new("outcome", outcome.label()),
            ],
        );
    }

    /// Sets how many mails wait in the outbox.
    pub fn set_mail_waiting(&self, waiting: u64) {
        self.mail_waiting.store(
            i64::try_from(waiting).unwrap_or(i64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Replaces the user counts that `roster_users` reports.
    pub fn set_user_counts(&self, counts: Vec<(String, i64)>) {
        *self
            .users_by_role
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = counts;
    }

    /// The text exposition.
    ///
    /// # Errors
    ///
    /// When encoding fails.
    pub fn render(&self) -> anyhow::Result<String> {
        Ok(TextEncoder::new().encode_to_string(&self.registry.gather())?)
    }
}

impl StatementObserver for Metrics {
    fn statement_finished(&self, system: &'static str, operation: &'static str, elapsed: Duration) {
        self.db_duration.record(
            elapsed.as_secs_f64(),
            &[
                KeyValue::new("db.system.name", system),
                KeyValue::new("db.operation.name", operation),
            ],
        );
    }
}

impl Drop for Metrics {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

/// The label of a request method HTTP does not define.
pub const OTHER_METHOD: &str = "_OTHER";

/// Every value [`method_label`] gives, `_OTHER` last.
const METHOD_LABELS: [&str; 10] = [
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    OTHER_METHOD,
];

/// A request method as the semantic conventions label it: one of the
/// methods HTTP defines, or `_OTHER`, so that a client inventing methods
/// cannot add label values (and series) without end.
#[must_use]
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => OTHER_METHOD,
    }
}

/// A poem route pattern (`/users/:id`) as an OpenAPI template (`/users/{id}`).
#[must_use]
pub fn route_template(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|segment| match segment.strip_prefix(':') {
            Some(name) => format!("{{{name}}}"),
            None => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_label_has_its_in_flight_slot() {
        for method in [
            "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "BREW",
        ] {
            let label = method_label(&Method::from_bytes(method.as_bytes()).unwrap());
            assert!(METHOD_LABELS.contains(&label), "{label}");
        }
        let in_flight = InFlight::default();
        let _patch = in_flight.start("PATCH");
        let _other = in_flight.start(OTHER_METHOD);
        drop(in_flight.start("PATCH"));
        let seen: Vec<_> = METHOD_LABELS
            .iter()
            .enumerate()
            .filter(|(i, _)| in_flight.seen[*i].load(Ordering::Relaxed))
            .map(|(i, label)| (*label, in_flight.count[i].load(Ordering::Relaxed)))
            .collect();
        assert_eq!(seen, [("PATCH", 1), (OTHER_METHOD, 1)]);
    }

    #[test]
    fn route_templates() {
        assert_eq!(
            route_template("/users/:id/sessions"),
            "/users/{id}/sessions"
        );
        assert_eq!(route_template("/health/live"), "/health/live");
    }
}
