//! Access tokens: HS256 signing and verification, as done on every login and
//! on every authenticated request.
//!
//! `cargo bench --bench jwt`

// Benchmarks are measuring harnesses, not service code: a failed set-up
// should stop them loudly, so unwrap and expect are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{hint::black_box, time::Duration};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use roster::{
    auth::jwt::JwtKeys,
    config::{JwtConfig, JwtKey},
    domain::Role,
};
use secrecy::SecretString;
use uuid::Uuid;

fn keys() -> JwtKeys {
    JwtKeys::from_config(&JwtConfig {
        key: JwtKey::Secret(SecretString::from(
            "bench-secret-bench-secret-bench-secret-0123",
        )),
        issuer: "roster".into(),
        audience: "roster".into(),
        access_ttl: Duration::from_secs(900),
        refresh_ttl: Duration::from_secs(2_592_000),
        previous: Vec::new(),
    })
    .unwrap()
}

fn jwt(c: &mut Criterion) {
    let keys = keys();
    let (user, session) = (Uuid::now_v7(), Uuid::now_v7());
    c.bench_function("jwt/hs256_sign", |b| {
        b.iter(|| {
            keys.issue(black_box(user), black_box(session), Role::User)
                .unwrap()
        });
    });
    // A token seen for the first time: signature, parsing and claims.
    c.bench_function("jwt/hs256_verify", |b| {
        b.iter_batched(
            || keys.issue(user, session, Role::User).unwrap(),
            |token| keys.verify(black_box(&token)).unwrap(),
            BatchSize::SmallInput,
        );
    });
    // The same token again, as on every request of a client: the
    // verified-token cache and the expiry check.
    let token = keys.issue(user, session, Role::User).unwrap();
    c.bench_function("jwt/hs256_verify_again", |b| {
        b.iter(|| keys.verify(black_box(&token)).unwrap());
    });
}

criterion_group!(benches, jwt);
criterion_main!(benches);
