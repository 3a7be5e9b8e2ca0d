//! The account pages a mailed link opens: a real headless Chromium follows
//! the link from a real mail, and plain HTTP checks every way a form post
//! can go wrong; hostile bodies on the lifecycle endpoints get problems.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::{
    browser::browse,
    helpers::{PASSWORD, TestApp, assert_problem, backends},
    mail::MailSink,
};

const NEW_PASSWORD: &str = "typed into a real browser";
const RESET: &str = "/account/reset-password?token=";
const INVITE: &str = "/account/accept-invite?token=";
const VERIFY: &str = "/account/verify-email?token=";

async fn app_with(backend: &crate::helpers::Backend, sink: &MailSink) -> TestApp {
    crate::mail_flows::app_with(backend, sink, |_| {}).await
}

async fn login(app: &TestApp, email: &str, password: &str) -> StatusCode {
    app.post_json(
        "/auth/login",
        &json!({"email": email, "password": password}),
    )
    .await
    .status()
}

/// Posts a page's form as a browser would.
async fn post_form(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
    let response = app
        .request(Method::POST, path)
        .form(fields)
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn a_reset_link_from_a_real_mail_works_in_a_real_browser() {
    let backend = &backends()[0];
    let sink = MailSink::start().await;
    let app = app_with(backend, &sink).await;
    app.signed_up("ann@x.io").await;
    sink.next_to("ann@x.io").await; // the verification link
    let forgot = app
        .post_json("/auth/password/forgot", &json!({"email": "ann@x.io"}))
        .await;
    assert_eq!(forgot.status(), StatusCode::ACCEPTED);
    let link = sink.next_to("ann@x.io").await.link(RESET);

    let pages = browse(&link, &[("new_password", NEW_PASSWORD)], true).await;
    assert_eq!(
        pages["before"]["title"], "Choose a new password · Roster",
        "{pages}"
    );
    let after = pages["after"]["text"].as_str().unwrap();
    assert!(
        after.contains("Your password was changed. You can sign in with it now."),
        "{pages}"
    );
    assert_eq!(login(&app, "ann@x.io", NEW_PASSWORD).await, StatusCode::OK);
    assert_eq!(
        login(&app, "ann@x.io", PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sink.next_to("ann@x.io").await.subject,
        "Your password was changed"
    );

    // The same link again: the page says so in words.
    let again = browse(&link, &[("new_password", "yet another passphrase")], true).await;
    let text = again["after"]["text"].as_str().unwrap();
    assert!(
        text.contains("This link is invalid or has expired"),
        "{again}"
    );
    assert_eq!(login(&app, "ann@x.io", NEW_PASSWORD).await, StatusCode::OK);
}

#[tokio::test]
async fn an_invitation_is_accepted_in_a_real_browser() {
    let backend = &backends()[0];
    let sink = MailSink::start().await;
    let app = app_with(backend, &sink).await;
    let admin = app.login_admin().await;
    let created = app
        .send_json_auth(
            Method::POST,
            "/users",
            &admin.access,
            &json!({"email": "bo@x.io", "name": "<b>Bo</b>"}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let link = sink.next_to("bo@x.io").await.link(INVITE);
    let pages = browse(&link, &[("new_password", NEW_PASSWORD)], true).await;
    assert!(
        pages["after"]["text"]
            .as_str()
            .unwrap()
            .contains("Your account is ready"),
        "{pages}"
    );
    assert_eq!(login(&app, "bo@x.io", NEW_PASSWORD).await, StatusCode::OK);
}

#[tokio::test]
async fn page_posts_that_go_wrong_show_readable_messages() {
    for backend in backends() {
        let sink = MailSink::start().await;
        let app = app_with(&backend, &sink).await;
        app.signed_up("ann@x.io").await;
        let verify = sink.next_to("ann@x.io").await.token(VERIFY);
        app.post_json("/auth/password/forgot", &json!({"email": "ann@x.io"}))
            .await;
        let token = sink.next_to("ann@x.io").await.token(RESET);
        let path = "/account/reset-password";

        // Opening the page twice spends nothing.
        for _ in 0..2 {
            let page = app.get(&format!("{RESET}{token}")).await;
            assert_eq!(page.status(), StatusCode::OK);
        }

        // A password the policy refuses: the form again, with the reason.
        let (status, html) = post_form(
            &app,
            path,
            &[("token", token.as_str()), ("new_password", "short")],
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            html.contains("The new password must be at least 8 characters"),
            "{html}"
        );
        assert!(html.contains(&format!("value=\"{token}\"")), "{html}");
        let (status, html) = post_form(
            &app,
            path,
            &[("token", token.as_str()), ("new_password", "password")],
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(html.contains("The new password"), "{html}");

        // Broken tokens, NUL bytes, no token, a body that is not a form:
        // the broken-link message, never a failure.
        let long = "t".repeat(10_000);
        for fields in [
            vec![("token", "not-a-token"), ("new_password", NEW_PASSWORD)],
            vec![("token", "a\u{0}b"), ("new_password", NEW_PASSWORD)],
            vec![("token", long.as_str()), ("new_password", NEW_PASSWORD)],
            vec![("new_password", NEW_PASSWORD)],
            vec![("token", verify.as_str()), ("new_password", NEW_PASSWORD)],
        ] {
            let (status, html) = post_form(&app, path, &fields).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
            assert!(
                html.contains("This link is invalid or has expired"),
                "{html}"
            );
        }
        let json = app
            .request(Method::POST, path)
            .header("content-type", "application/json")
            .body(r#"{"token": "x"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(json.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let garbage = app
            .request(Method::POST, path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(b"token=%ff%fe&new_password=\xff\xfe".to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(garbage.status(), StatusCode::UNPROCESSABLE_ENTITY);

        // Another method is not allowed; the token still works after all that.
        let put = app.request(Method::PUT, path).send().await.unwrap();
        assert_eq!(put.status(), StatusCode::METHOD_NOT_ALLOWED);
        let mut allowed: Vec<&str> = put.headers()["allow"]
            .to_str()
            .unwrap()
            .split(", ")
            .collect();
        allowed.sort_unstable();
        assert_eq!(allowed, ["GET", "HEAD", "POST"]);
        let (status, html) = post_form(
            &app,
            path,
            &[("token", token.as_str()), ("new_password", NEW_PASSWORD)],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert_eq!(login(&app, "ann@x.io", NEW_PASSWORD).await, StatusCode::OK);

        // The verification page, posted by hand with its own token.
        let (status, html) = post_form(&app, "/account/verify-email", &[("token", &verify)]).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(html.contains("Your email address is confirmed."), "{html}");
    }
}

#[tokio::test]
async fn lifecycle_endpoints_answer_hostile_bodies_with_problems() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let big = vec![b'x'; 10 * 1024 * 1024];
        for path in [
            "/auth/password/forgot",
            "/auth/password/reset",
            "/auth/email/verify",
            "/auth/email/verify/resend",
            "/auth/email/confirm",
            "/account/reset-password",
        ] {
            match app
                .request(Method::POST, path)
                .header("content-type", "application/json")
                .body(big.clone())
                .send()
                .await
            {
                Ok(response) => {
                    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large")
                        .await;
                }
                Err(e) => assert!(e.is_request() || e.is_body() || e.is_connect(), "{e:?}"),
            }
        }
        let cases = [
            (
                "/auth/password/forgot",
                json!({"email": "a\u{0}@x.io"}),
                "email",
            ),
            (
                "/auth/email/verify/resend",
                json!({"email": "a\u{0}@x.io"}),
                "email",
            ),
            ("/auth/password/forgot", json!({"email": 7}), "email"),
            (
                "/auth/password/reset",
                json!({"token": "a\u{0}b", "new_password": NEW_PASSWORD}),
                "token",
            ),
            (
                "/auth/password/reset",
                json!({"token": "t".repeat(5_000), "new_password": NEW_PASSWORD}),
                "token",
            ),
            (
                "/auth/password/reset",
                json!({"token": "abc", "new_password": "x"}),
                "new_password",
            ),
            ("/auth/email/verify", json!({"token": ["a"]}), "token"),
            ("/auth/email/confirm", json!({"token": "\u{0}"}), "token"),
        ];
        for (path, body, field) in cases {
            let problem = assert_problem(
                app.post_json(path, &body).await,
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
            )
            .await;
            assert_eq!(
                problem["errors"][0]["field"], field,
                "{path} {body}: {problem}"
            );
        }
        for path in ["/auth/password/forgot", "/auth/password/reset"] {
            let response = app
                .request(Method::POST, path)
                .header("content-type", "application/json")
                .body(b"{\"email\": \"\xc3\x28@x.io\"}".to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
        }
    }
}
