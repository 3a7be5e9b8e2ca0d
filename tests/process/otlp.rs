//! The real OTLP/HTTP exporter against a receiver inside the test.

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest, common::v1::any_value::Value as AnyValue,
};
use poem::{EndpointExt as _, Route, handler, listener::TcpAcceptor, post, web::Data};
use prost::Message as _;

use crate::process::Process;

type Received = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

#[handler]
async fn receive(body: Vec<u8>, received: Data<&Received>) -> Vec<u8> {
    received
        .lock()
        .unwrap()
        .push(ExportTraceServiceRequest::decode(body.as_slice()).unwrap());
    Vec::new()
}

/// Starts a receiver; returns its base URL and what it got.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Route::new()
        .at("/v1/traces", post(receive))
        .data(Arc::clone(&received));
    tokio::spawn(
        poem::Server::new_with_acceptor(TcpAcceptor::from_tokio(listener).unwrap()).run(app),
    );
    (format!("http://127.0.0.1:{port}"), received)
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_reach_an_otlp_collector_by_shutdown() {
    let (endpoint, received) = receiver().await;
    let server = Process::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_SERVICE_NAME", "roster-e2e"),
    ]);
    let client = reqwest::Client::new();
    let response = client.get(server.url("/health/live")).send().await.unwrap();
    let trace_id = response.headers()["traceparent"]
        .to_str()
        .unwrap()
        .split('-')
        .nth(1)
        .unwrap()
        .to_owned();
    let (code, lines) = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.stop()
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{lines:?}");

    let requests = received.lock().unwrap().clone();
    let resource_spans: Vec<_> = requests
        .iter()
        .flat_map(|r| r.resource_spans.iter())
        .collect();
    let service_names: Vec<String> = resource_spans
        .iter()
        .filter_map(|rs| rs.resource.as_ref())
        .flat_map(|r| r.attributes.iter())
        .filter(|kv| kv.key == "service.name")
        .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert!(
        service_names.iter().any(|n| n == "roster-e2e"),
        "{service_names:?}"
    );
    let spans: Vec<_> = resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans.iter())
        .flat_map(|ss| ss.spans.iter())
        .collect();
    let server_span = spans
        .iter()
        .find(|s| s.name == "GET /health/live")
        .unwrap_or_else(|| {
            panic!(
                "server span exported: {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    let exported_trace: String = server_span
        .trace_id
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(exported_trace, trace_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_collector_the_service_works_and_warns_once() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let server = Process::start(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        &format!("http://127.0.0.1:{closed}"),
    )]);
    let client = reqwest::Client::new();
    for _ in 0..5 {
        let response = client.get(server.url("/health/live")).send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
    }
    let (code, lines) = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.stop()
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0));
    let warnings: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("OTLP collector"))
        .collect();
    assert_eq!(warnings.len(), 1, "{lines:#?}");
}
