//! Email addresses as the contract defines them.

use super::limits::{EMAIL_MAX_CHARS, EMAIL_TOO_LONG};

/// A trimmed, lower-cased email address: at most 254 characters, one `@`, a
/// dot in the domain, and an address mail can be sent to (a local part of at
/// most 64 characters, a domain that is a host name or an address literal).
/// Two addresses differing only in case are the same account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Validates and normalises an address.
    ///
    /// # Errors
    ///
    /// A message for the client when the address breaks a rule.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("must not be empty");
        }
        // Counted as stored: lower-casing can lengthen a string (`İ` becomes
        // two characters), and the column holds that many.
        let lowered = trimmed.to_lowercase();
        if lowered.chars().count() > EMAIL_MAX_CHARS {
            return Err(EMAIL_TOO_LONG);
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must be a valid email address");
        }
        let mut parts = trimmed.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err("must be a valid email address");
        };
        let domain_ok = domain.contains('.') && domain.split('.').all(|label| !label.is_empty());
        if local.is_empty() || !domain_ok || lowered.parse::<lettre::Address>().is_err() {
            return Err("must be a valid email address");
        }
        Ok(Self(lowered))
    }
}

impl Email {
    /// An address read back from storage, which holds only parsed ones:
    /// not checked again (every row of every page would pay for it).
    #[must_use]
    pub const fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    /// The address, as stored.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_whitespace() {
        assert_eq!(Email::parse("  Ann@X.io ").unwrap().as_ref(), "ann@x.io");
    }

    #[test]
    fn rejects_each_broken_rule() {
        let long = format!("{}@x.io", "a".repeat(250));
        for bad in [
            "", "   ", "no-at.io", "a@b@c.io", "@x.io", "a@nodot", "a@x.", "a@.io", "a b@x.io",
            "a\0@x.io", &long,
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn only_addresses_mail_can_reach() {
        let local = |n: usize| format!("{}@x.io", "a".repeat(n));
        assert!(Email::parse(&local(64)).is_ok());
        assert!(
            Email::parse(&local(65)).is_err(),
            "RFC 5321 caps the local part at 64"
        );
        let label = "d".repeat(63);
        let longest = format!("{}@{label}.{label}.{}.io", "a".repeat(64), "e".repeat(58));
        assert_eq!(longest.chars().count(), 254);
        assert!(Email::parse(&longest).is_ok());
        for bad in ["a(b@x.io", "a,b@x.io", "a@-x.io"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} cannot be mailed");
        }
    }

    #[test]
    fn length_is_checked_after_lower_casing() {
        let expands = format!("{}@x.io", "\u{130}".repeat(127));
        assert!(expands.chars().count() <= 254);
        assert!(
            Email::parse(&expands).is_err(),
            "264 characters once lower-cased"
        );
    }

    #[test]
    fn accepts_reasonable_addresses() {
        for good in [
            "a@x.io",
            "first.last+tag@sub.example.co.uk",
            "Ünï@exämple.de",
        ] {
            assert!(Email::parse(good).is_ok(), "{good:?} should be accepted");
        }
    }
}
