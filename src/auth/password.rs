//! bcrypt over a SHA-256 pre-hash, on tokio's blocking pool behind a semaphore.
//!
//! bcrypt reads at most 72 bytes; hashing `base64(sha256(password))` (44
//! bytes) first means long and non-ASCII passwords are never truncated. The
//! stored string starts with the scheme's name so that it can change later.

use std::sync::Arc;

use anyhow::Context as _;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use tokio::sync::{OnceCell, Semaphore};

/// Prefix of hashes made by this scheme.
pub const SCHEME: &str = "sha256-bcrypt$";

/// Hashes and verifies passwords without blocking the async workers.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    cost: u32,
    // At most one hash per core at a time: a burst of logins queues here
    // instead of filling the blocking pool and starving everything else.
    permits: Arc<Semaphore>,
    dummy: Arc<OnceCell<String>>,
}

impl PasswordHasher {
    /// A hasher with the given bcrypt cost (4-31).
    #[must_use]
    pub fn new(cost: u32) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self {
            cost,
            permits: Arc::new(Semaphore::new(cores)),
            dummy: Arc::new(OnceCell::new()),
        }
    }

    /// Hashes a password.
    ///
    /// # Errors
    ///
    /// When the blocking task fails.
    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let prehashed = prehash(password);
        let cost = self.cost;
        let hashed = self
            .blocking(move || bcrypt::hash(prehashed, cost).context("bcrypt hash"))
            .await??;
        Ok(format!("{SCHEME}{hashed}"))
    }

    /// Checks a password against a stored hash; with no stored hash (unknown
    /// account) it checks against a dummy hash of the same cost, so that both
    /// failures take the same time, and returns false.
    ///
    /// # Errors
    ///
    /// When the blocking task fails.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> anyhow::Result<bool> {
        let (stored, real) = match stored {
            Some(s) => (s.to_owned(), true),
            None => (self.dummy_hash().await?.to_owned(), false),
        };
        let Some(bcrypt_hash) = stored.strip_prefix(SCHEME).map(str::to_owned) else {
            tracing::error!("stored password hash has an unknown scheme");
            return Ok(false);
        };
        let prehashed = prehash(password);
        let matches = self
            .blocking(move || bcrypt::verify(prehashed, &bcrypt_hash).unwrap_or(false))
            .await?;
        Ok(matches && real)
    }

    async fn dummy_hash(&self) -> anyhow::Result<&str> {
        self.dummy
            .get_or_try_init(|| self.hash("roster dummy password for timing"))
            .await
            .map(String::as_str)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        let span = tracing::info_span!("password_hash", otel.kind = "internal");
        tokio::task::spawn_blocking(move || span.in_scope(f))
            .await
            .context("hashing task failed")
    }
}

fn prehash(password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(password.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let hasher = PasswordHasher::new(4);
        let hash = hasher.hash("correct horse").await.unwrap();
        assert!(hash.starts_with(SCHEME));
        assert!(!hash.contains("correct horse"));
        assert!(hasher.verify("correct horse", Some(&hash)).await.unwrap());
        assert!(!hasher.verify("correct horsf", Some(&hash)).await.unwrap());
    }

    #[tokio::test]
    async fn passwords_differing_after_byte_72_differ() {
        let hasher = PasswordHasher::new(4);
        let base = "é".repeat(40); // 80 bytes
        let (a, b) = (format!("{base}a"), format!("{base}b"));
        let hash = hasher.hash(&a).await.unwrap();
        assert!(hasher.verify(&a, Some(&hash)).await.unwrap());
        assert!(!hasher.verify(&b, Some(&hash)).await.unwrap());
    }

    #[tokio::test]
    async fn unknown_account_never_verifies() {
        let hasher = PasswordHasher::new(4);
        assert!(
            !hasher
                .verify("roster dummy password for timing", None)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn unknown_scheme_never_verifies() {
        let hasher = PasswordHasher::new(4);
        let plain_bcrypt = bcrypt::hash("pw", 4).unwrap();
        assert!(!hasher.verify("pw", Some(&plain_bcrypt)).await.unwrap());
    }
}
