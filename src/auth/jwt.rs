//! Access tokens: signing, verification with pinned algorithm, issuer and
//! audience, and the JWKS of an asymmetric key.

use std::{
    collections::HashMap,
    hash::{BuildHasher as _, RandomState},
    sync::{Arc, RwLock},
    time::Duration,
};

use anyhow::Context as _;
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation,
    errors::ErrorKind,
    jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash},
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::{
    config::{JwtConfig, JwtKey},
    domain::Role,
};

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
const LEEWAY_SECS: u64 = 30;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: Uuid,
    /// Login session id.
    pub sid: Uuid,
    /// Role when issued (informational: authorization reads the current role).
    pub role: String,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Not before.
    pub nbf: u64,
    /// Expiry.
    pub exp: u64,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Token id.
    pub jti: Uuid,
}

/// Signs and verifies access tokens with the configured key.
#[derive(Clone)]
pub struct JwtKeys {
    algorithm: Algorithm,
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    jwks: Option<JwkSet>,
    issuer: String,
    audience: String,
    ttl: Duration,
    verified: Arc<VerifiedTokens>,
    /// Keys of earlier configurations, by `kid`: they verify, never sign.
    previous: Vec<(String, DecodingKey, Validation)>,
}

/// One configured key's parts.
struct KeyParts {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    jwk: Option<Jwk>,
}

impl KeyParts {
    fn of(key: &JwtKey) -> anyhow::Result<Self> {
        Ok(match key {
            JwtKey::Secret(secret) | JwtKey::Generated(secret) => {
                let bytes = secret.expose_secret().as_bytes();
                // A key id that names the key without revealing it.
                let digest = Sha256::digest([b"roster-kid:".as_slice(), bytes].concat());
                Self {
                    algorithm: Algorithm::HS256,
                    encoding: EncodingKey::from_secret(bytes),
                    decoding: DecodingKey::from_secret(bytes),
                    kid: format!("hs256-{}", hex(&digest[..8])),
                    jwk: None,
                }
            }
            JwtKey::PrivateKey { algorithm, pem, .. } => {
                let pem = pem.expose_secret().as_bytes();
                let encoding = match algorithm {
                    Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
                    _ => EncodingKey::from_rsa_pem(pem),
                }
                .context("reading the private key")?;
                let mut jwk = Jwk::from_encoding_key(&encoding, *algorithm)
                    .context("deriving the public key")?;
                let kid = jwk
                    .thumbprint(ThumbprintHash::SHA256)
                    .context("key thumbprint")?;
                jwk.common.key_id = Some(kid.clone());
                jwk.common.public_key_use = Some(PublicKeyUse::Signature);
                jwk.common.key_algorithm = Some(match algorithm {
                    Algorithm::EdDSA => KeyAlgorithm::EdDSA,
                    _ => KeyAlgorithm::RS256,
                });
                let decoding = DecodingKey::from_jwk(&jwk).context("public key")?;
                Self {
                    algorithm: *algorithm,
                    encoding,
                    decoding,
                    kid,
                    jwk: Some(jwk),
                }
            }
        })
    }
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// Builds the keys from the configuration.
    ///
    /// # Errors
    ///
    /// When the private key cannot be used.
    pub fn from_config(config: &JwtConfig) -> anyhow::Result<Self> {
        let KeyParts {
            algorithm,
            encoding,
            decoding,
            kid,
            jwk,
        } = KeyParts::of(&config.key)?;
        let validation_for = |algorithm: Algorithm| {
            let mut validation = Validation::new(algorithm);
            validation.leeway = LEEWAY_SECS;
            validation.validate_nbf = true;
            validation.set_issuer(&[&config.issuer]);
            validation.set_audience(&[&config.audience]);
            validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
            validation
        };
        let mut public_keys: Vec<Jwk> = jwk.into_iter().collect();
        let mut previous = Vec::new();
        for key in &config.previous {
            let parts = KeyParts::of(key).context("a previous JWT key")?;
            if parts.kid == kid {
                continue;
            }
            public_keys.extend(parts.jwk);
            previous.push((parts.kid, parts.decoding, validation_for(parts.algorithm)));
        }
        let jwks = (!public_keys.is_empty()).then_some(JwkSet { keys: public_keys });
        let validation = validation_for(algorithm);
        Ok(Self {
            algorithm,
            kid,
            encoding,
            decoding,
            validation,
            jwks,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            ttl: config.access_ttl,
            verified: Arc::default(),
            previous,
        })
    }

    /// Access token lifetime.
    #[must_use]
    pub const fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The published key set; `None` with HS256.
    #[must_use]
    pub const fn jwks(&self) -> Option<&JwkSet> {
        self.jwks.as_ref()
    }

    /// Signs an access token for a session.
    ///
    /// # Errors
    ///
    /// When signing fails.
    pub fn issue(&self, user: Uuid, session: Uuid, role: Role) -> anyhow::Result<String> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user,
            sid: session,
            role: role.as_str().to_owned(),
            iat: now,
            nbf: now,
            exp: now + self.ttl.as_secs(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: Uuid::now_v7(),
        };
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).context("signing the access token")
    }

    /// Verifies a token's signature, algorithm, issuer, audience and times,
    /// and that every claim is present.
    ///
    /// # Errors
    ///
    /// When any check fails; the reason is only for logs.
    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        self.verify_at(token, jsonwebtoken::get_current_timestamp())
    }

    /// [`Self::verify`] at `now` (seconds since the epoch) for a token that
    /// verified before; a new token is checked in full, at the clock's time.
    fn verify_at(&self, token: &str, now: u64) -> Result<Claims, jsonwebtoken::errors::Error> {
        if let Some(claims) = self.verified.get(token) {
            // Signature, algorithm, issuer, audience and the claims' presence
            // do not change with time; the times do (same rules as the crate).
            if claims.exp < now.saturating_sub(self.validation.leeway) {
                return Err(ErrorKind::ExpiredSignature.into());
            }
            if claims.nbf > now.saturating_add(self.validation.leeway) {
                return Err(ErrorKind::ImmatureSignature.into());
            }
            return Ok(claims);
        }
        let (decoding, validation) = self.key_of(token);
        let claims = jsonwebtoken::decode::<Claims>(token, decoding, validation)?.claims;
        self.verified
            .insert(token, &claims, now.saturating_sub(self.validation.leeway));
        Ok(claims)
    }
}

impl JwtKeys {
    /// The key a token names by `kid`: the current one, or a previous one.
    /// With no previous key the header is not even read.
    fn key_of(&self, token: &str) -> (&DecodingKey, &Validation) {
        if !self.previous.is_empty()
            && let Ok(header) = jsonwebtoken::decode_header(token)
            && let Some(kid) = header.kid
            && let Some((_, decoding, validation)) =
                self.previous.iter().find(|(known, _, _)| *known == kid)
        {
            return (decoding, validation);
        }
        (&self.decoding, &self.validation)
    }
}

/// How many verified tokens [`VerifiedTokens`] holds before it starts over
/// (a few MiB at most).
const VERIFIED_CAPACITY: usize = 4096;

/// Tokens whose signature and claims verified, so that a client presenting
/// the same token again (as it does on every request until it expires) costs
/// a keyed hash and a comparison instead of the signature check and the
/// parsing of the token (`cargo bench --bench jwt` and the k6 W1 workload
/// show the difference). Only tokens that verified in full get in, keyed by a
/// randomly keyed hash and compared in constant time, so no entry can be
/// reached by a token that differs in a single byte. Revocation is not
/// cached: every request still reads its session. Full, the cache drops
/// its expired tokens, or else all of them: clients with more live tokens
/// than this pay the full check, as before. No `Debug`: the tokens are credentials.
#[derive(Default)]
struct VerifiedTokens {
    hasher: RandomState,
    entries: RwLock<HashMap<u64, (Box<str>, Claims)>>,
}

impl VerifiedTokens {
    fn get(&self, token: &str) -> Option<Claims> {
        let key = self.hasher.hash_one(token);
        let entries = self.entries.read().ok()?;
        let (known, claims) = entries.get(&key)?;
        aws_lc_rs::constant_time::verify_slices_are_equal(known.as_bytes(), token.as_bytes())
            .ok()
            .map(|()| claims.clone())
    }

    /// Remembers `token`. Full, the cache first lets go of the tokens that
    /// expired before `expired_before`, then of all if that freed nothing.
    fn insert(&self, token: &str, claims: &Claims, expired_before: u64) {
        let key = self.hasher.hash_one(token);
        // A poisoned lock only means a panic elsewhere: the cache stays unused.
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= VERIFIED_CAPACITY {
                entries.retain(|_, (_, known)| known.exp >= expired_before);
            }
            if entries.len() >= VERIFIED_CAPACITY {
                entries.clear();
            }
            entries.insert(key, (token.into(), claims.clone()));
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use secrecy::SecretString;

    use super::*;

    const SECRET: &str = "unit-test-secret-unit-test-secret-0123456";

    fn config(key: JwtKey) -> JwtConfig {
        JwtConfig {
            key,
            issuer: "roster".into(),
            audience: "roster".into(),
            access_ttl: Duration::from_secs(900),
            refresh_ttl: Duration::from_secs(3600),
            previous: Vec::new(),
        }
    }

    fn hs256() -> JwtKeys {
        JwtKeys::from_config(&config(JwtKey::Secret(SecretString::from(SECRET)))).unwrap()
    }

    fn b64(data: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
    }

    fn claims_json(edit: impl FnOnce(&mut serde_json::Value)) -> serde_json::Value {
        let now = jsonwebtoken::get_current_timestamp();
        let mut v = serde_json::json!({
            "sub": Uuid::now_v7(), "sid": Uuid::now_v7(), "role": "user",
            "iat": now, "nbf": now, "exp": now + 600,
            "iss": "roster", "aud": "roster", "jti": Uuid::now_v7(),
        });
        edit(&mut v);
        v
    }

    fn sign_hs256(claims: &serde_json::Value, secret: &str) -> String {
        let header = Header::new(Algorithm::HS256);
        jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn issued_tokens_verify_and_carry_every_claim() {
        let keys = hs256();
        let (user, session) = (Uuid::now_v7(), Uuid::now_v7());
        let token = keys.issue(user, session, Role::Admin).unwrap();
        let claims = keys.verify(&token).unwrap();
        assert_eq!(
            (claims.sub, claims.sid, claims.role.as_str()),
            (user, session, "admin")
        );
        assert_eq!(claims.exp - claims.iat, 900);
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::HS256);
        assert!(header.kid.unwrap().starts_with("hs256-"));
    }

    #[test]
    fn each_attack_is_rejected() {
        let keys = hs256();
        let good = claims_json(|_| {});
        let now = jsonwebtoken::get_current_timestamp();
        let none_token = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"JWT"}"#),
            b64(good.to_string().as_bytes())
        );
        let valid = sign_hs256(&good, SECRET);
        let mut parts: Vec<&str> = valid.split('.').collect();
        let tampered_payload = b64(claims_json(|c| c["role"] = "admin".into())
            .to_string()
            .as_bytes());
        parts[1] = &tampered_payload;
        let tampered = parts.join(".");
        let hs384 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS384),
            &good,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        let cases: Vec<(&str, String)> = vec![
            ("alg none", none_token),
            (
                "wrong key",
                sign_hs256(&good, "another-secret-another-secret-another"),
            ),
            ("wrong algorithm", hs384),
            ("tampered payload", tampered),
            (
                "expired",
                sign_hs256(&claims_json(|c| c["exp"] = (now - 120).into()), SECRET),
            ),
            (
                "not yet valid",
                sign_hs256(&claims_json(|c| c["nbf"] = (now + 120).into()), SECRET),
            ),
            (
                "wrong issuer",
                sign_hs256(&claims_json(|c| c["iss"] = "evil".into()), SECRET),
            ),
            (
                "wrong audience",
                sign_hs256(&claims_json(|c| c["aud"] = "evil".into()), SECRET),
            ),
            (
                "missing sid",
                sign_hs256(
                    &claims_json(|c| {
                        c.as_object_mut().unwrap().remove("sid");
                    }),
                    SECRET,
                ),
            ),
            (
                "missing exp",
                sign_hs256(
                    &claims_json(|c| {
                        c.as_object_mut().unwrap().remove("exp");
                    }),
                    SECRET,
                ),
            ),
            ("garbage", "not.a.token".to_owned()),
        ];
        for (name, token) in cases {
            assert!(keys.verify(&token).is_err(), "{name} must be rejected");
        }
        assert!(keys.verify(&valid).is_ok(), "the untampered token verifies");
    }

    #[test]
    fn leeway_is_thirty_seconds() {
        let keys = hs256();
        let now = jsonwebtoken::get_current_timestamp();
        let recent = sign_hs256(&claims_json(|c| c["exp"] = (now - 10).into()), SECRET);
        assert!(
            keys.verify(&recent).is_ok(),
            "10 s past expiry is within leeway"
        );
    }

    #[test]
    fn a_verified_token_is_still_checked_for_expiry_and_tampering() {
        let keys = hs256();
        let exp = jsonwebtoken::get_current_timestamp() + 600;
        let token = sign_hs256(&claims_json(|c| c["exp"] = exp.into()), SECRET);
        let first = keys.verify(&token).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), first, "the same claims again");
        assert_eq!(keys.verify_at(&token, exp + LEEWAY_SECS).unwrap(), first);
        let expired = keys.verify_at(&token, exp + LEEWAY_SECS + 1).unwrap_err();
        assert_eq!(expired.kind(), &ErrorKind::ExpiredSignature);
        let early = keys
            .verify_at(&token, first.nbf - LEEWAY_SECS - 1)
            .unwrap_err();
        assert_eq!(early.kind(), &ErrorKind::ImmatureSignature);
        // One byte changed in the signature or the payload: checked in full.
        // (A middle character: the last one of a signature also holds
        // padding bits.)
        let mut signature = token.clone().into_bytes();
        let at = signature.len() - 10;
        signature[at] = if signature[at] == b'A' { b'B' } else { b'A' };
        let mut payload = token.clone().into_bytes();
        let at = token.find('.').unwrap() + 3;
        payload[at] = if payload[at] == b'A' { b'B' } else { b'A' };
        for tampered in [signature, payload] {
            let tampered = String::from_utf8(tampered).unwrap();
            assert!(
                keys.verify(&tampered).is_err(),
                "{tampered} must be rejected"
            );
        }
        // Another key's cache knows nothing of this one's tokens.
        let other = JwtKeys::from_config(&config(JwtKey::Secret(SecretString::from(
            "another-secret-another-secret-another",
        ))))
        .unwrap();
        assert!(other.verify(&token).is_err());
    }

    #[test]
    fn a_full_cache_drops_expired_tokens_first() {
        let keys = hs256();
        let now = jsonwebtoken::get_current_timestamp();
        let live = sign_hs256(&claims_json(|_| {}), SECRET);
        keys.verify(&live).unwrap();
        // Fill the rest with tokens that expired (as far as the cache can
        // tell: they verified at a clock an hour ago).
        for _ in 1..VERIFIED_CAPACITY {
            let claims: Claims =
                serde_json::from_value(claims_json(|c| c["exp"] = (now - 3600).into())).unwrap();
            let token = sign_hs256(&serde_json::to_value(&claims).unwrap(), SECRET);
            keys.verified
                .insert(&token, &claims, now - 3600 - LEEWAY_SECS);
        }
        let fresh = sign_hs256(&claims_json(|_| {}), SECRET);
        keys.verify(&fresh).unwrap();
        let entries = keys.verified.entries.read().unwrap();
        assert_eq!(entries.len(), 2, "the two live tokens stay");
        assert!(entries.values().all(|(_, c)| c.exp > now));
    }

    #[test]
    fn a_full_cache_starts_over() {
        let keys = hs256();
        let tokens: Vec<String> = (0..=VERIFIED_CAPACITY)
            .map(|_| sign_hs256(&claims_json(|_| {}), SECRET))
            .collect();
        for token in &tokens {
            keys.verify(token).unwrap();
        }
        let held = keys.verified.entries.read().unwrap().len();
        assert_eq!(held, 1, "emptied when full, then the newest one");
        for token in &tokens {
            assert!(keys.verify(token).is_ok());
        }
    }

    #[test]
    fn hs256_publishes_no_jwks() {
        assert!(hs256().jwks().is_none());
    }
}
