//! What a mailed link's one-time token is for.

/// The one purpose a one-time token serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// Proves the address at registration or on request.
    Verify,
    /// Sets a new password (`forgot`, or an admin's reset).
    Reset,
    /// Sets an invited account's first password; accepted wherever a reset
    /// token is.
    Invite,
    /// Applies a pending email change to the address it was mailed to.
    EmailChange,
}

impl TokenPurpose {
    /// The stored form.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Reset => "reset",
            Self::Invite => "invite",
            Self::EmailChange => "email_change",
        }
    }
}
