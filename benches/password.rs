//! Password hashing and verification (bcrypt over a SHA-256 pre-hash) through
//! the service's `PasswordHasher`, blocking-pool hop included: the cost of a
//! register and of a login. Cost 12 is the default; cost 4 is what tests use.
//!
//! `cargo bench --bench password` (about a minute: cost 12 is ~0.25 s a hash)

// Benchmarks are measuring harnesses, not service code: a failed set-up
// should stop them loudly, so unwrap and expect are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use roster::auth::password::PasswordHasher;

const PASSWORD: &str = "correct horse battery staple";

fn password(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group("password");
    for cost in [4_u32, 12] {
        if cost >= 10 {
            // Criterion's minimum: ten samples of a quarter-second operation
            // already take about fifteen seconds per benchmark.
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(15));
        } else {
            group.sample_size(50);
            group.measurement_time(Duration::from_secs(5));
        }
        let hasher = PasswordHasher::new(cost);
        group.bench_function(format!("hash_cost_{cost}"), |b| {
            b.to_async(&rt)
                .iter(|| async { hasher.hash(black_box(PASSWORD)).await.unwrap() });
        });
        let stored = rt.block_on(hasher.hash(PASSWORD)).unwrap();
        group.bench_function(format!("verify_cost_{cost}"), |b| {
            b.to_async(&rt).iter(|| async {
                assert!(
                    hasher
                        .verify(black_box(PASSWORD), Some(&stored))
                        .await
                        .unwrap()
                );
            });
        });
    }
    group.finish();
}

criterion_group!(benches, password);
criterion_main!(benches);
