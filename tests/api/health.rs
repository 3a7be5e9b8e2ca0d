//! Health endpoints, `/docs` and `/openapi.json`.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, backends};

#[tokio::test]
async fn liveness_returns_ok() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let response = app.get("/health/live").await;
        assert_eq!(response.status(), StatusCode::OK, "{backend:?}");
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            serde_json::json!({"status": "ok"})
        );
    }
}

#[tokio::test]
async fn readiness_returns_ok_when_migrated() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let response = app.get("/health/ready").await;
        assert_eq!(response.status(), StatusCode::OK, "{backend:?}");
        assert_eq!(response.json::<Value>().await.unwrap()["status"], "ok");
    }
}

#[tokio::test]
async fn health_reports_version_uptime_and_pool() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let response = app.get("/health").await;
        assert_eq!(response.status(), StatusCode::OK, "{backend:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "ok");
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
        assert!(body["uptime_seconds"].is_u64());
        let db = &body["checks"]["database"];
        assert_eq!(db["status"], "ok");
        assert!(db["latency_ms"].as_f64().unwrap() >= 0.0);
        assert_eq!(db["pool"]["max"], 4);
        assert!(db["pool"]["size"].as_u64().unwrap() >= 1);
    }
}

#[tokio::test]
async fn health_and_readiness_report_a_lost_database() {
    // Closing the pool is what a lost database looks like from inside.
    let backend = &backends()[0];
    let app = TestApp::spawn_with(backend, |s| s.db_acquire_timeout = "1".into()).await;
    app.db.close().await;
    let response = app.get("/health/ready").await;
    crate::helpers::assert_problem(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json; charset=utf-8"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["database"]["latency_ms"], Value::Null);
}

#[tokio::test]
async fn docs_serve_swagger_ui_and_the_document() {
    let app = TestApp::spawn(&backends()[0]).await;
    let docs = app.get("/docs").await;
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("swagger"));

    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert_eq!(spec["info"]["title"], "Roster");
    assert_eq!(spec["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(spec["info"]["contact"]["name"].is_string());
    assert!(spec["info"]["license"]["name"].is_string());
    assert!(spec["servers"][0]["url"].is_string());
    assert!(spec["components"]["schemas"]["Problem"].is_object());

    let mut operation_ids = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: operationId"));
            assert!(
                id.chars().next().unwrap().is_ascii_lowercase(),
                "{id} is camelCase"
            );
            assert_eq!(op["tags"].as_array().unwrap().len(), 1, "{id}: one tag");
            assert!(op["summary"].is_string(), "{id}: summary");
            let problem = &op["responses"]["500"]["content"]["application/problem+json"];
            assert!(problem.is_object(), "{id}: declares problem responses");
            operation_ids.push(id.to_owned());
        }
    }
    let count = operation_ids.len();
    operation_ids.sort();
    operation_ids.dedup();
    assert_eq!(operation_ids.len(), count, "operationIds are unique");
}

#[tokio::test]
async fn docs_can_be_turned_off() {
    let app = TestApp::spawn_with(&backends()[0], |s| s.docs = "false".into()).await;
    assert_eq!(app.get("/docs").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/openapi.json").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn readiness_flips_when_postgres_goes_away_and_recovers_without_restart() {
    let Some((backend, admin_url)) = crate::helpers::postgres() else {
        return;
    };
    let app = TestApp::spawn_with(&backend, |s| s.db_acquire_timeout = "1".into()).await;
    assert_eq!(app.get("/health/ready").await.status(), StatusCode::OK);
    let (_, tokens) = app.signed_up("ann@x.io").await;
    let name = database_name(&app).await;
    let admin = |sql: String| postgres_admin(&admin_url, sql);

    // The database refuses connections and every existing one is terminated.
    admin(format!(
        r#"ALTER DATABASE "{name}" ALLOW_CONNECTIONS false"#
    ))
    .await;
    admin(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .await;
    let started = std::time::Instant::now();
    let response = app.get("/health/ready").await;
    crate::helpers::assert_problem(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        app.get("/health").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    // API requests get 503 problems, not 500s or hangs past the acquire timeout.
    for request in [
        app.request(reqwest::Method::GET, "/users/me")
            .bearer_auth(&tokens.access),
        app.request(reqwest::Method::POST, "/auth/login")
            .json(&serde_json::json!({"email": "ann@x.io", "password": crate::helpers::PASSWORD})),
        app.request(reqwest::Method::POST, "/auth/register")
            .json(&serde_json::json!({"email": "bob@x.io", "password": crate::helpers::PASSWORD})),
    ] {
        let started = std::time::Instant::now();
        let response = request.send().await.unwrap();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        crate::helpers::assert_problem(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            .await;
    }

    // It comes back: so does readiness, with no restart.
    admin(format!(r#"ALTER DATABASE "{name}" ALLOW_CONNECTIONS true"#)).await;
    let mut recovered = false;
    for _ in 0..50 {
        if app.get("/health/ready").await.status() == StatusCode::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recovered, "readiness recovers");
    assert_eq!(
        app.get_auth("/users/me", &tokens.access).await.status(),
        StatusCode::OK
    );
    // Nothing half-written: the registration attempted during the outage did not happen.
    app.register("bob@x.io").await;
}

/// The test's own database on Postgres.
async fn database_name(app: &TestApp) -> String {
    use sea_orm::ConnectionTrait as _;
    let row = app
        .db
        .conn()
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT current_database() AS name",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "name").unwrap()
}

/// Runs one statement on a connection of its own, outside the app's pool.
async fn postgres_admin(admin_url: &str, sql: String) {
    use sqlx::{Connection as _, Executor as _};
    let mut conn = sqlx::PgConnection::connect(admin_url).await.unwrap();
    conn.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    let _ = conn.close().await;
}

/// Postgres closes every connection of the pool while they sit idle (as a
/// restart or `idle_session_timeout` would): the next requests are served,
/// because a connection idle for over a second is pinged before use and a
/// dead one replaced.
#[tokio::test]
async fn postgres_connections_closed_while_idle_are_replaced_before_use() {
    let Some((backend, admin_url)) = crate::helpers::postgres() else {
        return;
    };
    let app = TestApp::spawn(&backend).await;
    let (_, tokens) = app.signed_up("ann@x.io").await;
    let name = database_name(&app).await;
    postgres_admin(
        &admin_url,
        format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    for _ in 0..3 {
        assert_eq!(
            app.get_auth("/users/me", &tokens.access).await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(app.get("/health/ready").await.status(), StatusCode::OK);
}

/// A deliberately small pool under more concurrent requests than it has
/// connections: requests queue for a connection, and those still waiting at
/// the acquire timeout get 503 problems; none hangs, none is a 500, and the
/// pool serves again as soon as connections come back.
#[tokio::test]
async fn a_small_pool_queues_then_answers_503_and_recovers() {
    use std::time::{Duration, Instant};
    for backend in crate::helpers::backends() {
        let app = TestApp::spawn_with(&backend, |s| {
            s.db_max_connections = Some("2".into());
            s.db_min_connections = "0".into();
            s.db_acquire_timeout = "1".into();
        })
        .await;
        let (_, tokens) = app.signed_up("ann@x.io").await;
        let burst = |n: usize| {
            let requests = (0..n).map(|_| {
                let request = app
                    .request(reqwest::Method::GET, "/users/me")
                    .bearer_auth(&tokens.access);
                async move {
                    let started = Instant::now();
                    let response = request.send().await.unwrap();
                    let status = response.status();
                    let body: serde_json::Value = response.json().await.unwrap();
                    (status, body, started.elapsed())
                }
            });
            futures_util::future::join_all(requests)
        };

        // Both connections are taken: every request waits out the acquire
        // timeout (1 s), then gets a 503 problem.
        let held = [
            app.db.hold_connection().await.unwrap(),
            app.db.hold_connection().await.unwrap(),
        ];
        let answers = burst(32).await;
        for (status, body, took) in &answers {
            assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
            assert_eq!(body["type"], "https://roster.dev/problems/unavailable");
            assert!(
                *took >= Duration::from_millis(900),
                "{took:?}: did not queue"
            );
            assert!(*took < Duration::from_secs(5), "{took:?}: hung");
        }
        drop(held);

        // Connections back: a burst far larger than the pool queues and is served.
        let answers = burst(64).await;
        let statuses: Vec<_> = answers.iter().map(|(s, _, _)| *s).collect();
        assert_eq!(
            crate::helpers::tally(&statuses, [StatusCode::OK]),
            [64],
            "{statuses:?}"
        );
        assert!(
            answers
                .iter()
                .all(|(_, _, took)| *took < Duration::from_secs(5))
        );
    }
}

/// Another process holds SQLite's write lock: this process's writers queue
/// for their turn, and give up with a 503 at the acquire timeout instead of
/// each waiting out the busy timeout of the writer ahead of it.
#[tokio::test]
async fn sqlite_writers_blocked_by_another_process_get_503_in_bounded_time() {
    use sqlx::{Connection as _, Executor as _};
    use std::time::{Duration, Instant};
    let app = TestApp::spawn_with(&crate::helpers::backends()[0], |s| {
        s.db_acquire_timeout = "1".into();
    })
    .await;
    let admin = app.login_admin().await;
    let me = app.me(&admin.access).await;
    let path = format!("/users/{}", me["id"].as_str().unwrap());

    // "Another process": a connection of its own holding the write lock.
    let url = app.database_url.trim_start_matches("sqlite://").to_owned();
    let file = url.split('?').next().unwrap().to_owned();
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{file}"))
        .await
        .unwrap();
    other.execute("BEGIN IMMEDIATE").await.unwrap();

    let started = Instant::now();
    let patches = (0..4).map(|i| {
        app.request(reqwest::Method::PATCH, &path)
            .bearer_auth(&admin.access)
            .header("content-type", "application/merge-patch+json")
            .body(format!(r#"{{"name": "n{i}"}}"#))
            .send()
    });
    let answers = futures_util::future::join_all(patches).await;
    let took = started.elapsed();
    for answer in answers {
        let answer = answer.unwrap();
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    // One writer waits out SQLite's 5 s busy timeout; the others their turn
    // (1 s), not 4 x 5 s in a row.
    assert!(took < Duration::from_secs(9), "{took:?}");
    other.execute("ROLLBACK").await.unwrap();
    let _ = other.close().await;
    let after = app
        .send_json_auth(
            reqwest::Method::PATCH,
            &path,
            &admin.access,
            &serde_json::json!({"name": "ok"}),
        )
        .await;
    assert_eq!(after.status(), StatusCode::OK);
}
