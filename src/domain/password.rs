//! Passwords: length rules and the common-password list.

use std::{collections::HashSet, sync::LazyLock};

use secrecy::{ExposeSecret, SecretString};

use super::limits::{
    PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS, PASSWORD_TOO_LONG, PASSWORD_TOO_SHORT,
};

/// The 10,000 most common passwords, most common first, one per line: the
/// head of the ranked `passwords` frequency list that zxcvbn ships (zxcvbn-rs
/// 3.1.1, `src/frequency_lists.rs`, MIT licence; the list originates from
/// Dropbox's zxcvbn and is built from leaked-password corpora).
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../auth/common_passwords.txt")
        .lines()
        .collect()
});

/// A password that meets the contract's rules: 8 to 128 characters, and not
/// one of the 10,000 most common passwords (ignoring case). Never printed.
#[derive(Debug, Clone)]
pub struct Password(SecretString);

impl Password {
    /// Checks the rules.
    ///
    /// # Errors
    ///
    /// A message for the client when a rule is broken.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let chars = raw.chars().count();
        if chars < PASSWORD_MIN_CHARS {
            return Err(PASSWORD_TOO_SHORT);
        }
        if chars > PASSWORD_MAX_CHARS {
            return Err(PASSWORD_TOO_LONG);
        }
        if COMMON.contains(raw.to_lowercase().as_str()) {
            return Err("is one of the 10,000 most common passwords; choose another");
        }
        Ok(Self(SecretString::from(raw.to_owned())))
    }

    /// The password, for hashing.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_has_ten_thousand_entries() {
        assert_eq!(COMMON.len(), 10_000);
    }

    #[test]
    fn length_is_counted_in_characters() {
        assert!(Password::parse("ab3$xyz").is_err());
        assert!(Password::parse("ab3$xyzq").is_ok());
        assert!(
            Password::parse(&"é".repeat(128)).is_ok(),
            "128 two-byte characters"
        );
        assert!(Password::parse(&"é".repeat(129)).is_err());
    }

    #[test]
    fn common_passwords_are_refused_ignoring_case() {
        for common in ["password", "PassWord", "12345678", "baseball", "Trustno1"] {
            assert!(Password::parse(common).is_err(), "{common}");
        }
    }

    #[test]
    fn debug_does_not_show_the_password() {
        let p = Password::parse("correct horse battery").unwrap();
        assert!(!format!("{p:?}").contains("horse"));
    }
}
