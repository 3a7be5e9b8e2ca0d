//! The PostgreSQL server itself stops mid-load, then comes back. Runs on a
//! private cluster (initdb in a temp directory, as the `postgres` OS user) so
//! that no other test's database goes away; skipped with a notice where that
//! cannot be set up.

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::json;

use crate::process::Process;

struct Cluster {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
}

impl Cluster {
    fn as_postgres(&self, command: &str) -> bool {
        Command::new("su")
            .args(["postgres", "-s", "/bin/sh", "-c", command])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn create() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .find(|p| p.join("initdb").exists())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let dir = std::env::temp_dir().join(format!("roster-pg-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).ok()?;
        let cluster = Self { dir, port, bin };
        let ok = Command::new("chown")
            .args(["postgres", cluster.dir.to_str()?])
            .status()
            .is_ok_and(|s| s.success())
            && cluster.as_postgres(&format!(
                "{}/initdb -D {}/data -A trust -U postgres >/dev/null",
                cluster.bin.display(),
                cluster.dir.display()
            ));
        (ok && cluster.start()).then_some(cluster)
    }

    fn start(&self) -> bool {
        self.as_postgres(&format!(
            "{}/pg_ctl -D {dir}/data -l {dir}/log -w -o '-p {port} -k {dir} -c listen_addresses=127.0.0.1' start >/dev/null",
            self.bin.display(),
            dir = self.dir.display(),
            port = self.port
        ))
    }

    fn stop(&self) -> bool {
        self.as_postgres(&format!(
            "{}/pg_ctl -D {}/data -m fast -w stop >/dev/null",
            self.bin.display(),
            self.dir.display()
        ))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stopping_postgres_mid_load_gives_503s_and_the_service_recovers_alone() {
    let Some(cluster) = tokio::task::spawn_blocking(Cluster::create).await.unwrap() else {
        eprintln!("NOTICE: no private PostgreSQL cluster here (initdb/su postgres); test skipped");
        return;
    };
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port);
    let server = Process::start(&[("DATABASE_URL", &url), ("ROSTER_DB_ACQUIRE_TIMEOUT", "1")]);
    let client = reqwest::Client::new();
    let register = |i: usize| {
        client
            .post(server.url("/auth/register"))
            .json(&json!({"email": format!("u{i}@outage.test"), "password": "outage password 1"}))
            .send()
    };
    assert_eq!(register(0).await.unwrap().status(), StatusCode::CREATED);

    // The server stops while requests keep coming.
    let stopped = tokio::task::spawn_blocking({
        let cluster_stop = format!(
            "{}/pg_ctl -D {}/data -m fast -w stop >/dev/null",
            cluster.bin.display(),
            cluster.dir.display()
        );
        move || {
            std::thread::sleep(Duration::from_millis(300));
            Command::new("su")
                .args(["postgres", "-s", "/bin/sh", "-c", &cluster_stop])
                .status()
                .is_ok_and(|s| s.success())
        }
    });
    let mut created_during = Vec::new();
    let mut unavailable = 0;
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut i = 1;
    while Instant::now() < deadline {
        let started = Instant::now();
        let response = register(i).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "no hang past the acquire timeout: {:?}",
            started.elapsed()
        );
        match response.status() {
            StatusCode::CREATED => created_during.push(i),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(
                    response.headers()["content-type"],
                    "application/problem+json"
                );
                unavailable += 1;
            }
            other => panic!(
                "{other} while the database stopped: {}",
                response.text().await.unwrap()
            ),
        }
        let ready = client
            .get(server.url("/health/ready"))
            .send()
            .await
            .unwrap()
            .status();
        assert!(
            ready == StatusCode::OK || ready == StatusCode::SERVICE_UNAVAILABLE,
            "{ready}"
        );
        i += 1;
    }
    assert!(stopped.await.unwrap(), "pg_ctl stop");
    assert!(unavailable > 0, "requests saw the outage");
    assert_eq!(
        client
            .get(server.url("/health/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::SERVICE_UNAVAILABLE
    );

    // It comes back: so does the service, with no restart.
    assert!(tokio::task::spawn_blocking({
        let start = format!(
            "{}/pg_ctl -D {dir}/data -l {dir}/log -w -o '-p {port} -k {dir} -c listen_addresses=127.0.0.1' start >/dev/null",
            cluster.bin.display(),
            dir = cluster.dir.display(),
            port = cluster.port
        );
        move || Command::new("su").args(["postgres", "-s", "/bin/sh", "-c", &start]).status().is_ok_and(|s| s.success())
    })
    .await
    .unwrap());
    let mut recovered = false;
    for _ in 0..100 {
        if client
            .get(server.url("/health/ready"))
            .send()
            .await
            .unwrap()
            .status()
            == StatusCode::OK
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "readiness recovers without a restart");
    assert_eq!(register(i).await.unwrap().status(), StatusCode::CREATED);
    // Every 201 during the outage is really there: registering it again conflicts.
    for n in created_during.into_iter().chain([0]) {
        assert_eq!(
            register(n).await.unwrap().status(),
            StatusCode::CONFLICT,
            "u{n} was acknowledged but is missing"
        );
    }
    let (code, lines) = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.stop()
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{lines:#?}");
    drop(cluster);
}
