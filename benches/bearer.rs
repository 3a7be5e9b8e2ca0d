//! The bearer check run on every authenticated request: JWT verification plus
//! the one query that loads the live session and its user, against a migrated
//! temporary SQLite file holding one logged-in user.
//!
//! `cargo bench --bench bearer`

// Benchmarks are measuring harnesses, not service code: a failed set-up
// should stop them loudly, so unwrap and expect are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use roster::{
    auth::{AuthService, jwt::JwtKeys, service::ClientInfo},
    cli::Settings,
    config::Config,
    domain::{Email, Password},
    infra::db::Database,
    store::Store,
};

const EMAIL: &str = "bench@roster.test";
const PASSWORD: &str = "correct horse battery staple";

fn bearer(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        database_url: format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        ),
        jwt_secret: Some("bench-secret-bench-secret-bench-secret-0123".into()),
        bcrypt_cost: "4".into(),
        db_max_connections: Some("8".into()),
        ..Settings::default()
    };
    let config = Config::from_settings(&settings).unwrap();
    let (db, auth, token) = rt.block_on(async {
        let db = Database::connect(&config.database).await.unwrap();
        db.migrate().await.unwrap();
        // No metrics registry: the success path records none anyway.
        let auth = AuthService::new(
            &config,
            Store::new(db.conn().clone()),
            None,
            "http://localhost".parse().unwrap(),
            Default::default(),
        )
        .unwrap();
        auth.register(
            &Email::parse(EMAIL).unwrap(),
            &Password::parse(PASSWORD).unwrap(),
            None,
        )
        .await
        .unwrap();
        let tokens = auth
            .login(EMAIL, PASSWORD, ClientInfo::default())
            .await
            .unwrap();
        (db, auth, tokens.access_token)
    });
    let store = Store::new(db.conn().clone());
    let claims = JwtKeys::from_config(&config.jwt)
        .unwrap()
        .verify(&token)
        .unwrap();

    let mut group = c.benchmark_group("bearer");
    // The whole check, as the `BearerAuth` extractor runs it.
    group.bench_function("auth_service_authenticate", |b| {
        b.to_async(&rt)
            .iter(|| async { auth.authenticate(black_box(&token)).await.unwrap() });
    });
    // Only its database half: session + user in one query.
    group.bench_function("store_authenticate_query", |b| {
        b.to_async(&rt).iter(|| async {
            store
                .authenticate(black_box(claims.sid), black_box(claims.sub))
                .await
                .unwrap()
                .unwrap()
        });
    });
    group.finish();
    rt.block_on(db.close());
}

criterion_group!(benches, bearer);
criterion_main!(benches);
