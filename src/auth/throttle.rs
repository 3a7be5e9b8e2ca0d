//! Failed logins per client address, counted in the database beside the
//! per-account counters: every instance on one database spends one budget
//! per address, so N instances do not allow N times the guesses.

use std::{net::IpAddr, time::Duration};

use crate::store::{Store, StoreError};

/// Fixed-window failure counters per client address.
#[derive(Debug, Clone)]
pub struct AddressLimiter {
    store: Store,
    max: u32,
    window: Duration,
}

impl AddressLimiter {
    /// A limiter of `max` failures per `window`, kept in `store`.
    #[must_use]
    pub const fn new(store: Store, max: u32, window: Duration) -> Self {
        Self { store, max, window }
    }

    /// Seconds until the address may try again, when it is over the limit.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn locked_for(&self, ip: IpAddr) -> Result<Option<u64>, StoreError> {
        self.store
            .login_locked_for(&key(ip), self.max, self.window)
            .await
    }

    /// Counts a failure.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn record_failure(&self, ip: IpAddr) -> Result<(), StoreError> {
        self.store.record_login_failure(&key(ip), self.window).await
    }
}

/// The counter's key: `ip:` and the address. An email always holds an `@`
/// and an address never does, so the two kinds of key cannot meet.
fn key(ip: IpAddr) -> String {
    format!("ip:{ip}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_keys_never_look_like_emails() {
        for ip in ["10.0.0.1", "::1", "2001:db8::ff00:42:8329"] {
            let key = key(ip.parse().unwrap());
            assert!(key.starts_with("ip:") && !key.contains('@'), "{key}");
        }
    }
}
