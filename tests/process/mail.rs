//! Mail from the real binary: the tokens of mailed links never reach a log
//! line, and mail queued when the process is killed is delivered by the
//! next one.

use std::{
    net::TcpListener,
    path::Path,
    time::{Duration, Instant},
};

use serde_json::json;
use sqlx::Connection as _;

use crate::process::Process;

const PASSWORD: &str = "the first mail-test passphrase";
const NEW_PASSWORD: &str = "the second mail-test passphrase";

/// The mails written into `dir` so far, with quoted-printable soft line
/// breaks and `=3D` undone (enough to read a link back).
fn mails(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .map(|m| {
            m.replace("=\r\n", "")
                .replace("=\n", "")
                .replace("=3D", "=")
        })
        .collect()
}

/// Waits for a mail in `dir` holding a link to `page`; returns its token.
async fn token_for(dir: &Path, page: &str) -> String {
    let prefix = format!("{page}?token=");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = mails(dir).iter().find_map(|mail| {
            let at = mail.find(&prefix)? + prefix.len();
            Some(
                mail[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect::<String>(),
            )
        });
        if let Some(token) = found {
            return token;
        }
        assert!(Instant::now() < deadline, "no mail with a link to {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn link_tokens_never_reach_the_logs() {
    let mail_dir = tempfile::tempdir().unwrap();
    let dir = mail_dir.path().display().to_string();
    let server = Process::start(&[("ROSTER_MAIL_DIR", &dir), ("RUST_LOG", "trace")]);
    let client = reqwest::Client::new();
    let post =
        |path: &str, body: serde_json::Value| client.post(server.url(path)).json(&body).send();

    let register = post(
        "/auth/register",
        json!({"email": "ann@x.io", "password": PASSWORD}),
    )
    .await
    .unwrap();
    assert_eq!(register.status(), 201);
    let verify = token_for(mail_dir.path(), "/account/verify-email").await;
    // Opened in a browser: the token is in the URL.
    let page = client
        .get(server.url(&format!("/account/verify-email?token={verify}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let verified = post("/auth/email/verify", json!({"token": verify}))
        .await
        .unwrap();
    assert_eq!(verified.status(), 204);
    // Spent: the failure is logged, still without the token.
    let again = post("/auth/email/verify", json!({"token": verify}))
        .await
        .unwrap();
    assert_eq!(again.status(), 422);

    let forgot = post("/auth/password/forgot", json!({"email": "ann@x.io"}))
        .await
        .unwrap();
    assert_eq!(forgot.status(), 202);
    let reset = token_for(mail_dir.path(), "/account/reset-password").await;
    let page = client
        .get(server.url(&format!("/account/reset-password?token={reset}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let form = client
        .post(server.url("/account/reset-password"))
        .form(&[("token", reset.as_str()), ("new_password", NEW_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    let metrics = client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let (_, lines) = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.stop()
    })
    .await
    .unwrap();
    assert!(
        lines.iter().any(|l| l.contains("mail sent")),
        "the sender logged its work: {lines:?}"
    );
    // Each audit event is one JSON line marked `"audit": true`.
    let audited: Vec<serde_json::Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["audit"] == true)
        .collect();
    for event in [
        "user.registered",
        "email.verified",
        "password.reset_requested",
        "password.reset",
    ] {
        assert!(
            audited
                .iter()
                .any(|l| l["event"] == event && l["subject_id"].is_string()),
            "no audit line for {event}: {audited:?}"
        );
    }
    for secret in [verify.as_str(), reset.as_str(), PASSWORD, NEW_PASSWORD] {
        for line in &lines {
            assert!(!line.contains(secret), "a secret leaked into: {line}");
        }
        assert!(!metrics.contains(secret), "a secret is in /metrics");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mail_queued_when_the_process_is_killed_is_sent_by_the_next() {
    // An SMTP server that accepts connections and never answers: the mail
    // is in flight when the process dies.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let smtp = format!("smtp://127.0.0.1:{port}?tls=none");
    let server = Process::start(&[("ROSTER_SMTP_URL", &smtp)]);
    let register = reqwest::Client::new()
        .post(server.url("/auth/register"))
        .json(&json!({"email": "ann@x.io", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), 201);
    let held =
        tokio::task::spawn_blocking(move || silent.accept().map(|(stream, _)| (stream, silent)))
            .await
            .unwrap()
            .unwrap();
    let database_url = server.database_url.clone();
    let dir = server.kill();
    drop(held);

    // The mail is still there, whole; the dead sender's claim would hold it
    // for five minutes, which the test lets pass at once.
    let mut conn = sqlx::SqliteConnection::connect(&database_url)
        .await
        .unwrap();
    let (recipient, message): (String, Option<String>) =
        sqlx::query_as("SELECT recipient, message FROM mail_outbox")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(recipient, "ann@x.io");
    assert!(message.is_some_and(|m| m.contains("/account/verify-email?token")));
    sqlx::query("UPDATE mail_outbox SET claimed_until = NULL, next_attempt_at = created_at")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let mail_dir = tempfile::tempdir().unwrap();
    let mail_path = mail_dir.path().display().to_string();
    let next = Process::start_in(dir, &[("ROSTER_MAIL_DIR", &mail_path)]);
    let token = token_for(mail_dir.path(), "/account/verify-email").await;
    let verified = reqwest::Client::new()
        .post(next.url("/auth/email/verify"))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), 204, "the delivered link works");
    assert_eq!(mails(mail_dir.path()).len(), 1, "{:?}", next.lines());
}
