//! The outermost layer of every request: `X-Request-Id`, the request's server
//! span (continuing an incoming W3C `traceparent`), HTTP metrics, the access
//! log line, the early body-size check, and the rendering of every error
//! (ours or the framework's) as a problem document carrying the request id.

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock},
    time::Instant,
};

use opentelemetry::{
    propagation::Extractor,
    trace::{SpanContext, TraceContextExt as _},
};
use poem::{
    Endpoint, IntoResponse, Middleware, PathPattern, Request, Response,
    http::{HeaderMap, HeaderValue, header},
};
use tracing::{Instrument as _, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::error::ApiError;
use crate::metrics::{Metrics, OTHER_METHOD, UNMATCHED_ROUTE, method_label, route_template};

/// Name of the correlation header.
pub const REQUEST_ID: &str = "x-request-id";

/// Target of the per-request log line. Traces leave it out: the server span
/// already carries each of its fields as an attribute.
pub const ACCESS_LOG: &str = "roster::access";

/// Adds request ids, tracing, metrics, logging and problem rendering around an endpoint.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// Largest accepted body, checked against `Content-Length` before routing.
    pub max_body_bytes: usize,
    /// Where HTTP metrics go; `None` when metrics are off.
    pub metrics: Option<Arc<Metrics>>,
    /// poem-openapi routes name path parameters `param0`, `param1`…; this
    /// maps poem's patterns to the document's templates
    /// (`/users/:param0` → `/users/{id}`).
    pub routes: Arc<HashMap<String, Arc<str>>>,
}

impl RequestContext {
    /// Route templates from an OpenAPI document's `paths`, by poem's pattern.
    #[must_use]
    pub fn route_names(spec_json: &str) -> HashMap<String, Arc<str>> {
        let spec: serde_json::Value = serde_json::from_str(spec_json).unwrap_or_default();
        let Some(paths) = spec.get("paths").and_then(serde_json::Value::as_object) else {
            return HashMap::new();
        };
        paths
            .keys()
            .map(|template| {
                let mut index = 0;
                let internal = template
                    .split('/')
                    .map(|segment| {
                        if segment.starts_with('{') {
                            index += 1;
                            format!(":param{}", index - 1)
                        } else {
                            segment.to_owned()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("/");
                (internal, Arc::from(template.as_str()))
            })
            .collect()
    }
}

impl<E: Endpoint> Middleware<E> for RequestContext {
    type Output = RequestContextEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RequestContextEndpoint {
            inner,
            context: self.clone(),
        }
    }
}

/// The endpoint produced by [`RequestContext`].
#[derive(Debug)]
pub struct RequestContextEndpoint<E> {
    inner: E,
    context: RequestContext,
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(poem::http::HeaderName::as_str).collect()
    }
}

impl<E: Endpoint> Endpoint for RequestContextEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let started = Instant::now();
        let request_id = req
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| is_sane_request_id(v))
            .map_or_else(new_request_id, str::to_owned);
        let method = req.method().clone();
        let method_label = method_label(&method);
        let span = tracing::info_span!(
            "request",
            otel.kind = "server",
            otel.status_code = Empty,
            request_id = %request_id,
            trace_id = Empty,
            span_id = Empty,
            http.request.method = method_label,
            http.request.method_original = Empty,
            http.route = Empty,
            url.path = %req.uri().path(),
            http.response.status_code = Empty,
            user_agent.original = Empty,
            client.address = Empty,
            enduser.id = Empty,
        );
        if method_label == OTHER_METHOD {
            span.record("http.request.method_original", method.as_str());
        }
        if let Some(agent) = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
        {
            span.record("user_agent.original", agent);
        }
        if let Some(addr) = req.remote_addr().as_socket_addr() {
            span.record("client.address", addr.ip().to_string());
        }
        let parent =
            opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(req.headers())));
        let _ = span.set_parent(parent);
        let span_context = span.context().span().span_context().clone();
        if span_context.is_valid() {
            span.record("trace_id", span_context.trace_id().to_string());
            span.record("span_id", span_context.span_id().to_string());
        }
        if let Some(metrics) = &self.context.metrics {
            metrics.request_started(method_label);
        }
        async move {
            let max = self.context.max_body_bytes;
            let too_large = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|len| len > max as u64);
            let (mut response, pattern) = if too_large {
                (
                    ApiError::PayloadTooLarge { limit: max }.to_response(&request_id),
                    None,
                )
            } else {
                match self.inner.call(req).await {
                    Ok(response) => {
                        let response = response.into_response();
                        let pattern = response.data::<PathPattern>().map(|p| p.0.clone());
                        (response, pattern)
                    }
                    Err(err) => {
                        let pattern = err.data::<PathPattern>().map(|p| p.0.clone());
                        (ApiError::from_poem(err).to_response(&request_id), pattern)
                    }
                }
            };
            let route: Arc<str> = pattern.filter(|p| !p.is_empty()).map_or_else(
                || Arc::clone(&UNMATCHED),
                |p| {
                    self.context
                        .routes
                        .get(&*p)
                        .cloned()
                        .unwrap_or_else(|| route_template(&p).into())
                },
            );
            let status = response.status().as_u16();
            let current = tracing::Span::current();
            // The OpenTelemetry span has started (its ids were read above), so
            // its name is set on it directly rather than through `otel.name`.
            current
                .context()
                .span()
                .update_name(format!("{} {route}", span_method(method_label)));
            current.record("http.route", &*route);
            current.record("http.response.status_code", status);
            if status >= 500 {
                current.record("otel.status_code", "ERROR");
            }
            let headers = response.headers_mut();
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                headers.insert(REQUEST_ID, value);
            }
            if let Some(value) = traceparent(&span_context) {
                headers.insert("traceparent", value);
            }
            let elapsed = started.elapsed();
            if let Some(metrics) = &self.context.metrics {
                metrics.request_finished(method_label, &route, status, elapsed);
            }
            tracing::info!(
                target: ACCESS_LOG,
                method = %method,
                route = %route,
                status,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                "request finished"
            );
            Ok(response)
        }
        .instrument(span)
        .await
    }
}

/// The route label of requests that matched no route.
static UNMATCHED: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from(UNMATCHED_ROUTE));

/// The method part of a server span's name: the conventions name a span of
/// a method HTTP does not define `HTTP {route}`.
fn span_method(label: &'static str) -> &'static str {
    if label == OTHER_METHOD { "HTTP" } else { label }
}

/// The server span as a W3C `traceparent`, so a client can find its request.
fn traceparent(context: &SpanContext) -> Option<HeaderValue> {
    if !context.is_valid() {
        return None;
    }
    let value = format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8()
    );
    HeaderValue::from_str(&value).ok()
}

/// 1-128 characters of `[A-Za-z0-9._-]`: safe to echo in a header and a log line.
#[must_use]
pub fn is_sane_request_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn new_request_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_sanity() {
        assert!(is_sane_request_id("abc-123_X.y"));
        assert!(is_sane_request_id(&"a".repeat(128)));
        assert!(!is_sane_request_id(&"a".repeat(129)));
        assert!(!is_sane_request_id(""));
        assert!(!is_sane_request_id("a b"));
        assert!(!is_sane_request_id("a\"b"));
        assert!(!is_sane_request_id("ünïcode"));
    }

    #[test]
    fn generated_ids_are_sane() {
        assert!(is_sane_request_id(&new_request_id()));
    }
}
