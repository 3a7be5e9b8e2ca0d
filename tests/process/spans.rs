//! Server and child spans, with an in-memory exporter.

use std::sync::LazyLock;

use opentelemetry::{Value, trace::SpanKind};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use reqwest::StatusCode;
use roster::config::{LogConfig, LogFormat};

use crate::helpers::{TestApp, backends};

static EXPORTER: LazyLock<InMemorySpanExporter> = LazyLock::new(|| {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    roster::infra::telemetry::install(
        &LogConfig {
            format: LogFormat::Json,
            filter: "warn".into(),
        },
        Some(&provider),
        roster::infra::telemetry::LogTarget::Stderr,
    );
    exporter
});

fn attribute(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn trace_id_of(response: &reqwest::Response) -> String {
    let header = response.headers()["traceparent"]
        .to_str()
        .unwrap()
        .to_owned();
    header.split('-').nth(1).unwrap().to_owned()
}

/// The server span of the response's trace and all the trace's spans, once
/// that server span has ended.
async fn trace_of(response: &reqwest::Response) -> (SpanData, Vec<SpanData>) {
    let trace_id = trace_id_of(response);
    // The server span ends after the response is written.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let spans: Vec<SpanData> = EXPORTER
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|s| s.span_context.trace_id().to_string() == trace_id)
        .collect();
    let server = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Server)
        .expect("a server span")
        .clone();
    (server, spans)
}

#[tokio::test]
async fn a_request_yields_a_server_span_with_semantic_attributes_and_database_children() {
    LazyLock::force(&EXPORTER);
    let app = TestApp::spawn(&backends()[0]).await;
    let (user, tokens) = app.signed_up("ann@x.io").await;
    let id = user["id"].as_str().unwrap();
    let response = app
        .request(reqwest::Method::GET, &format!("/users/{id}"))
        .bearer_auth(&tokens.access)
        .header("user-agent", "span-test/1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (server, spans) = trace_of(&response).await;
    assert_eq!(server.name, "GET /users/{id}");
    assert_eq!(
        attribute(&server, "http.request.method"),
        Some("GET".into())
    );
    assert_eq!(attribute(&server, "http.route"), Some("/users/{id}".into()));
    assert_eq!(
        attribute(&server, "url.path"),
        Some(format!("/users/{id}").into())
    );
    assert_eq!(
        attribute(&server, "http.response.status_code").map(|v| v.to_string()),
        Some("200".into())
    );
    assert_eq!(
        attribute(&server, "user_agent.original"),
        Some("span-test/1.0".into())
    );
    assert_eq!(
        attribute(&server, "client.address"),
        Some("127.0.0.1".into())
    );
    assert_eq!(attribute(&server, "enduser.id"), Some(id.to_owned().into()));

    let db: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.span_kind == SpanKind::Client)
        .collect();
    assert!(!db.is_empty(), "database spans: {spans:?}");
    for span in db {
        assert_eq!(
            span.parent_span_id,
            server.span_context.span_id(),
            "children of the server span"
        );
        assert_eq!(attribute(span, "db.system.name"), Some("sqlite".into()));
        assert_eq!(attribute(span, "db.operation.name"), Some("select".into()));
        let text = format!("{:?}", span.attributes);
        assert!(!text.contains(id), "no parameter values: {text}");
    }
}

#[tokio::test]
async fn login_has_a_password_hash_span_and_errors_mark_the_span() {
    LazyLock::force(&EXPORTER);
    let app = TestApp::spawn(&backends()[0]).await;
    app.register("ann@x.io").await;
    let response = app.try_login("ann@x.io", crate::helpers::PASSWORD).await;
    let (server, spans) = trace_of(&response).await;
    assert_eq!(server.name, "POST /auth/login");
    let hash = spans
        .iter()
        .find(|s| s.name == "password_hash")
        .expect("password hashing span");
    assert_eq!(hash.parent_span_id, server.span_context.span_id());

    // A 5xx sets the span status; a closed pool makes one.
    app.db.close().await;
    let response = app.get("/health/ready").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let (server, _) = trace_of(&response).await;
    assert!(
        matches!(server.status, opentelemetry::trace::Status::Error { .. }),
        "{:?}",
        server.status
    );
    // Events logged while serving ride on the span; the access log line,
    // whose fields the span already carries, does not.
    let events: Vec<&str> = server.events.iter().map(|e| e.name.as_ref()).collect();
    assert!(events.contains(&"database unavailable"), "{events:?}");
    assert!(!events.contains(&"request finished"), "{events:?}");
}

#[tokio::test]
async fn an_incoming_traceparent_is_continued() {
    LazyLock::force(&EXPORTER);
    let app = TestApp::spawn(&backends()[0]).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let response = app
        .request(reqwest::Method::GET, "/health/live")
        .header("traceparent", format!("00-{trace_id}-{parent}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        trace_id_of(&response),
        trace_id,
        "the response names the caller's trace"
    );
    let (server, _) = trace_of(&response).await;
    assert_eq!(server.parent_span_id.to_string(), parent);
    assert_eq!(server.name, "GET /health/live");
}

#[tokio::test]
async fn an_invented_method_is_labelled_other_and_kept_as_sent() {
    LazyLock::force(&EXPORTER);
    let app = TestApp::spawn(&backends()[0]).await;
    let response = app
        .request(
            reqwest::Method::from_bytes(b"BREW").unwrap(),
            "/health/live",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let (server, _) = trace_of(&response).await;
    assert_eq!(server.name, "HTTP /health/live");
    assert_eq!(
        attribute(&server, "http.request.method"),
        Some("_OTHER".into())
    );
    assert_eq!(
        attribute(&server, "http.request.method_original"),
        Some("BREW".into())
    );
}
