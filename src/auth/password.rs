//! bcrypt or argon2id over a SHA-256 pre-hash, on tokio's blocking pool
//! behind a semaphore.
//!
//! bcrypt reads at most 72 bytes; hashing `base64(sha256(password))` (44
//! bytes) first means long and non-ASCII passwords are never truncated.
//! argon2id gets the same pre-hash, so a hash can be replaced by one of the
//! other algorithm from the password a login presents. The stored string
//! starts with its scheme's name: both verify at all times, and a match
//! says whether the hash is outdated (another algorithm, or weaker
//! parameters than configured).

use std::sync::Arc;

use anyhow::Context as _;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use tokio::sync::{OnceCell, Semaphore};

/// Prefix of bcrypt hashes.
pub const SCHEME: &str = "sha256-bcrypt$";
/// Prefix of argon2id hashes (a PHC string follows).
pub const ARGON2_SCHEME: &str = "sha256-argon2id$";

/// The algorithm new hashes are made with, and its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// bcrypt at a cost (4-31).
    Bcrypt {
        /// log2 of the rounds.
        cost: u32,
    },
    /// argon2id, one lane.
    Argon2id {
        /// Memory per hash, KiB.
        memory_kib: u32,
        /// Passes over the memory.
        iterations: u32,
    },
}

impl Algorithm {
    /// OWASP's argon2id defaults: 19 MiB, 2 passes, 1 lane.
    pub const ARGON2ID_DEFAULT: Self = Self::Argon2id {
        memory_kib: 19 * 1024,
        iterations: 2,
    };
}

/// What checking a password against a stored hash found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The password is the account's.
    pub matches: bool,
    /// The stored hash is of another algorithm or weaker parameters than
    /// the configured ones: a match should store a new hash.
    pub outdated: bool,
}

/// Hashes and verifies passwords without blocking the async workers.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    algorithm: Algorithm,
    // At most one hash per core at a time: a burst of logins queues here
    // instead of filling the blocking pool and starving everything else.
    permits: Arc<Semaphore>,
    dummy: Arc<OnceCell<String>>,
}

impl PasswordHasher {
    /// A hasher with the given bcrypt cost (4-31).
    #[must_use]
    pub fn new(cost: u32) -> Self {
        Self::with(Algorithm::Bcrypt { cost })
    }

    /// A hasher making new hashes with `algorithm`.
    #[must_use]
    pub fn with(algorithm: Algorithm) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self {
            algorithm,
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
        match self.algorithm {
            Algorithm::Bcrypt { cost } => {
                let hashed = self
                    .blocking(move || bcrypt::hash(prehashed, cost).context("bcrypt hash"))
                    .await??;
                Ok(format!("{SCHEME}{hashed}"))
            }
            Algorithm::Argon2id {
                memory_kib,
                iterations,
            } => {
                let salt: [u8; 16] = rand::random();
                let hashed = self
                    .blocking(move || {
                        use argon2::PasswordHasher as _;
                        argon2id(memory_kib, iterations)?
                            .hash_password_with_salt(prehashed.as_bytes(), &salt)
                            .map(|phc| phc.to_string())
                            .map_err(|e| anyhow::anyhow!("argon2id hash: {e}"))
                    })
                    .await??;
                Ok(format!("{ARGON2_SCHEME}{hashed}"))
            }
        }
    }

    /// Checks a password against a stored hash; with no stored hash (unknown
    /// account) it checks against a dummy hash of the same cost, so that both
    /// failures take the same time, and returns false.
    ///
    /// # Errors
    ///
    /// When the blocking task fails.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> anyhow::Result<bool> {
        Ok(self.check(password, stored).await?.matches)
    }

    /// [`Self::verify`], also telling whether a matching hash is outdated.
    ///
    /// # Errors
    ///
    /// When the blocking task fails.
    pub async fn check(&self, password: &str, stored: Option<&str>) -> anyhow::Result<Verdict> {
        let (stored, real) = match stored {
            Some(s) => (s.to_owned(), true),
            None => (self.dummy_hash().await?.to_owned(), false),
        };
        let prehashed = prehash(password);
        let (matches, outdated) = if let Some(bcrypt_hash) = stored.strip_prefix(SCHEME) {
            let outdated = match self.algorithm {
                Algorithm::Bcrypt { cost } => bcrypt_cost(bcrypt_hash).is_none_or(|c| c < cost),
                Algorithm::Argon2id { .. } => true,
            };
            let bcrypt_hash = bcrypt_hash.to_owned();
            let matches = self
                .blocking(move || bcrypt::verify(prehashed, &bcrypt_hash).unwrap_or(false))
                .await?;
            (matches, outdated)
        } else if let Some(phc) = stored.strip_prefix(ARGON2_SCHEME) {
            let Ok(parsed) = argon2::PasswordHash::new(phc) else {
                tracing::error!("stored argon2id hash does not parse");
                return Ok(Verdict {
                    matches: false,
                    outdated: false,
                });
            };
            let outdated = match (self.algorithm, argon2::Params::try_from(&parsed)) {
                (
                    Algorithm::Argon2id {
                        memory_kib,
                        iterations,
                    },
                    Ok(params),
                ) => params.m_cost() < memory_kib || params.t_cost() < iterations,
                _ => true,
            };
            let matches = self
                .blocking(move || {
                    use argon2::PasswordVerifier as _;
                    argon2::Argon2::default()
                        .verify_password(prehashed.as_bytes(), &parsed)
                        .is_ok()
                })
                .await?;
            (matches, outdated)
        } else {
            tracing::error!("stored password hash has an unknown scheme");
            return Ok(Verdict {
                matches: false,
                outdated: false,
            });
        };
        Ok(Verdict {
            matches: matches && real,
            outdated: matches && real && outdated,
        })
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

/// argon2id with `memory_kib` and `iterations`, one lane.
fn argon2id(memory_kib: u32, iterations: u32) -> anyhow::Result<argon2::Argon2<'static>> {
    let params = argon2::Params::new(memory_kib, iterations, 1, None)
        .map_err(|e| anyhow::anyhow!("argon2id parameters: {e}"))?;
    Ok(argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params,
    ))
}

/// The cost of a `$2b$12$...` hash.
fn bcrypt_cost(hash: &str) -> Option<u32> {
    hash.split('$').nth(2)?.parse().ok()
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

    const ARGON2_TEST: Algorithm = Algorithm::Argon2id {
        memory_kib: 1024,
        iterations: 1,
    };

    #[tokio::test]
    async fn argon2id_hashes_verify_beyond_byte_72_and_both_kinds_always_verify() {
        let argon = PasswordHasher::with(ARGON2_TEST);
        let bcrypt = PasswordHasher::new(4);
        let base = "p".repeat(99);
        let (a, b) = (format!("{base}a"), format!("{base}b"));
        let hash = argon.hash(&a).await.unwrap();
        assert!(
            hash.starts_with("sha256-argon2id$$argon2id$v=19$m=1024,t=1,p=1$"),
            "{hash}"
        );
        assert!(argon.verify(&a, Some(&hash)).await.unwrap());
        assert!(!argon.verify(&b, Some(&hash)).await.unwrap());
        // Either hasher verifies either kind.
        let old = bcrypt.hash(&a).await.unwrap();
        assert!(argon.verify(&a, Some(&old)).await.unwrap());
        assert!(bcrypt.verify(&a, Some(&hash)).await.unwrap());
        assert!(!bcrypt.verify(&b, Some(&hash)).await.unwrap());
    }

    #[tokio::test]
    async fn a_match_on_another_algorithm_or_weaker_parameters_is_outdated() {
        let argon = PasswordHasher::with(ARGON2_TEST);
        let stronger = PasswordHasher::with(Algorithm::Argon2id {
            memory_kib: 2048,
            iterations: 1,
        });
        let bcrypt4 = PasswordHasher::new(4);
        let bcrypt5 = PasswordHasher::new(5);
        let argon_hash = argon.hash("pw").await.unwrap();
        let bcrypt_hash = bcrypt4.hash("pw").await.unwrap();
        let check = |h: &PasswordHasher, pw: &'static str, stored: String| {
            let h = h.clone();
            async move { h.check(pw, Some(&stored)).await.unwrap() }
        };
        let fresh = Verdict {
            matches: true,
            outdated: false,
        };
        let stale = Verdict {
            matches: true,
            outdated: true,
        };
        assert_eq!(check(&argon, "pw", argon_hash.clone()).await, fresh);
        assert_eq!(check(&stronger, "pw", argon_hash.clone()).await, stale);
        assert_eq!(check(&bcrypt4, "pw", argon_hash.clone()).await, stale);
        assert_eq!(check(&bcrypt4, "pw", bcrypt_hash.clone()).await, fresh);
        assert_eq!(check(&bcrypt5, "pw", bcrypt_hash.clone()).await, stale);
        assert_eq!(check(&argon, "pw", bcrypt_hash.clone()).await, stale);
        // A wrong password is never "outdated".
        let wrong = check(&argon, "nope", bcrypt_hash).await;
        assert_eq!(
            wrong,
            Verdict {
                matches: false,
                outdated: false
            }
        );
    }

    #[tokio::test]
    async fn unknown_scheme_never_verifies() {
        let hasher = PasswordHasher::new(4);
        let plain_bcrypt = bcrypt::hash("pw", 4).unwrap();
        assert!(!hasher.verify("pw", Some(&plain_bcrypt)).await.unwrap());
    }
}
