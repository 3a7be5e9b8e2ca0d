//! `ROSTER_PASSWORD_HASH=argon2id`: new hashes are argon2id, old bcrypt
//! ones still verify, and a login on an outdated hash stores a new one of
//! the same pre-hashed password.

use std::time::Duration;

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait as _, Statement};
use serde_json::json;

use crate::helpers::{TestApp, backends};

async fn stored_hash(app: &TestApp, email: &str) -> String {
    let conn = app.db.conn();
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            format!("SELECT password_hash FROM users WHERE email = '{email}'"),
        ))
        .await
        .unwrap()
        .expect("the user exists");
    row.try_get::<String>("", "password_hash").unwrap()
}

fn argon2id(s: &mut roster::cli::Settings) {
    s.password_hash = "argon2id".into();
    // Small for the tests' speed; the default is OWASP's 19 MiB, t = 2.
    s.argon2_memory_kib = "1024".into();
    s.argon2_iterations = "1".into();
}

#[tokio::test]
async fn a_login_on_a_bcrypt_hash_upgrades_it_to_argon2id_beyond_byte_72() {
    for backend in backends() {
        let bcrypt = TestApp::spawn(&backend).await;
        // 100 bytes; another password equal to it in its first 72 bytes.
        let long = format!("{}{}", "l".repeat(72), "o".repeat(28));
        let same_start = format!("{}{}", "l".repeat(72), "x".repeat(28));
        let registered = bcrypt
            .post_json(
                "/auth/register",
                &json!({"email": "ann@x.io", "password": long}),
            )
            .await;
        assert_eq!(registered.status(), StatusCode::CREATED);
        assert!(
            stored_hash(&bcrypt, "ann@x.io")
                .await
                .starts_with("sha256-bcrypt$")
        );

        let argon = bcrypt.sibling_with(argon2id).await;
        assert_eq!(
            argon.try_login("ann@x.io", &long).await.status(),
            StatusCode::OK
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let upgraded = loop {
            let hash = stored_hash(&argon, "ann@x.io").await;
            if hash.starts_with("sha256-argon2id$$argon2id$v=19$m=1024,t=1,p=1$") {
                break hash;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never rehashed: {hash}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(
            argon.try_login("ann@x.io", &long).await.status(),
            StatusCode::OK
        );
        assert_eq!(
            argon.try_login("ann@x.io", &same_start).await.status(),
            StatusCode::UNAUTHORIZED
        );
        // Up to date now: logging in again leaves the hash alone.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(stored_hash(&argon, "ann@x.io").await, upgraded);

        // New accounts get argon2id at once; a bcrypt instance still verifies them.
        argon
            .post_json(
                "/auth/register",
                &json!({"email": "bo@x.io", "password": long}),
            )
            .await;
        assert!(
            stored_hash(&argon, "bo@x.io")
                .await
                .starts_with("sha256-argon2id$")
        );
        assert_eq!(
            bcrypt.try_login("bo@x.io", &long).await.status(),
            StatusCode::OK
        );
        assert_eq!(
            bcrypt.try_login("bo@x.io", &same_start).await.status(),
            StatusCode::UNAUTHORIZED
        );
        drop(argon);
    }
}

#[test]
fn argon2id_settings_are_checked() {
    let mut settings =
        crate::helpers::test_settings("sqlite:///tmp/roster-config-check.db?mode=rwc");
    argon2id(&mut settings);
    assert!(roster::config::Config::from_settings(&settings).is_ok());
    for (edit, name) in [
        (
            Box::new(|s: &mut roster::cli::Settings| s.password_hash = "md5".into())
                as Box<dyn Fn(&mut roster::cli::Settings)>,
            "ROSTER_PASSWORD_HASH",
        ),
        (
            Box::new(|s| s.argon2_memory_kib = "4".into()),
            "ROSTER_ARGON2_MEMORY_KIB",
        ),
        (
            Box::new(|s| s.argon2_iterations = "0".into()),
            "ROSTER_ARGON2_ITERATIONS",
        ),
    ] {
        let mut settings =
            crate::helpers::test_settings("sqlite:///tmp/roster-config-check.db?mode=rwc");
        argon2id(&mut settings);
        edit(&mut settings);
        let error = roster::config::Config::from_settings(&settings).unwrap_err();
        assert!(error.to_string().contains(name), "{error}");
    }
}
