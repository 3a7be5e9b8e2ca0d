//! `TestApp`: a real Roster on a random port over a fresh database, per test.
//!
//! Every test runs against SQLite (a temp file) and, when
//! `ROSTER_TEST_POSTGRES_URL` is set, against a new `test_<uuid>` Postgres
//! database that is dropped afterwards.

#![allow(dead_code)]

use std::sync::{LazyLock, Once};

use reqwest::{Method, Response, StatusCode};
use roster::{
    cli::Settings,
    config::{Config, LogConfig, LogFormat},
    infra::db::Database,
    startup::{Application, StopHandle},
};
use serde_json::Value;
use sqlx::{Connection as _, Executor as _, PgConnection};
use tempfile::TempDir;
use tokio::task::JoinHandle;

/// A 32+ byte HS256 key shared by test apps.
pub const TEST_JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";
/// The admin every test app bootstraps.
pub const ADMIN_EMAIL: &str = "admin@roster.test";
/// Its password.
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
/// A password that passes every rule.
pub const PASSWORD: &str = "correct horse battery staple";

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        roster::infra::telemetry::install(
            &LogConfig {
                format: LogFormat::Pretty,
                filter: "info,sqlx=warn".into(),
            },
            None,
            roster::infra::telemetry::LogTarget::Stdout,
        );
    }
});

/// Which database a test app runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A temp SQLite file.
    Sqlite,
    /// A fresh database on the server `ROSTER_TEST_POSTGRES_URL` names.
    Postgres(String),
}

/// SQLite always; Postgres too when `ROSTER_TEST_POSTGRES_URL` is set.
pub fn backends() -> Vec<Backend> {
    static SKIPPED: Once = Once::new();
    let mut all = vec![Backend::Sqlite];
    match std::env::var("ROSTER_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => all.push(Backend::Postgres(url)),
        _ => SKIPPED.call_once(|| {
            eprintln!("ROSTER_TEST_POSTGRES_URL is not set: PostgreSQL tests are skipped");
        }),
    }
    all
}

/// The Postgres backend with the server's URL, when the tests have one.
pub fn postgres() -> Option<(Backend, String)> {
    backends().into_iter().find_map(|b| match b {
        Backend::Postgres(url) => Some((Backend::Postgres(url.clone()), url)),
        Backend::Sqlite => None,
    })
}

/// A database that exists for one test.
pub enum TestDatabase {
    /// The directory holding the SQLite file; removed on drop.
    Sqlite(TempDir),
    /// A Postgres database, dropped on drop.
    Postgres {
        /// URL of the maintenance database used to create and drop it.
        admin_url: String,
        /// Its name.
        name: String,
    },
}

impl TestDatabase {
    /// Creates an empty database and returns it with its URL.
    pub async fn create(backend: &Backend) -> (Self, String) {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("roster.db").display()
                );
                (Self::Sqlite(dir), url)
            }
            Backend::Postgres(admin_url) => {
                let name = format!("test_{}", uuid::Uuid::now_v7().simple());
                let mut conn = PgConnection::connect(admin_url)
                    .await
                    .expect("connect to Postgres");
                conn.execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
                    .await
                    .expect("create test database");
                let _ = conn.close().await;
                let (base, _) = admin_url
                    .split('?')
                    .next()
                    .unwrap()
                    .rsplit_once('/')
                    .expect("ROSTER_TEST_POSTGRES_URL names a database");
                let url = format!("{base}/{name}");
                (
                    Self::Postgres {
                        admin_url: admin_url.clone(),
                        name,
                    },
                    url,
                )
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Self::Postgres { admin_url, name } = self else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop is synchronous and may run inside a runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&admin_url).await {
                    let sql = format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#);
                    let _ = conn.execute(sqlx::AssertSqlSafe(sql)).await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// Settings for a test app: port 0, bcrypt cost 4, a fixed key, small pool.
pub fn test_settings(database_url: &str) -> Settings {
    Settings {
        database_url: database_url.to_owned(),
        bind: "127.0.0.1:0".into(),
        jwt_secret: Some(TEST_JWT_SECRET.into()),
        bcrypt_cost: "4".into(),
        db_max_connections: Some("4".into()),
        log_format: Some("json".into()),
        admin_email: Some(ADMIN_EMAIL.into()),
        admin_password: Some(ADMIN_PASSWORD.into()),
        ..Settings::default()
    }
}

/// An access and a refresh token.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The JWT.
    pub access: String,
    /// The opaque refresh token.
    pub refresh: String,
}

/// A running Roster with its own database.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The bound port.
    pub port: u16,
    /// Which backend it runs on.
    pub backend: Backend,
    /// A client without cookies or redirects.
    pub client: reqwest::Client,
    /// A pool onto the same database, for inspecting state.
    pub db: Database,
    /// The database URL (a second instance can share it).
    pub database_url: String,
    /// Where mail goes as `.eml` files when no SMTP server is set.
    pub mail_dir: std::path::PathBuf,
    stop: StopHandle,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    _mail_dir: TempDir,
    // Last: the database is dropped after the server stops. `None` for a
    // second instance on another app's database.
    _database: Option<TestDatabase>,
}

impl TestApp {
    /// Spawns an app with the test settings.
    pub async fn spawn(backend: &Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Spawns an app after `edit` adjusts the settings.
    pub async fn spawn_with(backend: &Backend, edit: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_configured(backend, edit, |_| {}).await
    }

    /// Spawns an app after `edit` adjusts the settings and `tune` the
    /// validated config (for what the environment cannot set).
    pub async fn spawn_configured(
        backend: &Backend,
        edit: impl FnOnce(&mut Settings),
        tune: impl FnOnce(&mut Config),
    ) -> Self {
        LazyLock::force(&TRACING);
        let (database, url) = TestDatabase::create(backend).await;
        Self::start(backend, url, Some(database), edit, tune).await
    }

    /// A second instance on this app's database (several instances, one
    /// Postgres), with its own settings edits. It must not outlive `self`.
    pub async fn sibling_with(&self, edit: impl FnOnce(&mut Settings)) -> Self {
        Self::start(&self.backend, self.database_url.clone(), None, edit, |_| {}).await
    }

    async fn start(
        backend: &Backend,
        url: String,
        database: Option<TestDatabase>,
        edit: impl FnOnce(&mut Settings),
        tune: impl FnOnce(&mut Config),
    ) -> Self {
        let mut settings = test_settings(&url);
        let mail_dir = tempfile::tempdir().expect("temp dir");
        settings.mail_dir = mail_dir.path().display().to_string();
        edit(&mut settings);
        let mut config = Config::from_settings(&settings).expect("valid test config");
        tune(&mut config);
        let app = Application::build(config).await.expect("app builds");
        let port = app.port();
        let db = app.db().clone();
        let stop = app.stop_handle();
        let server = tokio::spawn(app.run_until_stopped());
        Self {
            address: format!("http://127.0.0.1:{port}"),
            port,
            backend: backend.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            db,
            database_url: url,
            mail_dir: mail_dir.path().to_owned(),
            _mail_dir: mail_dir,
            stop,
            server: Some(server),
            _database: database,
        }
    }

    /// Full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A request builder for a path.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path)
            .send()
            .await
            .expect("request sent")
    }

    /// `GET path` with a bearer token.
    pub async fn get_auth(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path)
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// `method path` with a JSON body.
    pub async fn send_json(&self, method: Method, path: &str, body: &Value) -> Response {
        self.request(method, path)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.send_json(Method::POST, path, body).await
    }

    /// `POST /auth/register`; asserts 201 and returns the user.
    pub async fn register(&self, email: &str) -> Value {
        let response = self
            .post_json(
                "/auth/register",
                &serde_json::json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "register {email}");
        response.json().await.unwrap()
    }

    /// `POST /auth/login` with any credentials.
    pub async fn try_login(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/auth/login",
            &serde_json::json!({"email": email, "password": password}),
        )
        .await
    }

    /// Logs in; asserts 200 and returns the token pair.
    pub async fn login(&self, email: &str, password: &str) -> Tokens {
        let response = self.try_login(email, password).await;
        assert_eq!(response.status(), StatusCode::OK, "login {email}");
        let body: Value = response.json().await.unwrap();
        Tokens {
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Registers `email` and logs it in.
    pub async fn signed_up(&self, email: &str) -> (Value, Tokens) {
        let user = self.register(email).await;
        (user, self.login(email, PASSWORD).await)
    }

    /// `GET /users/me`, which must answer 200: the caller's own record.
    pub async fn me(&self, token: &str) -> Value {
        let response = self.get_auth("/users/me", token).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// Logs in as the bootstrap admin.
    pub async fn login_admin(&self) -> Tokens {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// `method path` with a bearer token and no body.
    pub async fn send_auth(&self, method: Method, path: &str, token: &str) -> Response {
        self.request(method, path)
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// `method path` with a bearer token and a JSON body.
    pub async fn send_json_auth(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: &Value,
    ) -> Response {
        self.request(method, path)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Runs raw SQL against the app's database.
    pub async fn sql(&self, sql: &str) {
        use sea_orm::ConnectionTrait as _;
        self.db
            .conn()
            .execute_unprepared(sql)
            .await
            .expect("SQL runs");
    }

    /// Asks the server to stop and waits for it to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.stop.stop();
        self.server
            .take()
            .expect("running")
            .await
            .expect("server task")
    }

    /// The stop handle, to stop the server while requests are in flight.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Waits for a server stopped through [`Self::stop_handle`].
    pub async fn wait_stopped(mut self) -> anyhow::Result<()> {
        self.server
            .take()
            .expect("running")
            .await
            .expect("server task")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// How many of `statuses` are each of `wanted`, in order (for races).
pub fn tally<const N: usize>(statuses: &[StatusCode], wanted: [StatusCode; N]) -> [usize; N] {
    wanted.map(|code| statuses.iter().filter(|s| **s == code).count())
}

/// Asserts a problem+json response of `status` and returns its body.
pub async fn assert_problem(response: Response, status: StatusCode, slug: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert_eq!(content_type, "application/problem+json", "content type");
    let request_id = response
        .headers()
        .get("x-request-id")
        .expect("x-request-id header")
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.expect("problem body is JSON");
    assert_eq!(
        body["type"],
        format!("https://roster.dev/problems/{slug}"),
        "{body}"
    );
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    assert_eq!(body["request_id"], request_id, "{body}");
    body
}

/// One string field of every item of a list page, in order.
pub fn item_strings(page: &Value, key: &str) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u[key].as_str().unwrap().to_owned())
        .collect()
}
