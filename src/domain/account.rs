//! What a request asks of an account, parsed as a whole: every broken rule
//! is reported at once, each naming its field.

use super::{
    Email, Password, UserName,
    limits::{EMAIL_MAX_CHARS, EMAIL_TOO_LONG},
};

/// One field that breaks a rule: its name and what it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The field's name in the request.
    pub field: &'static str,
    /// What the value must be.
    pub message: &'static str,
}

/// Collects the rules a request breaks.
#[derive(Debug, Default)]
struct Rules(Vec<Invalid>);

impl Rules {
    fn check<T>(&mut self, field: &'static str, parsed: Result<T, &'static str>) -> Option<T> {
        parsed
            .map_err(|message| self.0.push(Invalid { field, message }))
            .ok()
    }
}

/// The fields of a new account (sign-up, or an admin's `POST /users`).
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// The address, normalised.
    pub email: Email,
    /// The password, checked against the policy.
    pub password: Password,
    /// The display name, if any.
    pub name: Option<UserName>,
}

impl NewAccount {
    /// Parses the fields together.
    ///
    /// # Errors
    ///
    /// Every field that breaks its rule.
    pub fn parse(email: &str, password: &str, name: Option<&str>) -> Result<Self, Vec<Invalid>> {
        let mut rules = Rules::default();
        let email = rules.check("email", Email::parse(email));
        let password = rules.check("password", Password::parse(password));
        let name = rules.check("name", name.map(UserName::parse).transpose());
        match (email, password, name) {
            (Some(email), Some(password), Some(name)) => Ok(Self {
                email,
                password,
                name,
            }),
            _ => Err(rules.0),
        }
    }
}

/// Credentials as typed at login. Only what no account can have is refused:
/// any other address goes on to the password check (an unknown one against a
/// dummy hash), so that a rule here cannot tell which accounts exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The address, trimmed and lower-cased as emails are stored.
    pub email: String,
}

impl Credentials {
    /// Checks the email and that a password was given.
    ///
    /// # Errors
    ///
    /// Every field that breaks its rule.
    pub fn parse(email: &str, password: &str) -> Result<Self, Vec<Invalid>> {
        let mut rules = Rules::default();
        let email = rules.check("email", lookup_email(email));
        if password.is_empty() {
            rules.check::<()>("password", Err("must not be empty"));
        }
        match email {
            Some(email) if rules.0.is_empty() => Ok(Self { email }),
            _ => Err(rules.0),
        }
    }
}

/// An address to look an account up by (login, `forgot`, `resend`): trimmed
/// and lower-cased, and refused only where no stored address could match it,
/// so the answer says nothing about which addresses have accounts.
///
/// # Errors
///
/// The message for the client when it is empty, too long or holds control
/// characters.
pub fn lookup_email(raw: &str) -> Result<String, &'static str> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        Err("must not be empty")
    } else if email.chars().count() > EMAIL_MAX_CHARS {
        Err(EMAIL_TOO_LONG)
    } else if email.chars().any(char::is_control) {
        Err("must not contain control characters")
    } else {
        Ok(email)
    }
}

/// [`lookup_email`], as the one invalid field of a request.
///
/// # Errors
///
/// The `email` field's problem.
pub fn lookup_email_field(raw: &str) -> Result<String, Vec<Invalid>> {
    let mut rules = Rules::default();
    rules.check("email", lookup_email(raw)).ok_or(rules.0)
}

/// The new values of a user's record, each `None` when not being changed.
#[derive(Debug, Clone, Default)]
pub struct RecordEdit {
    /// A new email.
    pub email: Option<Email>,
    /// A new name; `Some(None)` clears it.
    pub name: Option<Option<UserName>>,
}

impl RecordEdit {
    /// Parses the fields together.
    ///
    /// # Errors
    ///
    /// Every field that breaks its rule.
    pub fn parse(email: Option<&str>, name: Option<Option<&str>>) -> Result<Self, Vec<Invalid>> {
        let mut rules = Rules::default();
        let email = rules.check("email", email.map(Email::parse).transpose());
        let name = rules.check(
            "name",
            name.map(|n| n.map(UserName::parse).transpose()).transpose(),
        );
        match (email, name) {
            (Some(email), Some(name)) => Ok(Self { email, name }),
            _ => Err(rules.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(errors: &[Invalid]) -> Vec<&str> {
        errors.iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_new_account_reports_every_broken_field() {
        let errors = NewAccount::parse("nope", "short", Some("a\0b")).unwrap_err();
        assert_eq!(fields(&errors), ["email", "password", "name"]);
        let account = NewAccount::parse(" Ann@X.io ", "a long passphrase", None).unwrap();
        assert_eq!(account.email.as_ref(), "ann@x.io");
    }

    #[test]
    fn credentials_refuse_only_what_no_account_has() {
        assert_eq!(
            Credentials::parse(" Ann@X.io", "pw").unwrap().email,
            "ann@x.io"
        );
        // Not an address at all, but some account might be named so: allowed.
        assert!(Credentials::parse("ann", "pw").is_ok());
        let errors = Credentials::parse("  ", "").unwrap_err();
        assert_eq!(fields(&errors), ["email", "password"]);
        let long = format!("{}@x.io", "a".repeat(EMAIL_MAX_CHARS));
        assert_eq!(
            Credentials::parse(&long, "pw").unwrap_err()[0].message,
            EMAIL_TOO_LONG
        );
        assert!(Credentials::parse("a\u{7}@x.io", "pw").is_err());
    }

    #[test]
    fn an_edit_parses_only_what_it_changes() {
        let edit = RecordEdit::parse(None, Some(None)).unwrap();
        assert!(edit.email.is_none());
        assert_eq!(edit.name, Some(None));
        let errors = RecordEdit::parse(Some("bad"), Some(Some(&"n".repeat(101)))).unwrap_err();
        assert_eq!(fields(&errors), ["email", "name"]);
    }
}
