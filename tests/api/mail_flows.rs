//! The account lifecycle over real mail: an SMTP server (the sink) receives
//! what Roster sends, and the tests follow the links in it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::{PASSWORD, TestApp, assert_problem, backends},
    mail::MailSink,
};

const NEW_PASSWORD: &str = "a brand new passphrase";
const RESET: &str = "/account/reset-password?token=";
const VERIFY: &str = "/account/verify-email?token=";
const INVITE: &str = "/account/accept-invite?token=";
const CONFIRM: &str = "/account/confirm-email?token=";

/// An app that mails through `sink`, retrying after half a second.
pub async fn app_with(
    backend: &crate::helpers::Backend,
    sink: &MailSink,
    edit: impl FnOnce(&mut roster::cli::Settings),
) -> TestApp {
    let url = sink.url();
    TestApp::spawn_configured(
        backend,
        |s| {
            s.smtp_url = Some(url);
            edit(s);
        },
        |c| {
            c.mail.retry_delays = vec![Duration::from_millis(500); 5];
            c.mail.poll_interval = Duration::from_millis(200);
        },
    )
    .await
}

/// Asserts the one `422` every bad token gets.
async fn assert_bad_token(response: reqwest::Response) {
    let body = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert_eq!(
        body["errors"],
        json!([{"field": "token", "message": "is invalid or expired", "pointer": "#/token"}]),
        "{body}"
    );
}

async fn reset(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    app.post_json(
        "/auth/password/reset",
        &json!({"token": token, "new_password": password}),
    )
    .await
}

#[tokio::test]
async fn a_forgotten_password_is_reset_through_the_mailed_link() {
    for backend in backends() {
        let sink = MailSink::start().await;
        let app = app_with(&backend, &sink, |_| {}).await;
        let (_, before) = app.signed_up("ann@x.io").await;
        let welcome = sink.next_to("ann@x.io").await;
        assert_eq!(welcome.subject, "Confirm your email address");

        // Known and unknown emails get the same answer; only the known one a mail.
        let known = app
            .post_json("/auth/password/forgot", &json!({"email": "ANN@x.io"}))
            .await;
        let unknown = app
            .post_json("/auth/password/forgot", &json!({"email": "nobody@x.io"}))
            .await;
        assert_eq!(
            (known.status(), unknown.status()),
            (StatusCode::ACCEPTED, StatusCode::ACCEPTED)
        );
        assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());
        let mail = sink.next_to("ann@x.io").await;
        assert_eq!(mail.subject, "Reset your password");
        let html = mail.html.clone().unwrap();
        assert!(html.contains("expires in 1 hour"), "{html}");
        let token = mail.token(RESET);
        assert!(token.len() >= 43, "at least 256 bits: {token}");
        assert!(
            mail.link(RESET)
                .starts_with(&app.address.replace("127.0.0.1", "localhost"))
        );

        // A second request within the minute sends nothing.
        let again = app
            .post_json("/auth/password/forgot", &json!({"email": "ann@x.io"}))
            .await;
        assert_eq!(again.status(), StatusCode::ACCEPTED);
        sink.expect_none_to("ann@x.io", Duration::from_millis(800))
            .await;
        sink.expect_none_to("nobody@x.io", Duration::from_millis(10))
            .await;

        // The password rules apply before the token is spent.
        let weak = reset(&app, &token, "short").await;
        assert_problem(weak, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;

        assert_eq!(
            reset(&app, &token, NEW_PASSWORD).await.status(),
            StatusCode::NO_CONTENT
        );
        // Every session ended; the new password logs in, the old one does not.
        assert_problem(
            app.get_auth("/users/me", &before.access).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        )
        .await;
        assert_eq!(
            app.try_login("ann@x.io", PASSWORD).await.status(),
            StatusCode::UNAUTHORIZED
        );
        let after = app.login("ann@x.io", NEW_PASSWORD).await;
        assert_eq!(app.me(&after.access).await["email_verified"], true);
        assert_eq!(
            sink.next_to("ann@x.io").await.subject,
            "Your password was changed"
        );

        // Single use; and the verification link is of another purpose.
        assert_bad_token(reset(&app, &token, NEW_PASSWORD).await).await;
        assert_bad_token(reset(&app, &welcome.token(VERIFY), NEW_PASSWORD).await).await;
        for garbage in ["x", "not a token at all", "\u{0}\u{0}", &"a".repeat(129)] {
            let response = reset(&app, garbage, NEW_PASSWORD).await;
            assert_eq!(
                response.status(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "{garbage:?}"
            );
        }
        sink.stop().await;
    }
}

#[tokio::test]
async fn registration_mails_a_verification_link_used_once() {
    for backend in backends() {
        let sink = MailSink::start().await;
        let app = app_with(&backend, &sink, |s| {
            s.require_verified_email = "true".into();
        })
        .await;
        app.register("ann@x.io").await;
        let mail = sink.next_to("ann@x.io").await;
        let token = mail.token(VERIFY);

        // Verification required: the right password learns it; a wrong one does not.
        let right = app.try_login("ann@x.io", PASSWORD).await;
        assert_problem(right, StatusCode::FORBIDDEN, "email-unverified").await;
        let wrong = app.try_login("ann@x.io", "not the password").await;
        assert_problem(wrong, StatusCode::UNAUTHORIZED, "unauthorized").await;

        // Opening the page (as a mail scanner does) does not use the token up.
        let page = app.get(&format!("{VERIFY}{token}")).await;
        assert_eq!(page.status(), StatusCode::OK);
        for (name, value) in [
            ("cache-control", "no-store"),
            ("referrer-policy", "no-referrer"),
        ] {
            assert_eq!(page.headers()[name], value);
        }
        let csp = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(page.text().await.unwrap().contains("<form method=\"post\""));

        let resent = app
            .post_json("/auth/email/verify/resend", &json!({"email": "ann@x.io"}))
            .await;
        assert_eq!(resent.status(), StatusCode::ACCEPTED);
        // The minute since the registration mail has not passed: nothing new.
        sink.expect_none_to("ann@x.io", Duration::from_millis(800))
            .await;

        let done = app
            .post_json("/auth/email/verify", &json!({"token": token}))
            .await;
        assert_eq!(done.status(), StatusCode::NO_CONTENT);
        let tokens = app.login("ann@x.io", PASSWORD).await;
        assert_eq!(app.me(&tokens.access).await["email_verified"], true);
        let reused = app
            .post_json("/auth/email/verify", &json!({"token": token}))
            .await;
        assert_bad_token(reused).await;
        // A verified account is sent no new link.
        app.post_json("/auth/email/verify/resend", &json!({"email": "ann@x.io"}))
            .await;
        sink.expect_none_to("ann@x.io", Duration::from_millis(500))
            .await;
        sink.stop().await;
    }
}

#[tokio::test]
async fn links_expire_and_newer_ones_void_older_ones() {
    for backend in backends() {
        let sink = MailSink::start().await;
        let app = app_with(&backend, &sink, |s| s.reset_token_ttl = "1".into()).await;
        let admin = app.login_admin().await;
        let (ann, _) = app.signed_up("ann@x.io").await;
        sink.next_to("ann@x.io").await;
        let path = format!("/users/{}/password-reset", ann["id"].as_str().unwrap());
        let mut tokens = Vec::new();
        for _ in 0..2 {
            let started = app.send_auth(Method::POST, &path, &admin.access).await;
            assert_eq!(started.status(), StatusCode::ACCEPTED);
            tokens.push(sink.next_to("ann@x.io").await.token(RESET));
        }
        // The older link was voided by the newer one.
        assert_bad_token(reset(&app, &tokens[0], NEW_PASSWORD).await).await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        // And the newer one has expired.
        assert_bad_token(reset(&app, &tokens[1], NEW_PASSWORD).await).await;

        // Not for non-admins; an unknown id is a 404.
        let own = app.login("ann@x.io", PASSWORD).await;
        let denied = app.send_auth(Method::POST, &path, &own.access).await;
        assert_problem(denied, StatusCode::FORBIDDEN, "forbidden").await;
        let unknown = app
            .send_auth(
                Method::POST,
                "/users/00000000-0000-7000-8000-000000000000/password-reset",
                &admin.access,
            )
            .await;
        assert_problem(unknown, StatusCode::NOT_FOUND, "not-found").await;
        sink.stop().await;
    }
}

#[tokio::test]
async fn an_invitation_sets_the_first_password() {
    for backend in backends() {
        let sink = MailSink::start().await;
        let app = app_with(&backend, &sink, |_| {}).await;
        let admin = app.login_admin().await;
        let created = app
            .send_json_auth(
                Method::POST,
                "/users",
                &admin.access,
                &json!({"email": "Bob@x.io", "name": "<b>Bob</b>"}),
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let bob: Value = created.json().await.unwrap();
        assert_eq!(
            (&bob["status"], &bob["email_verified"]),
            (&json!("invited"), &json!(false))
        );
        // No password yet: any login is the plain 401.
        for password in [PASSWORD, "!invited"] {
            let refused = app.try_login("bob@x.io", password).await;
            assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        }
        let mail = sink.next_to("bob@x.io").await;
        assert_eq!(mail.subject, "You are invited");
        let html = mail.html.clone().unwrap();
        assert!(
            !html.contains("<b>Bob</b>") && html.contains("Bob"),
            "escaped: {html}"
        );
        assert!(html.contains("7 days"), "{html}");
        let token = mail.token(INVITE);
        assert_eq!(
            reset(&app, &token, NEW_PASSWORD).await.status(),
            StatusCode::NO_CONTENT
        );
        let tokens = app.login("bob@x.io", NEW_PASSWORD).await;
        let me = app.me(&tokens.access).await;
        assert_eq!(
            (&me["status"], &me["email_verified"]),
            (&json!("active"), &json!(true))
        );
        assert_bad_token(reset(&app, &token, NEW_PASSWORD).await).await;
        sink.stop().await;
    }
}

#[tokio::test]
async fn an_own_email_change_waits_for_the_new_address() {
    for backend in backends() {
        let sink = MailSink::start().await;
        let app = app_with(&backend, &sink, |_| {}).await;
        let (ann, tokens) = app.signed_up("ann@x.io").await;
        sink.next_to("ann@x.io").await;
        let path = format!("/users/{}", ann["id"].as_str().unwrap());
        let changed = app
            .send_json_auth(
                Method::PATCH,
                &path,
                &tokens.access,
                &json!({"email": "ann@new.io", "name": "Ann", "current_password": PASSWORD}),
            )
            .await;
        assert_eq!(changed.status(), StatusCode::ACCEPTED);
        let now: Value = changed.json().await.unwrap();
        assert_eq!(
            (&now["email"], &now["name"]),
            (&json!("ann@x.io"), &json!("Ann"))
        );
        let mail = sink.next_to("ann@new.io").await;
        let token = mail.token(CONFIRM);
        // Taken meanwhile: a 409, and the token stays good.
        app.register("other@x.io").await;
        let confirmed = app
            .post_json("/auth/email/confirm", &json!({"token": token}))
            .await;
        assert_eq!(confirmed.status(), StatusCode::NO_CONTENT);
        let me = app
            .me(&app.login("ann@new.io", PASSWORD).await.access)
            .await;
        assert_eq!(
            (&me["email"], &me["email_verified"]),
            (&json!("ann@new.io"), &json!(true))
        );
        assert_eq!(
            sink.next_to("ann@x.io").await.subject,
            "Your email address was changed"
        );
        let again = app
            .post_json("/auth/email/confirm", &json!({"token": token}))
            .await;
        assert_bad_token(again).await;
        sink.stop().await;
    }
}

#[tokio::test]
async fn disabling_mails_the_account_and_forgot_sends_it_nothing() {
    for backend in backends() {
        let sink = MailSink::start().await;
        let app = app_with(&backend, &sink, |_| {}).await;
        let admin = app.login_admin().await;
        let (ann, _) = app.signed_up("ann@x.io").await;
        sink.next_to("ann@x.io").await;
        let path = format!("/users/{}", ann["id"].as_str().unwrap());
        let disabled = app
            .send_json_auth(
                Method::PATCH,
                &path,
                &admin.access,
                &json!({"status": "disabled"}),
            )
            .await;
        assert_eq!(disabled.status(), StatusCode::OK);
        assert_eq!(
            sink.next_to("ann@x.io").await.subject,
            "Your account was disabled"
        );
        let forgot = app
            .post_json("/auth/password/forgot", &json!({"email": "ann@x.io"}))
            .await;
        assert_eq!(forgot.status(), StatusCode::ACCEPTED);
        sink.expect_none_to("ann@x.io", Duration::from_millis(800))
            .await;
        sink.stop().await;
    }
}

#[tokio::test]
async fn lifecycle_requests_spend_the_address_budget() {
    for backend in backends() {
        let sink = MailSink::start().await;
        let app = app_with(&backend, &sink, |s| {
            s.login_max_failures_per_ip = "3".into();
        })
        .await;
        let calls = [
            ("/auth/password/forgot", json!({"email": "a@x.io"})),
            ("/auth/email/verify", json!({"token": "nope"})),
            ("/auth/email/verify/resend", json!({"email": "a@x.io"})),
        ];
        for (path, body) in &calls {
            let response = app.post_json(path, body).await;
            assert_ne!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
        }
        let over = app
            .post_json(
                "/auth/password/reset",
                &json!({"token": "nope", "new_password": NEW_PASSWORD}),
            )
            .await;
        assert_problem(over, StatusCode::TOO_MANY_REQUESTS, "rate-limited").await;
        sink.stop().await;
    }
}

#[tokio::test]
async fn queued_mail_waits_for_a_server_that_is_down() {
    for backend in backends() {
        // A port with nothing listening: the first tries are refused.
        let probe = MailSink::start().await;
        let port = probe.port();
        probe.stop().await;
        let app = TestApp::spawn_configured(
            &backend,
            |s| s.smtp_url = Some(format!("smtp://127.0.0.1:{port}?tls=none")),
            |c| {
                c.mail.retry_delays = vec![Duration::from_millis(300); 20];
                c.mail.poll_interval = Duration::from_millis(100);
            },
        )
        .await;
        app.register("ann@x.io").await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let metrics = app.get("/metrics").await.text().await.unwrap();
        assert!(
            metrics.contains(r#"roster_mail_total{outcome="retried",template="verify-email"}"#),
            "{metrics}"
        );
        // The server comes back: the mail arrives.
        let sink = MailSink::start_on(port, None).await;
        let mail = sink.next_to("ann@x.io").await;
        assert_eq!(mail.subject, "Confirm your email address");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let metrics = app.get("/metrics").await.text().await.unwrap();
        assert!(
            metrics.contains(r#"roster_mail_total{outcome="sent",template="verify-email"} 1"#),
            "{metrics}"
        );
        assert!(metrics.contains("roster_mail_outbox 0"), "{metrics}");
        sink.stop().await;
    }
}

#[tokio::test]
async fn a_refused_mail_is_recorded_and_not_retried() {
    for backend in backends() {
        let sink = MailSink::start_on(0, Some(550)).await;
        let app = app_with(&backend, &sink, |_| {}).await;
        app.register("ann@x.io").await;
        sink.wait_for_refused(1).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(sink.refused(), 1, "a 5xx is not retried");
        let metrics = app.get("/metrics").await.text().await.unwrap();
        assert!(
            metrics.contains(r#"roster_mail_total{outcome="failed",template="verify-email"} 1"#),
            "{metrics}"
        );
        sink.stop().await;
    }
}

#[tokio::test]
async fn two_instances_share_one_outbox_and_send_each_mail_once() {
    for backend in backends() {
        let sink = MailSink::start().await;
        let app = app_with(&backend, &sink, |_| {}).await;
        let url = sink.url();
        let sibling = app.sibling_with(|s| s.smtp_url = Some(url)).await;
        let admin = app.login_admin().await;
        let count = 12;
        for i in 0..count {
            let created = app
                .send_json_auth(
                    Method::POST,
                    "/users",
                    &admin.access,
                    &json!({"email": format!("u{i}@x.io")}),
                )
                .await;
            assert_eq!(created.status(), StatusCode::CREATED);
        }
        for i in 0..count {
            sink.next_to(&format!("u{i}@x.io")).await;
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(sink.received().len(), count, "each mail once");
        drop(sibling);
        sink.stop().await;
    }
}
