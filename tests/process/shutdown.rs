//! SIGTERM during a steady load.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::json;
use sqlx::Connection as _;

use crate::process::Process;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_load_completes_accepted_requests_and_loses_no_registration() {
    let server = Process::start(&[]);
    let base = server.address.clone();
    let created = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop_sending = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..8 {
        let (base, created, stop_sending) = (
            base.clone(),
            Arc::clone(&created),
            Arc::clone(&stop_sending),
        );
        workers.push(tokio::spawn(async move {
            // A fresh connection per request, so "new connections are refused" is observable.
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap();
            let mut refused = 0;
            for i in 0.. {
                if stop_sending.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let email = format!("w{worker}-{i}@load.test");
                let response = client
                    .post(format!("{base}/auth/register"))
                    .json(&json!({"email": email, "password": "load test password"}))
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        created.lock().unwrap().push(email)
                    }
                    Ok(r) => panic!("unexpected {} during shutdown", r.status()),
                    Err(e) => {
                        assert!(e.is_connect() || e.is_request(), "{e:?}");
                        refused += 1;
                    }
                }
            }
            refused
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before = created.lock().unwrap().len();
    assert!(before > 0, "load was running");
    let stopped_at = Instant::now();
    let database_url = server.database_url.clone();
    let (server, code, lines) = tokio::task::spawn_blocking(move || {
        let mut server = server;
        let (code, lines) = server.stop();
        (server, code, lines)
    })
    .await
    .unwrap();
    let took = stopped_at.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop_sending.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut refused = 0;
    for worker in workers {
        refused += worker.await.unwrap();
    }
    assert_eq!(code, Some(0), "clean exit: {lines:#?}");
    assert!(
        took < Duration::from_secs(30),
        "within the grace period: {took:?}"
    );
    assert!(refused > 0, "new connections were refused after the signal");

    let mut conn = sqlx::SqliteConnection::connect(&database_url)
        .await
        .unwrap();
    let created = created.lock().unwrap().clone();
    for email in &created {
        let found: Option<String> = sqlx::query_scalar("SELECT email FROM users WHERE email = ?")
            .bind(email)
            .fetch_optional(&mut conn)
            .await
            .unwrap();
        assert!(found.is_some(), "{email} got a 201 but is missing");
    }
    drop(server);
}
