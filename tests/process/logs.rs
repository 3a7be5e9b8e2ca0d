//! Log lines: JSON, correlated, and free of secrets.

use serde_json::{Value, json};

use crate::process::Process;

const SECRET: &str = "log-test-secret-log-test-secret-0123456789";
const PASSWORD: &str = "my very own log-test passphrase";

#[tokio::test(flavor = "multi_thread")]
async fn logs_are_json_lines_with_request_ids_and_no_secrets() {
    let server = Process::start(&[("ROSTER_JWT_SECRET", SECRET), ("RUST_LOG", "trace")]);
    let client = reqwest::Client::new();
    let register = client
        .post(server.url("/auth/register"))
        .header("x-request-id", "log-test-register")
        .json(&json!({"email": "ann@x.io", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), 201);
    let login: Value = client
        .post(server.url("/auth/login"))
        .json(&json!({"email": "ann@x.io", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = login["access_token"].as_str().unwrap().to_owned();
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();
    let refreshed: Value = client
        .post(server.url("/auth/refresh"))
        .json(&json!({"refresh_token": refresh}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let me = client
        .get(server.url("/users/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let (_, lines) = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.stop()
    })
    .await
    .unwrap();

    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for line in &parsed {
        assert!(
            line["timestamp"].is_string() && line["level"].is_string(),
            "{line}"
        );
    }
    let access_line = parsed
        .iter()
        .find(|l| {
            l["message"] == "request finished" && l["span"]["request_id"] == "log-test-register"
        })
        .expect("access line carries the caller's request id");
    assert_eq!(access_line["status"], 201);
    assert_eq!(access_line["route"], "/auth/register");
    // Fields recorded on the span after it opened, each added to the rest.
    assert_eq!(
        access_line["span"]["http.route"], "/auth/register",
        "{access_line}"
    );
    assert_eq!(
        access_line["span"]["http.response.status_code"], 201,
        "{access_line}"
    );
    assert_eq!(
        access_line["span"]["client.address"], "127.0.0.1",
        "{access_line}"
    );
    assert!(
        access_line["span"]["trace_id"]
            .as_str()
            .is_some_and(|t| t.len() == 32),
        "{access_line}"
    );
    assert!(
        access_line["span"]["span_id"]
            .as_str()
            .is_some_and(|t| t.len() == 16),
        "{access_line}"
    );

    let secrets = [
        PASSWORD,
        SECRET,
        &access,
        &refresh,
        refreshed["access_token"].as_str().unwrap(),
        refreshed["refresh_token"].as_str().unwrap(),
        "sha256-bcrypt$",
        "Bearer ey",
    ];
    for line in &lines {
        for secret in secrets {
            assert!(!line.contains(secret), "a secret leaked into: {line}");
        }
    }
}
