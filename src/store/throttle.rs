//! Failed-login counters per account, shared by every instance on the database.

use chrono::{DateTime, Utc};
use entity::login_throttle;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait as _, EntityTrait as _, QueryFilter as _,
    sea_query::{Expr, ExprTrait as _, OnConflict},
};

use super::{Store, StoreError, now};

impl Store {
    /// Counts one failed login for an email, starting a new window when the
    /// previous one has passed. A single upsert, so concurrent failures from
    /// several instances all count.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn record_login_failure(
        &self,
        email: &str,
        window: std::time::Duration,
    ) -> Result<(), StoreError> {
        let at = now();
        let cutoff = window_start_cutoff(at, window);
        // Inside the current window: one more failure; otherwise a new window.
        let failures = (login_throttle::Entity, login_throttle::Column::Failures);
        let started = (
            login_throttle::Entity,
            login_throttle::Column::WindowStartedAt,
        );
        let in_window = Expr::col(started).gt(cutoff);
        let row = login_throttle::ActiveModel {
            email: Set(email.to_owned()),
            failures: Set(1),
            window_started_at: Set(at),
        };
        login_throttle::Entity::insert(row)
            .on_conflict(
                OnConflict::column(login_throttle::Column::Email)
                    .value(
                        login_throttle::Column::Failures,
                        Expr::case(in_window.clone(), Expr::col(failures).add(1)).finally(1),
                    )
                    .value(
                        login_throttle::Column::WindowStartedAt,
                        Expr::case(in_window, Expr::col(started)).finally(at),
                    )
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// When an email has reached `max` failures in the current window, the
    /// seconds until the window ends.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn login_locked_for(
        &self,
        email: &str,
        max: u32,
        window: std::time::Duration,
    ) -> Result<Option<u64>, StoreError> {
        let at = now();
        let row = login_throttle::Entity::find_by_id(email.to_owned())
            .filter(login_throttle::Column::WindowStartedAt.gt(window_start_cutoff(at, window)))
            .one(&self.db)
            .await?;
        Ok(row
            .filter(|r| u32::try_from(r.failures).unwrap_or(0) >= max)
            .map(|r| {
                let elapsed = (at - r.window_started_at).to_std().unwrap_or_default();
                Ord::max(window.saturating_sub(elapsed).as_secs(), 1)
            }))
    }

    /// Forgets an email's failures (after a successful login).
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn reset_login_failures(&self, email: &str) -> Result<(), StoreError> {
        login_throttle::Entity::delete_many()
            .filter(login_throttle::Column::Email.eq(email))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

fn window_start_cutoff(at: DateTime<Utc>, window: std::time::Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(window)
        .ok()
        .and_then(|w| at.checked_sub_signed(w))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}
