//! Users in bulk, straight into the database with one precomputed hash, so
//! that tests with many users do not pay bcrypt per user.

use chrono::{DateTime, TimeDelta, Utc};
use entity::user;
use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, EntityTrait as _, QueryFilter as _, sea_query::Expr,
};
use uuid::Uuid;

use crate::helpers::TestApp;

/// One user to insert.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Lower-cased email.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// `admin` or `user`.
    pub role: &'static str,
    /// Creation time (microsecond precision).
    pub created_at: DateTime<Utc>,
}

impl NewUser {
    /// `user<i>@bulk.test`, created `i` milliseconds after a fixed instant.
    pub fn numbered(i: usize) -> Self {
        Self {
            email: format!("user{i:05}@bulk.test"),
            name: Some(format!("User {i:05}")),
            role: "user",
            created_at: base_time() + TimeDelta::milliseconds(i64::try_from(i).unwrap()),
        }
    }
}

/// A fixed instant to build creation times from.
pub fn base_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Inserts users in batches; returns their ids in input order. They cannot
/// log in (the hash is not of any password).
pub async fn insert_users(app: &TestApp, users: &[NewUser]) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(users.len());
    for chunk in users.chunks(200) {
        let models: Vec<user::ActiveModel> = chunk
            .iter()
            .map(|u| {
                let id = Uuid::now_v7();
                ids.push(id);
                user::ActiveModel {
                    id: Set(id),
                    email: Set(u.email.clone()),
                    password_hash: Set("sha256-bcrypt$fixture-not-a-hash".into()),
                    name: Set(u.name.clone()),
                    role: Set(u.role.into()),
                    created_at: Set(u.created_at),
                    updated_at: Set(u.created_at),
                    status: Set("active".into()),
                    email_verified: Set(false),
                    last_login_at: Set(None),
                }
            })
            .collect();
        user::Entity::insert_many(models)
            .exec_without_returning(app.db.conn())
            .await
            .unwrap();
    }
    ids
}

/// Sets a user's `created_at` or `updated_at` directly (the API sets
/// neither to a chosen time).
pub async fn set_time(app: &TestApp, id: Uuid, column: user::Column, at: DateTime<Utc>) {
    user::Entity::update_many()
        .col_expr(column, Expr::value(at))
        .filter(user::Column::Id.eq(id))
        .exec(app.db.conn())
        .await
        .unwrap();
}

/// Deletes a user row directly (bypassing the API's rules).
pub async fn delete_user(app: &TestApp, id: Uuid) {
    user::Entity::delete_by_id(id)
        .exec(app.db.conn())
        .await
        .unwrap();
}
