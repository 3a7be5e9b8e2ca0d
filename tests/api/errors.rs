//! Framework-level failures are problem documents with the request id.

use reqwest::{Method, StatusCode};

use crate::helpers::{TestApp, assert_problem, backends};

#[tokio::test]
async fn unknown_route_is_a_404_problem() {
    let app = TestApp::spawn(&backends()[0]).await;
    assert_problem(
        app.get("/no/such/route").await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
}

#[tokio::test]
async fn wrong_method_is_a_405_problem() {
    let app = TestApp::spawn(&backends()[0]).await;
    let response = app
        .request(Method::DELETE, "/health/live")
        .send()
        .await
        .unwrap();
    assert_problem(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
    )
    .await;
}

#[tokio::test]
async fn oversized_body_is_a_413_problem_on_any_route() {
    let app = TestApp::spawn_with(&backends()[0], |s| s.max_body_bytes = "1024".into()).await;
    let response = app
        .request(Method::POST, "/health/live")
        .header("content-type", "application/json")
        .body(vec![b' '; 2048])
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large").await;
}

#[tokio::test]
async fn request_id_is_echoed_when_sane_and_replaced_otherwise() {
    let app = TestApp::spawn(&backends()[0]).await;
    let cases = [
        ("abc.DEF_123-x", true),
        (&"a".repeat(128)[..], true),
        (&"a".repeat(129)[..], false),
        ("has space", false),
        ("quote\"s", false),
        ("semi;colon", false),
    ];
    for (sent, echoed) in cases {
        let response = app
            .request(Method::GET, "/health/live")
            .header("x-request-id", sent)
            .send()
            .await
            .unwrap();
        let got = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        if echoed {
            assert_eq!(got, sent, "sane id {sent:?} is echoed");
        } else {
            assert_ne!(got, sent, "insane id {sent:?} is replaced");
            assert!(!got.is_empty() && got.len() <= 128);
            assert!(
                got.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            );
        }
    }
    let a = app.get("/health/live").await.headers()["x-request-id"].clone();
    let b = app.get("/health/live").await.headers()["x-request-id"].clone();
    assert_ne!(a, b, "generated ids differ");
}

#[tokio::test]
async fn problem_carries_the_callers_request_id() {
    let app = TestApp::spawn(&backends()[0]).await;
    let response = app
        .request(Method::GET, "/nope")
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, StatusCode::NOT_FOUND, "not-found").await;
    assert_eq!(body["request_id"], "trace-me-42");
}
