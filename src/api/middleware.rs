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
    trace::{SpanContext, TraceContextExt as _, TraceFlags},
};
use opentelemetry_sdk::trace::{IdGenerator as _, RandomIdGenerator};
use poem::{
    Endpoint, IntoResponse, Middleware, PathPattern, Request, Response,
    http::{HeaderMap, HeaderName, HeaderValue, header},
};
use tracing::{Instrument as _, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::error::ApiError;
use crate::infra::metrics::{Metrics, OTHER_METHOD, UNMATCHED_ROUTE, method_label, route_template};

/// Name of the correlation header.
pub const REQUEST_ID: &str = "x-request-id";

/// The correlation header's name, made once: a name `http` does not know
/// is otherwise validated and copied to the heap on every insert.
const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static(REQUEST_ID);

/// The W3C trace context header.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

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
    /// The routes by poem's pattern: poem-openapi names path parameters
    /// `param0`, `param1`…, and the document names them
    /// (`/users/:param0` → `/users/{id}`).
    pub routes: Arc<HashMap<String, RouteInfo>>,
}

/// What the request context knows of one route.
#[derive(Debug, Clone)]
pub struct RouteInfo {
    /// The document's template, the `http.route` label.
    pub template: Arc<str>,
    /// The route's methods, for the `Allow` header of a `405` (RFC 9110).
    pub allow: HeaderValue,
}

impl RequestContext {
    /// The routes of an OpenAPI document's `paths`, by poem's pattern, and
    /// `extra` plain routes served beside the document, with their methods.
    #[must_use]
    pub fn route_names(spec_json: &str, extra: &[(&str, &[&str])]) -> HashMap<String, RouteInfo> {
        let spec: serde_json::Value = serde_json::from_str(spec_json).unwrap_or_default();
        let empty = serde_json::Map::new();
        let paths = spec
            .get("paths")
            .and_then(serde_json::Value::as_object)
            .unwrap_or(&empty);
        let documented = paths.iter().map(|(template, item)| {
            let methods: Vec<String> = item
                .as_object()
                .map(|item| item.keys().map(|m| m.to_ascii_uppercase()).collect())
                .unwrap_or_default();
            (template.as_str(), methods)
        });
        let plain = extra
            .iter()
            .map(|&(path, methods)| (path, methods.iter().map(|m| (*m).to_owned()).collect()));
        documented
            .chain(plain)
            .map(|(template, mut methods)| {
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
                // poem answers HEAD wherever it answers GET.
                if methods.iter().any(|m| m == "GET") {
                    methods.push("HEAD".to_owned());
                }
                let allow = HeaderValue::from_str(&methods.join(", "))
                    .unwrap_or(HeaderValue::from_static(""));
                let info = RouteInfo {
                    template: Arc::from(template),
                    allow,
                };
                (internal, info)
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
        // Every value is computed only when some layer takes the span: with
        // no OpenTelemetry layer (no exporter) and logs above `info`, none does.
        let span = tracing::info_span!(
            "request",
            otel.kind = "server",
            otel.status_code = Empty,
            request_id = request_id.as_str(),
            trace_id = Empty,
            span_id = Empty,
            http.request.method = method_label,
            http.request.method_original = (method_label == OTHER_METHOD).then(|| method.as_str()),
            http.route = Empty,
            url.path = req.uri().path(),
            http.response.status_code = Empty,
            user_agent.original = req
                .headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok()),
            client.address = req
                .remote_addr()
                .as_socket_addr()
                .map(|addr| tracing::field::display(addr.ip())),
            enduser.id = Empty,
        );
        let parent =
            opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(req.headers())));
        let remote = parent.span().span_context().clone();
        let _ = span.set_parent(parent);
        let exported = span.context().span().span_context().clone();
        let traced = exported.is_valid();
        let span_context = if traced {
            exported
        } else {
            local_span_context(&remote)
        };
        let traceparent = Traceparent::of(&span_context);
        if !span.is_disabled() {
            span.record("trace_id", traceparent.trace_id());
            span.record("span_id", traceparent.span_id());
        }
        let audit = crate::audit::Context {
            ip: req
                .remote_addr()
                .as_socket_addr()
                .map(std::net::SocketAddr::ip),
            user_agent: req.headers().get(header::USER_AGENT).cloned(),
            request_id: Some(request_id.clone()),
        };
        // Dropped when the request ends, or with this future if it never does.
        let _in_flight = self
            .context
            .metrics
            .as_ref()
            .map(|metrics| metrics.request_started(method_label));
        let handled = async move {
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
            let known = pattern.as_deref().and_then(|p| self.context.routes.get(p));
            let route: Arc<str> = match (known, pattern.as_deref()) {
                (Some(info), _) => Arc::clone(&info.template),
                (None, Some(p)) if !p.is_empty() => route_template(p).into(),
                (None, _) => Arc::clone(&UNMATCHED),
            };
            let status = response.status().as_u16();
            if status == 405
                && let Some(info) = known
            {
                response
                    .headers_mut()
                    .insert(header::ALLOW, info.allow.clone());
            }
            let current = tracing::Span::current();
            if traced {
                // The OpenTelemetry span has started (its ids were read
                // above), so its name is set on it directly rather than
                // through `otel.name`.
                current
                    .context()
                    .span()
                    .update_name(format!("{} {route}", span_method(method_label)));
            }
            if !current.is_disabled() {
                current.record("http.route", &*route);
                current.record("http.response.status_code", status);
                if status >= 500 {
                    current.record("otel.status_code", "ERROR");
                }
            }
            let headers = response.headers_mut();
            // The id's own buffer becomes the header's bytes, uncopied.
            if let Ok(value) = HeaderValue::try_from(request_id) {
                headers.insert(REQUEST_ID_HEADER, value);
            }
            if let Some(value) = traceparent.header() {
                headers.insert(TRACEPARENT, value);
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
        };
        audit.scope(handled.instrument(span)).await
    }
}

/// The route label of requests that matched no route.
static UNMATCHED: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from(UNMATCHED_ROUTE));

/// The method part of a server span's name: the conventions name a span of
/// a method HTTP does not define `HTTP {route}`.
fn span_method(label: &'static str) -> &'static str {
    if label == OTHER_METHOD { "HTTP" } else { label }
}

/// The request's span context when no OpenTelemetry layer builds one
/// (traces are not exported): a new span id in the caller's trace, keeping
/// its flags, or else a new trace that is not sampled (nothing records it).
fn local_span_context(remote: &SpanContext) -> SpanContext {
    let ids = RandomIdGenerator::default();
    let (trace_id, flags) = if remote.is_valid() {
        (remote.trace_id(), remote.trace_flags())
    } else {
        (ids.new_trace_id(), TraceFlags::default())
    };
    SpanContext::new(
        trace_id,
        ids.new_span_id(),
        flags,
        false,
        remote.trace_state().clone(),
    )
}

/// The server span as a W3C `traceparent` (`00-{trace id}-{span id}-{flags}`,
/// lowercase hex), written once: the response header and the span's
/// `trace_id` and `span_id` fields are all read from it.
struct Traceparent {
    text: [u8; 55],
    valid: bool,
}

impl Traceparent {
    fn of(context: &SpanContext) -> Self {
        fn hex(bytes: &[u8], out: &mut [u8]) {
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            for (byte, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
                pair[0] = DIGITS[usize::from(byte >> 4)];
                pair[1] = DIGITS[usize::from(byte & 0xf)];
            }
        }
        let mut text = *b"00-00000000000000000000000000000000-0000000000000000-00";
        hex(&context.trace_id().to_bytes(), &mut text[3..35]);
        hex(&context.span_id().to_bytes(), &mut text[36..52]);
        hex(&[context.trace_flags().to_u8()], &mut text[53..55]);
        Self {
            text,
            valid: context.is_valid(),
        }
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits, letters and dashes are ever written; the
        // fallback has the same shape, so the slices below always hold.
        std::str::from_utf8(&self.text)
            .unwrap_or("00-00000000000000000000000000000000-0000000000000000-00")
    }

    fn trace_id(&self) -> &str {
        &self.as_str()[3..35]
    }

    fn span_id(&self) -> &str {
        &self.as_str()[36..52]
    }

    fn header(&self) -> Option<HeaderValue> {
        self.valid
            .then(|| HeaderValue::from_str(self.as_str()).ok())
            .flatten()
    }
}

/// 1-128 characters of `[A-Za-z0-9._-]`: safe to echo in a header and a log line.
#[must_use]
pub fn is_sane_request_id(value: &str) -> bool {
    (1..=crate::domain::limits::REQUEST_ID_MAX_CHARS).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn new_request_id() -> String {
    let mut buf = [0; uuid::fmt::Simple::LENGTH];
    uuid::Uuid::now_v7()
        .simple()
        .encode_lower(&mut buf)
        .to_owned()
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
    fn traceparent_is_the_w3c_rendering_of_the_span_context() {
        let ids = RandomIdGenerator::default();
        for flags in [TraceFlags::default(), TraceFlags::SAMPLED] {
            for _ in 0..1000 {
                let context = SpanContext::new(
                    ids.new_trace_id(),
                    ids.new_span_id(),
                    flags,
                    false,
                    opentelemetry::trace::TraceState::default(),
                );
                let traceparent = Traceparent::of(&context);
                let expected = format!(
                    "00-{:032x}-{:016x}-{:02x}",
                    u128::from_be_bytes(context.trace_id().to_bytes()),
                    u64::from_be_bytes(context.span_id().to_bytes()),
                    flags.to_u8()
                );
                assert_eq!(traceparent.header().unwrap(), expected.as_str());
                assert_eq!(traceparent.trace_id(), context.trace_id().to_string());
                assert_eq!(traceparent.span_id(), context.span_id().to_string());
            }
        }
        assert!(
            Traceparent::of(&SpanContext::empty_context())
                .header()
                .is_none()
        );
    }

    #[test]
    fn local_span_contexts_continue_the_callers_trace_or_start_one() {
        let remote = SpanContext::new(
            opentelemetry::trace::TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            opentelemetry::trace::SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            opentelemetry::trace::TraceState::default(),
        );
        let continued = local_span_context(&remote);
        assert!(continued.is_valid() && !continued.is_remote());
        assert_eq!(continued.trace_id(), remote.trace_id());
        assert_ne!(continued.span_id(), remote.span_id());
        assert!(continued.is_sampled());

        let a = local_span_context(&SpanContext::empty_context());
        let b = local_span_context(&SpanContext::empty_context());
        assert!(a.is_valid() && b.is_valid());
        assert_ne!(a.trace_id(), b.trace_id());
        assert!(!a.is_sampled(), "nothing records a trace Roster starts");
    }

    #[test]
    fn generated_ids_are_sane() {
        assert!(is_sane_request_id(&new_request_id()));
    }
}
