//! Users, roles and display names.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    Email,
    limits::{NAME_MAX_CHARS, NAME_TOO_LONG},
};

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Manages every user.
    Admin,
    /// Manages itself.
    User,
}

impl Role {
    /// Every role, in the order the document lists them.
    pub const ALL: [Self; 2] = [Self::Admin, Self::User];

    /// The stored and serialized form of each role.
    pub const NAMES: [&'static str; 2] = [Self::Admin.as_str(), Self::User.as_str()];

    /// The stored and serialized form.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::User => "user",
        }
    }

    /// Parses the stored form.
    ///
    /// # Errors
    ///
    /// When the value is neither `admin` nor `user`.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        match raw {
            "admin" => Ok(Self::Admin),
            "user" => Ok(Self::User),
            _ => Err("must be `admin` or `user`"),
        }
    }
}

/// An optional display name: at most 100 characters, no control characters
/// (a NUL byte would otherwise fail inside the Postgres driver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    /// Validates a name.
    ///
    /// # Errors
    ///
    /// A message for the client when a rule is broken.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.chars().count() > NAME_MAX_CHARS {
            return Err(NAME_TOO_LONG);
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        Ok(Self(raw.to_owned()))
    }
}

impl UserName {
    /// A name read back from storage, which holds only parsed ones.
    #[must_use]
    pub const fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    /// The name, as stored.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

impl AsRef<str> for UserName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A user as the rest of the service sees it: never with a password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Public id (UUID v7).
    pub id: Uuid,
    /// Lower-cased email.
    pub email: Email,
    /// Display name.
    pub name: Option<UserName>,
    /// Current role.
    pub role: Role,
    /// Creation time, microsecond precision.
    pub created_at: DateTime<Utc>,
    /// Last change, microsecond precision.
    pub updated_at: DateTime<Utc>,
    /// Whether the account may log in.
    pub status: AccountStatus,
    /// Whether the user proved control of the current email.
    pub email_verified: bool,
    /// The last successful login.
    pub last_login_at: Option<DateTime<Utc>>,
}

/// Whether an account may log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountStatus {
    /// Logs in.
    Active,
    /// Created by an admin without a password; logs in once it sets one.
    Invited,
    /// May not log in; its sessions ended when it was disabled.
    Disabled,
}

impl AccountStatus {
    /// Every status, in the order the document lists them.
    pub const NAMES: [&'static str; 3] = [
        Self::Active.as_str(),
        Self::Invited.as_str(),
        Self::Disabled.as_str(),
    ];

    /// The stored and serialized form.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Invited => "invited",
            Self::Disabled => "disabled",
        }
    }

    /// Parses the stored form.
    ///
    /// # Errors
    ///
    /// For any other value.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        match raw {
            "active" => Ok(Self::Active),
            "invited" => Ok(Self::Invited),
            "disabled" => Ok(Self::Disabled),
            _ => Err("must be `active`, `invited` or `disabled`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for name in AccountStatus::NAMES {
            assert_eq!(AccountStatus::parse(name).unwrap().as_str(), name);
        }
        assert!(AccountStatus::parse("Active").is_err());
    }

    #[test]
    fn roles_round_trip() {
        for (role, name) in Role::ALL.into_iter().zip(Role::NAMES) {
            assert_eq!(Role::parse(name), Ok(role));
        }
        assert!(Role::parse("root").is_err());
        assert!(Role::parse("Admin").is_err());
    }

    #[test]
    fn names_reject_control_characters_and_length() {
        assert!(UserName::parse("Ann Lee").is_ok());
        assert!(UserName::parse(&"n".repeat(100)).is_ok());
        assert!(UserName::parse(&"n".repeat(101)).is_err());
        for bad in ["a\0b", "tab\there", "new\nline", "\u{7f}"] {
            assert!(UserName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
