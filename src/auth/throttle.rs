//! Failed logins per client address, counted in memory (per instance).

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Fixed-window failure counters per client address.
#[derive(Debug)]
pub struct AddressLimiter {
    max: u32,
    window: Duration,
    counters: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

/// Above this many tracked addresses, expired windows are swept on insert,
/// so a scan from many addresses cannot grow the map without bound.
const SWEEP_AT: usize = 10_000;

impl AddressLimiter {
    /// A limiter of `max` failures per `window`.
    #[must_use]
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            counters: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds until the address may try again, when it is over the limit.
    #[must_use]
    pub fn locked_for(&self, ip: IpAddr) -> Option<u64> {
        let counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let &(failures, started) = counters.get(&ip)?;
        let elapsed = started.elapsed();
        (failures >= self.max && elapsed < self.window)
            .then(|| self.window.saturating_sub(elapsed).as_secs().max(1))
    }

    /// Counts a failure.
    pub fn record_failure(&self, ip: IpAddr) {
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if counters.len() >= SWEEP_AT {
            let window = self.window;
            counters.retain(|_, (_, started)| started.elapsed() < window);
        }
        let entry = counters.entry(ip).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.window {
            *entry = (0, Instant::now());
        }
        entry.0 = entry.0.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures_per_address() {
        let limiter = AddressLimiter::new(2, Duration::from_secs(60));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        limiter.record_failure(a);
        assert_eq!(limiter.locked_for(a), None);
        limiter.record_failure(a);
        assert!(limiter.locked_for(a).is_some_and(|s| (1..=60).contains(&s)));
        assert_eq!(
            limiter.locked_for(b),
            None,
            "other addresses are unaffected"
        );
    }

    #[test]
    fn windows_expire() {
        let limiter = AddressLimiter::new(1, Duration::from_millis(20));
        let a: IpAddr = "::1".parse().unwrap();
        limiter.record_failure(a);
        assert!(limiter.locked_for(a).is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(limiter.locked_for(a), None);
    }
}
