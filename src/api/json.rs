//! `Json<T>`: the JSON response payload of every endpoint.
//!
//! poem-openapi's own `Json<T>` renders a response by building a
//! `serde_json::Value` tree from `T` and then writing the tree out: every
//! field name and every string is allocated twice, and a page of users has
//! hundreds of them. This payload writes `T`
//! straight out with serde, while the document still describes `T` with its
//! poem-openapi schema. Each response type therefore derives both `Object`
//! and `Serialize`; `tests::serde_matches_the_documented_shape` checks that
//! the two agree. A type on a hot path may write its JSON itself
//! ([`WriteJson`]); a test holds it to serde_json's bytes.

use std::cell::RefCell;

use poem::{IntoResponse, Response, http::StatusCode};
use poem_openapi::{
    payload::Payload,
    registry::{MetaSchemaRef, Registry},
    types::Type,
};
use serde::Serialize;

/// A JSON response body, serialized by serde and documented as `T`.
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

/// The media type the document declares: generators treat only the bare
/// `application/json` (and `*+json`) as JSON.
pub const DECLARED_CONTENT_TYPE: &str = "application/json";

/// The `Content-Type` a response is served with; the charset parameter
/// changes nothing for JSON, but some clients like to see it.
pub const SERVED_CONTENT_TYPE: &str = "application/json; charset=utf-8";

impl<T: Type> Payload for Json<T> {
    const CONTENT_TYPE: &'static str = DECLARED_CONTENT_TYPE;

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// A response body's JSON. By default serde_json writes it; a page of users
/// writes itself, because serde_json scans every byte of every string for
/// characters to escape, the field names, ids and timestamps included,
/// where none can occur (`k6/callgrind.sh` on W2c counts it). Whatever writes it,
/// the bytes are serde_json's (tests compare them).
pub trait WriteJson: Serialize {
    /// Appends `self` as JSON to `out`.
    ///
    /// # Errors
    ///
    /// What serde_json reports.
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, self)
    }
}

impl<T: Serialize> WriteJson for Vec<T> {}

impl WriteJson for serde_json::Value {}

/// Appends `text` as a JSON string, escaped exactly as serde_json escapes
/// it: only `"`, `\` and control characters need escaping, and most
/// strings have none, which one pass over the bytes tells (without
/// stopping early, so that the compiler can check many bytes at once).
pub fn write_str(out: &mut Vec<u8>, text: &str) -> serde_json::Result<()> {
    let escapes = text.bytes().fold(false, |found, b| {
        found | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if escapes {
        return serde_json::to_writer(out, text);
    }
    out.reserve(text.len() + 2);
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
    Ok(())
}

/// Largest buffer a thread keeps between responses.
const KEPT_BUFFER: usize = 64 * 1024;

thread_local! {
    /// Where this thread writes responses: grown once to the size of the
    /// largest recent response instead of by doubling in every response.
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// `value` as JSON, in a body allocated once at its exact size.
fn to_body<T: WriteJson>(value: &T) -> serde_json::Result<Vec<u8>> {
    BUFFER.with_borrow_mut(|buffer| {
        buffer.clear();
        let written = value.write_json(buffer).map(|()| buffer.to_vec());
        if buffer.capacity() > KEPT_BUFFER {
            *buffer = Vec::new();
        }
        written
    })
}

impl<T: Type + WriteJson> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match to_body(&self.0) {
            Ok(body) => Response::builder()
                .content_type(SERVED_CONTENT_TYPE)
                .body(body),
            // Only a map with non-string keys fails; none of ours has one.
            Err(e) => {
                tracing::error!(error = %e, "serializing a response failed");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use poem_openapi::types::{Example as _, ToJSON};

    use super::*;
    use crate::api::{
        auth::{SessionResponse, TokenPair},
        health::{DatabaseCheck, HealthChecks, HealthReport, PoolFigures, Status},
        types::{Nullable, RoleName, StatusName, Timestamp, UserResponse},
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
            last_login_at: Nullable(None),
            status: StatusName::Disabled,
            email_verified: false,
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
        let big = vec!["x".repeat(KEPT_BUFFER)];
        assert_eq!(to_body(&big).unwrap().len(), KEPT_BUFFER + 4);
        BUFFER.with_borrow(|buffer| assert_eq!(buffer.capacity(), 0));
        assert_eq!(to_body(&vec!["ok"]).unwrap(), b"[\"ok\"]");
        assert_eq!(to_body(&vec![1, 2]).unwrap(), b"[1,2]");
        BUFFER.with_borrow(|buffer| assert!(buffer.capacity() > 0));
    }

    /// Strings that need escaping, and strings that look as if they might.
    const TRICKY: [&str; 12] = [
        "",
        "plain",
        "quote\"in",
        "back\\slash",
        "\\\"",
        "tab\tnew\nline\r",
        "\u{0}nul \u{1f} unit",
        "del \u{7f} kept",
        "é ü 漢字 😀",
        "\u{2028} line separator",
        "</script>",
        "100% _under_",
    ];

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        for text in TRICKY {
            let mut out = Vec::new();
            write_str(&mut out, text).unwrap();
            assert_eq!(out, serde_json::to_vec(text).unwrap(), "{text:?}");
        }
        for byte in 0..=0x7f_u8 {
            let text = format!("a{}b", char::from(byte));
            let mut out = Vec::new();
            write_str(&mut out, &text).unwrap();
            assert_eq!(out, serde_json::to_vec(&text).unwrap(), "{byte:#x}");
        }
    }

    #[test]
    fn users_and_pages_write_what_serde_writes() {
        let times = [
            "2026-11-26T10:00:00.123456Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999Z",
            "1970-01-01T00:00:00.000001Z",
        ]
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .unwrap()
                .with_timezone(&chrono::Utc)
        })
        .into_iter()
        // Years past 9999 and before 0, which serde writes through chrono.
        .chain(
            [253_402_300_800, -62_198_755_200]
                .map(|secs| chrono::DateTime::from_timestamp(secs, 5_000).unwrap()),
        )
        .map(Timestamp)
        .collect::<Vec<_>>();
        let mut users = Vec::new();
        for (i, text) in TRICKY.iter().enumerate() {
            for name in [None, Some(text.to_string())] {
                users.push(UserResponse {
                    id: uuid::Uuid::now_v7(),
                    email: crate::api::params::Text(format!("{text}@example.com")),
                    name: Nullable(name),
                    role: if i % 2 == 0 {
                        RoleName::Admin
                    } else {
                        RoleName::User
                    },
                    created_at: times[i % times.len()],
                    updated_at: times[(i + 1) % times.len()],
                    status: [
                        StatusName::Active,
                        StatusName::Invited,
                        StatusName::Disabled,
                    ][i % 3],
                    email_verified: i % 2 == 1,
                    last_login_at: Nullable((i % 3 != 0).then(|| times[(i + 2) % times.len()])),
                });
            }
        }
        for user in &users {
            let mut out = Vec::new();
            user.write_json(&mut out).unwrap();
            assert_eq!(out, serde_json::to_vec(user).unwrap(), "{user:?}");
        }
        for (items, next_cursor) in [
            (0, None),
            (1, Some("eyJzb3J0Ijp7fX0".to_owned())),
            (users.len(), Some("quote\"d".to_owned())),
        ] {
            let page = UserPageResponse {
                items: users[..items].to_vec(),
                page: i64::MAX,
                per_page: 20,
                total: u64::MAX,
                next_cursor: Nullable(next_cursor),
            };
            let mut out = Vec::new();
            page.write_json(&mut out).unwrap();
            assert_eq!(out, serde_json::to_vec(&page).unwrap());
        }
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
