//! Rendering an RFC 9457 problem document: the body and headers of every 4xx.
//!
//! `cargo bench --bench problem`

// Benchmarks are measuring harnesses, not service code: a failed set-up
// should stop them loudly, so unwrap and expect are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use roster::api::error::{ApiError, FieldError};

const REQUEST_ID: &str = "0193a4b2c3d47e5f8a9b0c1d2e3f4a5b";

fn problem(c: &mut Criterion) {
    let validation = ApiError::Validation(vec![
        FieldError::body("email", "must be a valid email address"),
        FieldError::body("password", "must be at least 8 characters"),
    ]);
    c.bench_function("problem/validation_to_response", |b| {
        b.iter(|| black_box(&validation).to_response(black_box(REQUEST_ID)));
    });
    let unauthorized = ApiError::Unauthorized("missing bearer token");
    c.bench_function("problem/unauthorized_to_response", |b| {
        b.iter(|| black_box(&unauthorized).to_response(black_box(REQUEST_ID)));
    });
}

criterion_group!(benches, problem);
criterion_main!(benches);
