//! Log lines: JSON, correlated, and free of secrets.

use serde_json::{Value, json};

use crate::process::Process;

const SECRET: &str = "log-test-secret-log-test-secret-0123456789";
const PASSWORD: &str = "my very own log-test passphrase";

#[tokio::test(flavor = "multi_thread")]
async fn logs_are_json_lines_with_request_ids_and_no_secrets() {
    let server = Process::start(&[("ROSTER_JWT_SECRET", SECRET), ("RUST_LOG", "trace")]);
    let client = reqwest::Client::new();
    let register = client
        .post(server.url("/auth/register"))
        .header("x-request-id", "log-test-register")
        .json(&json!({"email": "ann@x.io", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), 201);
    let login: Value = client
        .post(server.url("/auth/login"))
        .json(&json!({"email": "ann@x.io", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = login["access_token"].as_str().unwrap().to_owned();
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();
    let refreshed: Value = client
        .post(server.url("/auth/refresh"))
        .json(&json!({"refresh_token": refresh}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let me = client
        .get(server.url("/users/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let (_, lines) = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.stop()
    })
    .await
    .unwrap();

    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for line in &parsed {
        assert!(
            line["timestamp"].is_string() && line["level"].is_string(),
            "{line}"
        );
    }
    let access_line = parsed
        .iter()
        .find(|l| {
            l["message"] == "request finished" && l["span"]["request_id"] == "log-test-register"
        })
        .expect("access line carries the caller's request id");
    assert_eq!(access_line["status"], 201);
    assert_eq!(access_line["route"], "/auth/register");
    // Fields recorded on the span after it opened, each added to the rest.
    assert_eq!(
        access_line["span"]["http.route"], "/auth/register",
        "{access_line}"
    );
    assert_eq!(
        access_line["span"]["http.response.status_code"], 201,
        "{access_line}"
    );
    assert_eq!(
        access_line["span"]["client.address"], "127.0.0.1",
        "{access_line}"
    );
    assert!(
        access_line["span"]["trace_id"]
            .as_str()
            .is_some_and(|t| t.len() == 32),
        "{access_line}"
    );
    assert!(
        access_line["span"]["span_id"]
            .as_str()
            .is_some_and(|t| t.len() == 16),
        "{access_line}"
    );

    let secrets = [
        PASSWORD,
        SECRET,
        &access,
        &refresh,
        refreshed["access_token"].as_str().unwrap(),
        refreshed["refresh_token"].as_str().unwrap(),
        "sha256-bcrypt$",
        "Bearer ey",
    ];
    for line in &lines {
        for secret in secrets {
            assert!(!line.contains(secret), "a secret leaked into: {line}");
        }
    }
}

/// The trace id and span id of a `traceparent` header, and its flags.
fn traceparent_of(response: &reqwest::Response) -> (String, String, String) {
    let header = response.headers()["traceparent"].to_str().unwrap();
    let parts: Vec<&str> = header.split('-').collect();
    assert_eq!(parts.len(), 4, "{header}");
    assert_eq!(parts[0], "00", "{header}");
    assert!(
        parts[1].len() == 32 && parts[2].len() == 16 && parts[3].len() == 2,
        "{header}"
    );
    assert!(parts[1].bytes().any(|b| b != b'0'), "{header}");
    assert!(parts[2].bytes().any(|b| b != b'0'), "{header}");
    (parts[1].into(), parts[2].into(), parts[3].into())
}

/// With no OTLP endpoint nothing builds spans for export, yet every request
/// still has a trace id and span id: the caller's trace when it sent one,
/// the same in its log line and its `traceparent` response header.
#[tokio::test(flavor = "multi_thread")]
async fn trace_ids_reach_logs_and_responses_without_an_exporter() {
    let server = Process::start(&[("RUST_LOG", "info")]);
    let client = reqwest::Client::new();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let continued = client
        .get(server.url("/health/live"))
        .header("x-request-id", "continued")
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .send()
        .await
        .unwrap();
    let continued = traceparent_of(&continued);
    assert_eq!(continued.0, trace_id);
    assert_ne!(continued.1, caller_span, "the server's span is its own");
    assert_eq!(continued.2, "01", "the caller's sampling decision is kept");

    let fresh = client
        .get(server.url("/health/live"))
        .header("x-request-id", "fresh")
        .send()
        .await
        .unwrap();
    let fresh = traceparent_of(&fresh);
    assert_ne!(fresh.0, trace_id);
    assert_eq!(fresh.2, "00", "nothing records the new trace");

    let broken = client
        .get(server.url("/health/live"))
        .header("x-request-id", "broken")
        .header("traceparent", "00-not-a-trace-01")
        .send()
        .await
        .unwrap();
    let broken = traceparent_of(&broken);
    assert_ne!(broken.0, trace_id);
    assert_ne!(broken.0, fresh.0, "each new trace has its own id");
    assert_eq!(broken.2, "00", "a broken traceparent starts a new trace");

    let (_, lines) = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.stop()
    })
    .await
    .unwrap();
    let access = |request_id: &str| -> Value {
        lines
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["message"] == "request finished" && l["span"]["request_id"] == request_id)
            .unwrap_or_else(|| panic!("no access line for {request_id}"))
    };
    for (request_id, (trace, span, _)) in [
        ("continued", &continued),
        ("fresh", &fresh),
        ("broken", &broken),
    ] {
        let line = access(request_id);
        assert_eq!(line["span"]["trace_id"], trace.as_str(), "{line}");
        assert_eq!(line["span"]["span_id"], span.as_str(), "{line}");
    }
}

/// At `warn` no layer takes the request span, and nothing is built for it,
/// yet the `traceparent` header still continues the caller's trace. (The
/// start-up line, which tells the test the port, stays at `info`.)
#[tokio::test(flavor = "multi_thread")]
async fn trace_ids_reach_responses_when_no_layer_takes_the_span() {
    let mut server = Process::start(&[("RUST_LOG", "warn,roster::startup=info")]);
    let client = reqwest::Client::new();
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let continued = client
        .get(server.url("/health/live"))
        .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
        .send()
        .await
        .unwrap();
    let (trace, span, flags) = traceparent_of(&continued);
    assert_eq!((trace.as_str(), flags.as_str()), (trace_id, "01"));
    assert_ne!(span, "b7ad6b7169203331");
    let fresh = client.get(server.url("/health/live")).send().await.unwrap();
    let (fresh_trace, fresh_span, _) = traceparent_of(&fresh);
    assert_ne!(fresh_trace, trace_id);
    assert_ne!(fresh_span, span);
    tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
}
