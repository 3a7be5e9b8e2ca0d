//! The outermost layer of every request: `X-Request-Id`, the request's log
//! span and access line, the early body-size check, and the rendering of every
//! error (ours or the framework's) as a problem document carrying the request id.

use std::time::Instant;

use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response,
    http::{HeaderValue, header},
};
use tracing::Instrument as _;

use super::error::ApiError;

/// Name of the correlation header.
pub const REQUEST_ID: &str = "x-request-id";

/// Adds request ids, logging and problem rendering around an endpoint.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext {
    /// Largest accepted body, checked against `Content-Length` before routing.
    pub max_body_bytes: usize,
}

impl<E: Endpoint> Middleware<E> for RequestContext {
    type Output = RequestContextEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RequestContextEndpoint {
            inner,
            max_body_bytes: self.max_body_bytes,
        }
    }
}

/// The endpoint produced by [`RequestContext`].
#[derive(Debug)]
pub struct RequestContextEndpoint<E> {
    inner: E,
    max_body_bytes: usize,
}

impl<E: Endpoint> Endpoint for RequestContextEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let request_id = req
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| is_sane_request_id(v))
            .map_or_else(new_request_id, str::to_owned);
        let span = tracing::info_span!(
            "request",
            request_id = %request_id,
            method = %req.method(),
            path = %req.uri().path(),
        );
        async move {
            let started = Instant::now();
            let method = req.method().clone();
            let too_large = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|len| len > self.max_body_bytes as u64);
            let mut response = if too_large {
                ApiError::PayloadTooLarge {
                    limit: self.max_body_bytes,
                }
                .to_response(&request_id)
            } else {
                match self.inner.call(req).await {
                    Ok(response) => response.into_response(),
                    Err(err) => ApiError::from_poem(err).to_response(&request_id),
                }
            };
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response.headers_mut().insert(REQUEST_ID, value);
            }
            tracing::info!(
                method = %method,
                status = response.status().as_u16(),
                duration_ms = started.elapsed().as_secs_f64() * 1000.0,
                "request finished"
            );
            Ok(response)
        }
        .instrument(span)
        .await
    }
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
