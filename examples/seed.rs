//! Seeds a database with many users for the load tests in `k6/`.
//!
//! ```sh
//! DATABASE_URL='sqlite:///tmp/roster-load.db?mode=rwc' \
//!     cargo run --release --example seed -- --users 1000000
//! ```
//!
//! Applies the migrations, then inserts `user000001@seed.test` … `userN@seed.test`
//! (role `user`, with names and creation times spread over the year before
//! now) and one admin. Every account gets the same hash of `--password`,
//! computed once at the configured bcrypt cost, so the seeded users can log
//! in (the k6 login workloads need that) without paying bcrypt a million times.
//! Rows go in with multi-row inserts, many batches per transaction.

// A measuring tool, not the service: the workspace lints against unwrap and
// expect are for the service's code paths; this file uses `?` anyway and
// keeps the allowance only so that quick edits stay lint-clean.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use anyhow::{Context as _, bail};
use chrono::{DateTime, TimeDelta, Utc};
use clap::Parser;
use entity::user;
use roster::{
    auth::password::PasswordHasher,
    cli::Settings,
    config::{Backend, Config},
    infra::db::Database,
    store::now,
};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait as _, EntityTrait as _, PaginatorTrait as _,
    TransactionTrait as _,
};
use uuid::Uuid;

/// Seeds a Roster database with users for load tests.
#[derive(Debug, Parser)]
#[command(name = "seed")]
struct Args {
    /// How many `user` accounts to insert.
    #[arg(long, default_value_t = 10_000)]
    users: u32,
    /// Email of the admin to create.
    #[arg(long, default_value = "admin@seed.test")]
    admin_email: String,
    /// Password of every seeded account, the admin included.
    #[arg(long, default_value = "seed-password-123")]
    password: String,
    /// Database to seed (migrated first).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// bcrypt cost of the one hash every account shares (4-31); use the
    /// server's cost so that logins cost what they cost in production.
    #[arg(long, env = "ROSTER_BCRYPT_COST", default_value = "12")]
    cost: String,
    /// Rows per INSERT. SQLite allows 32,766 bound parameters per statement
    /// and a user row binds 7, so stay in the hundreds.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// INSERTs per transaction: one commit (and WAL sync) per this many batches.
    #[arg(long, default_value_t = 20)]
    batches_per_transaction: usize,
}

const FIRST_NAMES: [&str; 16] = [
    "Ada", "Ben", "Chloé", "Dmitri", "Eve", "Farah", "Gus", "Hana", "Ivan", "Jun", "Kofi", "Lena",
    "Mateo", "Nia", "Omar", "Priya",
];
const LAST_NAMES: [&str; 12] = [
    "Abara",
    "Berg",
    "Castro",
    "Dubois",
    "Eriksen",
    "Fujita",
    "García",
    "Hughes",
    "Ito",
    "Jensen",
    "Kowalski",
    "Lindqvist",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    anyhow::ensure!(
        args.batches_per_transaction > 0,
        "--batches-per-transaction must be at least 1"
    );
    // Validate through the service's own configuration, so a bad URL or cost
    // is refused with the same message the server would give.
    let settings = Settings {
        database_url: args.database_url.clone(),
        bcrypt_cost: args.cost.clone(),
        db_max_connections: Some("1".into()),
        ..Settings::default()
    };
    let config = Config::from_settings(&settings)?;
    let started = Instant::now();

    let db = Database::connect(&config.database).await?;
    db.migrate().await?;
    let existing = user::Entity::find().count(db.conn()).await?;
    if existing > 0 {
        bail!("the database already holds {existing} users: seed a fresh database");
    }

    let hash_started = Instant::now();
    let hash = PasswordHasher::new(config.bcrypt_cost)
        .hash(&args.password)
        .await?;
    let hash_time = hash_started.elapsed();

    // Creation times spread evenly over the year before now, oldest first,
    // so `created_after`/`created_before` filters and the default
    // `-created_at` sort see realistic, distinct values.
    let end = now();
    let start = end - TimeDelta::days(365);
    let step_us = (365 * 24 * 3600 * 1_000_000_i64) / i64::from(args.users.max(1));
    let created_at =
        |i: u32| -> DateTime<Utc> { start + TimeDelta::microseconds(step_us * i64::from(i)) };

    let insert_started = Instant::now();
    user::Entity::insert(row(
        args.admin_email.trim().to_lowercase(),
        Some("Seed Admin".into()),
        "admin",
        end,
        &hash,
    ))
    .exec_without_returning(db.conn())
    .await
    .context("inserting the admin")?;

    let numbers: Vec<u32> = (1..=args.users).collect();
    let per_transaction = args.batch * args.batches_per_transaction;
    let mut inserted: u64 = 0;
    for chunk in numbers.chunks(per_transaction) {
        let txn = db.conn().begin().await?;
        for batch in chunk.chunks(args.batch) {
            let models = batch.iter().map(|&i| {
                let at = created_at(i);
                row(seed_email(i), Some(seed_name(i)), "user", at, &hash)
            });
            user::Entity::insert_many(models)
                .exec_without_returning(&txn)
                .await
                .with_context(|| format!("inserting users from #{}", batch[0]))?;
        }
        txn.commit().await?;
        inserted += chunk.len() as u64;
        if inserted % 100_000 < chunk.len() as u64 {
            eprintln!(
                "seed: {inserted} users in {:.1} s",
                insert_started.elapsed().as_secs_f64()
            );
        }
    }
    let insert_time = insert_started.elapsed();
    if db.backend() == Backend::Postgres {
        // Each batch transaction bumped the same user_role_counts row
        // thousands of times, leaving dead row versions that pruning cannot
        // reclaim and that every `total` read would scan; and the planner
        // has no statistics for a table filled this fast. What any bulk
        // import on Postgres should end with:
        for sql in ["VACUUM FULL user_role_counts", "ANALYZE users"] {
            db.conn()
                .execute_unprepared(sql)
                .await
                .with_context(|| sql.to_owned())?;
        }
    }
    db.close().await;

    let rate = inserted as f64 / insert_time.as_secs_f64().max(1e-9);
    println!(
        "seeded {inserted} users + admin {} (password hash at cost {}: {:.3} s; inserts: {:.2} s, {rate:.0} rows/s; total {:.2} s)",
        args.admin_email.trim().to_lowercase(),
        config.bcrypt_cost,
        hash_time.as_secs_f64(),
        insert_time.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    Ok(())
}

/// `user000042@seed.test`: the k6 scripts build the same addresses.
fn seed_email(i: u32) -> String {
    format!("user{i:06}@seed.test")
}

fn seed_name(i: u32) -> String {
    let first = FIRST_NAMES[i as usize % FIRST_NAMES.len()];
    let last = LAST_NAMES[(i as usize / FIRST_NAMES.len()) % LAST_NAMES.len()];
    format!("{first} {last} {i}")
}

fn row(
    email: String,
    name: Option<String>,
    role: &str,
    at: DateTime<Utc>,
    hash: &str,
) -> user::ActiveModel {
    user::ActiveModel {
        // v7 ids are time-ordered like the service's; they are made now, in
        // creation-time order, so id order and `created_at` order agree.
        id: Set(Uuid::now_v7()),
        email: Set(email),
        password_hash: Set(hash.to_owned()),
        name: Set(name),
        role: Set(role.to_owned()),
        created_at: Set(at),
        updated_at: Set(at),
        status: Set("active".to_owned()),
        email_verified: Set(true),
        last_login_at: Set(None),
    }
}
