//! `/metrics`: counts per route template and status, pool and user gauges,
//! auth events, parsed with a Prometheus text parser.

use std::collections::HashMap;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, backends};

struct Scrape(prom_text_format_parser::Scrape);

impl Scrape {
    async fn from(app: &TestApp) -> Self {
        let response = app.get("/metrics").await;
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        let text = response.text().await.unwrap();
        Self(prom_text_format_parser::Scrape::parse(&text).unwrap())
    }

    /// The sum of `name` over samples whose labels include `labels` (for a
    /// histogram: its `_count`).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        use prom_text_format_parser::{Type, ValueType};
        let metric = self.0.metrics.iter().find(|m| m.name == name)?;
        let wanted = if metric.kind == Type::Histogram {
            ValueType::Count
        } else {
            ValueType::Sample
        };
        metric
            .samples
            .iter()
            .filter(|s| s.value.value_type == wanted)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|l| l.key == *k && l.value == *v))
            })
            .map(|s| s.value.value.as_f64())
            .reduce(|a, b| a + b)
    }

    fn labels(&self, key: &str) -> Vec<String> {
        self.0
            .metrics
            .iter()
            .flat_map(|m| m.samples.iter())
            .flat_map(|s| s.labels.iter())
            .filter(|l| l.key == key)
            .map(|l| l.value.clone())
            .collect()
    }

    fn requests(&self, method: &str, route: &str, status: &str) -> f64 {
        let labels = [
            ("http_request_method", method),
            ("http_route", route),
            ("http_response_status_code", status),
        ];
        self.value("http_server_request_duration_seconds", &labels)
            .unwrap_or(0.0)
    }
}

#[tokio::test]
async fn request_counts_per_route_template_and_status_match_what_was_sent() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let (ann, tokens) = app.signed_up("ann@x.io").await;
        let path = format!("/users/{}", ann["id"].as_str().unwrap());
        for _ in 0..3 {
            assert_eq!(
                app.get_auth(&path, &tokens.access).await.status(),
                StatusCode::OK
            );
        }
        app.get_auth(
            "/users/01930000-0000-7000-8000-000000000000",
            &tokens.access,
        )
        .await;
        for probe in ["/wp-admin", "/.env", "/a/b/c"] {
            app.get(probe).await;
        }
        app.request(Method::DELETE, "/health/live")
            .send()
            .await
            .unwrap();
        for invented in ["BREW", "WHEN"] {
            app.request(
                Method::from_bytes(invented.as_bytes()).unwrap(),
                "/health/live",
            )
            .send()
            .await
            .unwrap();
        }
        app.try_login("ann@x.io", "wrong password!").await;
        let scrape = Scrape::from(&app).await;

        assert_eq!(
            scrape.requests("GET", "/users/{id}", "200"),
            3.0,
            "{backend:?}"
        );
        assert_eq!(scrape.requests("GET", "/users/{id}", "404"), 1.0);
        assert_eq!(scrape.requests("POST", "/auth/register", "201"), 1.0);
        assert_eq!(scrape.requests("POST", "/auth/login", "200"), 1.0);
        assert_eq!(scrape.requests("POST", "/auth/login", "401"), 1.0);
        assert_eq!(
            scrape.requests("GET", "unmatched", "404"),
            3.0,
            "unknown routes share one label"
        );
        assert_eq!(scrape.requests("DELETE", "/health/live", "405"), 1.0);
        assert_eq!(
            scrape.requests("_OTHER", "/health/live", "405"),
            2.0,
            "invented methods share one label"
        );
        let methods = scrape.labels("http_request_method");
        assert!(!methods.iter().any(|m| m == "BREW"), "{methods:?}");
        let routes = scrape.labels("http_route");
        assert!(routes.contains(&"/users/{id}".to_owned()), "{routes:?}");
        assert!(
            routes
                .iter()
                .all(|r| !r.contains(ann["id"].as_str().unwrap()) && !r.contains("wp-admin")),
            "no raw paths or ids in labels: {routes:?}"
        );

        assert_eq!(
            scrape.value("roster_auth_events_total", &[("event", "register")]),
            Some(1.0)
        );
        assert_eq!(
            scrape.value("roster_auth_events_total", &[("event", "login_success")]),
            Some(1.0)
        );
        assert_eq!(
            scrape.value("roster_auth_events_total", &[("event", "login_failure")]),
            Some(1.0)
        );
        assert_eq!(scrape.value("roster_users", &[("role", "user")]), Some(1.0));
        assert_eq!(
            scrape.value("roster_users", &[("role", "admin")]),
            Some(1.0)
        );
        assert_eq!(scrape.value("db_client_connections_max", &[]), Some(4.0));
        assert!(
            scrape
                .value(
                    "db_client_connections_usage",
                    &[("db_client_connection_state", "idle")]
                )
                .is_some()
        );
        assert!(
            scrape
                .value(
                    "db_client_operation_duration_seconds",
                    &[("db_operation_name", "select")]
                )
                .unwrap()
                > 0.0
        );
        assert!(
            scrape
                .value(
                    "db_client_operation_duration_seconds",
                    &[("db_operation_name", "insert")]
                )
                .unwrap()
                > 0.0
        );
    }
}

#[tokio::test]
async fn latency_buckets_suit_a_fast_api() {
    let app = TestApp::spawn(&backends()[0]).await;
    app.get("/health/live").await;
    let text = app.get("/metrics").await.text().await.unwrap();
    let bounds: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.starts_with("http_server_request_duration_seconds_bucket")
                && l.contains("/health/live")
        })
        .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(bounds.first(), Some(&"0.0005"), "{bounds:?}");
    assert!(bounds.contains(&"10"), "{bounds:?}");
}

#[tokio::test]
async fn pool_gauges_move_when_connections_are_held() {
    let app = TestApp::spawn(&backends()[0]).await;
    fn used(s: &Scrape) -> f64 {
        s.value(
            "db_client_connections_usage",
            &[("db_client_connection_state", "used")],
        )
        .unwrap()
    }
    // Connections still being opened at start-up, and the mail sender's
    // polls, count as used for a moment: wait for a quiet pool, where the
    // scrape's own count of users is the one connection in use.
    async fn settled(app: &TestApp) -> f64 {
        for _ in 0..100 {
            let scrape = Scrape::from(app).await;
            if used(&scrape) <= 1.0 {
                return used(&scrape);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the pool never came to rest");
    }
    let held_before = settled(&app).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(app.db.hold_connection().await.unwrap());
    }
    let during = Scrape::from(&app).await;
    assert!(
        used(&during) >= held_before + 3.0,
        "{} -> {}",
        held_before,
        used(&during)
    );
    drop(held);
    settled(&app).await;
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let app = TestApp::spawn_with(&backends()[0], |s| s.metrics = "false".into()).await;
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    // Everything else still works.
    app.register("ann@x.io").await;
    let _: HashMap<String, String> = HashMap::new();
    let _ = app
        .post_json(
            "/auth/login",
            &json!({"email": "ann@x.io", "password": PASSWORD}),
        )
        .await;
}

/// `http_server_active_requests` counts requests in flight by method: two
/// logins whose bodies stall are in flight until their clients go away, the
/// scrape counts itself, and a method no request used has no series.
#[tokio::test]
async fn active_requests_count_what_is_in_flight_by_method() {
    use tokio::io::AsyncWriteExt as _;
    let app = TestApp::spawn(&backends()[0]).await;
    let active = |s: &Scrape, method: &str| {
        s.value(
            "http_server_active_requests",
            &[("http_request_method", method)],
        )
    };
    let scrape = Scrape::from(&app).await;
    assert_eq!(active(&scrape, "GET"), Some(1.0), "the scrape itself");
    assert_eq!(active(&scrape, "PATCH"), None);
    assert!(
        scrape
            .0
            .metrics
            .iter()
            .any(|m| m.name == "http_server_active_requests"
                && m.kind == prom_text_format_parser::Type::Gauge)
    );

    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
            .await
            .unwrap();
        stream
            .write_all(
                b"POST /auth/login HTTP/1.1\r\nHost: roster\r\n\
                  Content-Type: application/json\r\nContent-Length: 64\r\n\r\n{\"email\"",
            )
            .await
            .unwrap();
        stalled.push(stream);
    }
    let mut in_flight = None;
    for _ in 0..50 {
        in_flight = active(&Scrape::from(&app).await, "POST");
        if in_flight == Some(2.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(in_flight, Some(2.0));

    drop(stalled);
    for _ in 0..100 {
        in_flight = active(&Scrape::from(&app).await, "POST");
        if in_flight == Some(0.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(in_flight, Some(0.0), "the series stays, at zero");
    assert_eq!(active(&Scrape::from(&app).await, "GET"), Some(1.0));
}
