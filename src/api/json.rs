//! `Json<T>`: the JSON response payload of every endpoint.
//!
//! poem-openapi's own `Json<T>` renders a response by building a
//! `serde_json::Value` tree from `T` and then writing the tree out: every
//! field name and every string is allocated twice, which was the largest
//! single cost in the profile of a page of users. This payload writes `T`
//! straight out with serde, while the document still describes `T` with its
//! poem-openapi schema. Each response type therefore derives both `Object`
//! and `Serialize`; `tests::serde_matches_the_documented_shape` checks that
//! the two agree.

use std::cell::RefCell;

use poem::{IntoResponse, Response, http::StatusCode};
use poem_openapi::{
    ApiResponse,
    payload::Payload,
    registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry},
    types::Type,
};
use serde::Serialize;

/// A JSON response body, serialized by serde and documented as `T`.
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

impl<T: Type> Payload for Json<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// Largest buffer a thread keeps between responses.
const KEPT_BUFFER: usize = 64 * 1024;

thread_local! {
    /// Where this thread writes responses: grown once to the size of the
    /// largest recent response instead of by doubling in every response.
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// `value` as JSON, in a body allocated once at its exact size.
fn to_body<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    BUFFER.with_borrow_mut(|buffer| {
        buffer.clear();
        let written = serde_json::to_writer(&mut *buffer, value).map(|()| buffer.to_vec());
        if buffer.capacity() > KEPT_BUFFER {
            *buffer = Vec::new();
        }
        written
    })
}

impl<T: Type + Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match to_body(&self.0) {
            Ok(body) => Response::builder()
                .content_type(<Self as Payload>::CONTENT_TYPE)
                .body(body),
            // Only a map with non-string keys fails; none of ours has one.
            Err(e) => {
                tracing::error!(error = %e, "serializing a response failed");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

impl<T: Type + Serialize + Send> ApiResponse for Json<T> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: <Self as Payload>::CONTENT_TYPE,
                    schema: <Self as Payload>::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

#[cfg(test)]
mod tests {
    use poem_openapi::types::{Example as _, ToJSON};

    use super::*;
    use crate::api::{
        auth::{SessionResponse, TokenPair},
        health::{DatabaseCheck, HealthChecks, HealthReport, PoolFigures, Status},
        types::{Nullable, UserResponse},
        users::UserPageResponse,
    };

    #[track_caller]
    fn same<T: Serialize + ToJSON>(value: &T) {
        assert_eq!(
            serde_json::to_value(value).unwrap(),
            value.to_json().unwrap()
        );
    }

    #[test]
    fn serde_matches_the_documented_shape() {
        same(&UserResponse::example());
        same(&UserResponse {
            name: Nullable(None),
            ..UserResponse::example()
        });
        same(&UserPageResponse::example());
        same(&UserPageResponse {
            items: Vec::new(),
            next_cursor: Nullable(Some("opaque".into())),
            ..UserPageResponse::example()
        });
        same(&TokenPair::example());
        same(&SessionResponse::example());
        same(&SessionResponse {
            user_agent: Nullable(None),
            ip: Nullable(None),
            ..SessionResponse::example()
        });
        same(&Status {
            status: "ok".into(),
        });
        for latency in [Some(1.25), None] {
            same(&HealthReport {
                status: "ok".into(),
                version: "1.0.0".into(),
                uptime_seconds: 7,
                checks: HealthChecks {
                    database: DatabaseCheck {
                        status: "ok".into(),
                        latency_ms: Nullable(latency),
                        pool: PoolFigures {
                            size: 2,
                            idle: 1,
                            max: 8,
                        },
                    },
                },
            });
        }
    }

    #[test]
    fn the_buffer_is_reused_and_kept_small() {
        let big = "x".repeat(KEPT_BUFFER);
        assert_eq!(to_body(&big).unwrap().len(), KEPT_BUFFER + 2);
        BUFFER.with_borrow(|buffer| assert_eq!(buffer.capacity(), 0));
        assert_eq!(to_body(&"ok").unwrap(), b"\"ok\"");
        assert_eq!(to_body(&[1, 2]).unwrap(), b"[1,2]");
        BUFFER.with_borrow(|buffer| assert!(buffer.capacity() > 0));
    }

    #[test]
    fn responses_are_json_documents() {
        let response = Json(UserResponse::example()).into_response();
        assert_eq!(
            response.content_type(),
            Some("application/json; charset=utf-8")
        );
    }
}
