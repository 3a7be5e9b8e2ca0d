//! Logs and traces: a `tracing` subscriber printing JSON lines (or pretty
//! output on a terminal), plus an OpenTelemetry layer whose spans are exported
//! over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use std::{fmt, time::Duration};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing::{Level, level_filters::LevelFilter, span::Record};
use tracing_subscriber::{
    EnvFilter, Layer as _,
    field::RecordFields,
    filter::Targets,
    fmt::{
        FormatFields, FormattedFields,
        format::{JsonFields, Writer},
    },
    layer::SubscriberExt as _,
    util::SubscriberInitExt as _,
};

use crate::{
    api::middleware::ACCESS_LOG,
    config::{LogConfig, LogFormat, OtelConfig},
};

/// How long one export may take, so that a collector that accepts and never
/// answers cannot hold up shutdown for long.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(3);

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    /// The server's logs: stdout, as collectors expect.
    Stdout,
    /// One-shot commands, whose stdout is their result.
    Stderr,
}

/// Flushes exported spans when the process stops.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Exports what is buffered and stops the exporter.
    pub fn shutdown(self) {
        if let Some(Err(e)) = self.provider.map(|p| p.shutdown()) {
            tracing::warn!(error = %e, "flushing traces failed");
        }
    }
}

/// Installs logging and tracing for the process. Spans are built for
/// OpenTelemetry only when `OTEL_EXPORTER_OTLP_ENDPOINT` names somewhere to
/// send them; without it the request middleware still gives every request a
/// trace id and span id (continuing an incoming `traceparent`) for its logs
/// and its `traceparent` response header.
#[must_use]
pub fn init(log: &LogConfig, otel: &OtelConfig, target: LogTarget) -> TelemetryGuard {
    let mut unreachable = None;
    let provider = otel.endpoint.as_ref().and_then(|endpoint| {
        let url = traces_url(endpoint);
        match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(url.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .build()
        {
            Ok(exporter) => {
                if !reachable(&url) {
                    unreachable = Some(url);
                }
                let resource = Resource::builder()
                    .with_service_name(otel.service_name.clone())
                    .build();
                Some(
                    SdkTracerProvider::builder()
                        .with_resource(resource)
                        .with_batch_exporter(exporter)
                        .build(),
                )
            }
            Err(e) => {
                eprintln!("roster: cannot export traces to {url}: {e}");
                None
            }
        }
    });
    install(log, provider.as_ref(), target);
    if let Some(url) = unreachable {
        tracing::warn!(%url, "the OTLP collector is not reachable; traces are dropped until it is");
    }
    TelemetryGuard { provider }
}

/// Installs the subscriber, with an OpenTelemetry layer feeding `provider`
/// when there is one (tests pass one with an in-memory exporter). A second
/// call in one process is a no-op.
pub fn install(log: &LogConfig, provider: Option<&SdkTracerProvider>, target: LogTarget) {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    // The SDK's own export errors repeat every few seconds while a collector
    // is down; `init` logs one warning instead, unless RUST_LOG asks for them.
    let directives = if log.filter.contains("opentelemetry") {
        log.filter.clone()
    } else {
        format!(
            "{},opentelemetry=off,opentelemetry_sdk=off,opentelemetry_otlp=off",
            log.filter
        )
    };
    let filter = EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let writer = move || -> Box<dyn std::io::Write> {
        match target {
            LogTarget::Stdout => Box::new(std::io::stdout()),
            LogTarget::Stderr => Box::new(std::io::stderr()),
        }
    };
    let fmt = match log.format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .fmt_fields(AppendingJsonFields)
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
    };
    // Traces carry Roster's own spans, whatever the log level, but not the
    // access log line: as a span event it would repeat the server span's
    // attributes on every request.
    // Spans carry the attributes Roster records, not the layer's extras: the
    // source location and thread of the code that opened them, and busy and
    // idle times (two clock reads on every poll of a request). Nothing reads
    // the OpenTelemetry context from a thread-local, so entering a span need
    // not install it there.
    let traces = provider.map(|provider| {
        opentelemetry::global::set_tracer_provider(provider.clone());
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("roster"))
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_context_activation(false)
            .with_filter(
                Targets::new()
                    .with_target("roster", Level::INFO)
                    .with_target(ACCESS_LOG, LevelFilter::OFF),
            )
    });
    // `try_init` fails only when a subscriber is already installed.
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(traces)
        .try_init();
}

/// OTLP/HTTP takes the signal's path under the base endpoint.
fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    }
}

/// Whether something accepts TCP connections at the URL's host and port.
fn reachable(url: &str) -> bool {
    use std::net::ToSocketAddrs as _;
    let Some(rest) = url.split_once("://").map(|(_, rest)| rest) else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else if url.starts_with("https") {
        format!("{authority}:443")
    } else {
        format!("{authority}:80")
    };
    with_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
        })
}

/// JSON span fields that later `record`s are appended to. The stock
/// `JsonFields` parses a span's fields and writes them again on every
/// `record`, and the request span takes five or so (client address, trace
/// and span ids, route, status): at the default `info`, that parsing was
/// most of what the access log cost. A field recorded twice then appears
/// twice in the stored object; the line's `span` object is parsed from it,
/// so the last value wins, as before.
struct AppendingJsonFields;

impl<'writer> FormatFields<'writer> for AppendingJsonFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        JsonFields::new().format_fields(writer, fields)
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &Record<'_>,
    ) -> fmt::Result {
        let mut added = String::new();
        JsonFields::new().format_fields(Writer::new(&mut added), fields)?;
        let current = &mut current.fields;
        // Both are JSON objects: `{"a":1}` and `{"b":2}` make `{"a":1,"b":2}`.
        match (current.strip_suffix('}'), added.strip_prefix('{')) {
            (_, Some("}") | None) => {}
            (Some("{") | None, Some(_)) => *current = added,
            (Some(head), Some(tail)) => {
                current.truncate(head.len());
                current.push(',');
                current.push_str(tail);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_span_fields_are_appended_and_the_last_value_wins() {
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&buffer);
        let writer = move || -> Box<dyn std::io::Write> {
            struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
            impl std::io::Write for Sink {
                fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                    self.0.lock().unwrap().extend_from_slice(b);
                    Ok(b.len())
                }
                fn flush(&mut self) -> std::io::Result<()> {
                    Ok(())
                }
            }
            Box::new(Sink(std::sync::Arc::clone(&sink)))
        };
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .fmt_fields(AppendingJsonFields)
            .with_writer(writer);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "request",
                request_id = "r1",
                route = tracing::field::Empty,
                status = tracing::field::Empty,
                note = tracing::field::Empty,
            );
            span.record("route", "/users/{id}");
            span.record("status", 200);
            span.record("note", "a \"quoted\" \\ value,}");
            span.record("status", 404);
            span.in_scope(|| tracing::info!("inside"));
        });
        let out = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        let span = &line["span"];
        assert_eq!(span["request_id"], "r1", "{line}");
        assert_eq!(span["route"], "/users/{id}", "{line}");
        assert_eq!(span["note"], "a \"quoted\" \\ value,}", "{line}");
        assert_eq!(span["status"], 404, "{line}");
        assert_eq!(span["name"], "request", "{line}");
    }

    #[test]
    fn traces_url_appends_the_signal_path_once() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }

    #[test]
    fn closed_ports_are_unreachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(reachable(&format!("http://127.0.0.1:{port}/v1/traces")));
        drop(listener);
        assert!(!reachable(&format!("http://127.0.0.1:{port}/v1/traces")));
    }
}
