//! Mail: what each message says ([`Composer`]), and the background
//! [`sender`] that delivers the outbox. A mail is composed when the change
//! that causes it is made, and queued in the same transaction (see
//! `store::outbox`), so a crash between the two loses nothing.

pub mod sender;

use std::time::Duration;

use askama::Template as _;
use lettre::{
    Message,
    message::{Mailbox, MultiPart},
};

use crate::domain::Email;

/// The product name mails sign with.
pub const PRODUCT: &str = "Roster";

/// The mails Roster sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// A link that proves the address.
    VerifyEmail,
    /// A link that sets a new password.
    ResetPassword,
    /// A link that sets an invited account's first password.
    Invite,
    /// A link, to the new address, that applies an email change.
    ConfirmEmailChange,
    /// To the old address: the email was changed.
    EmailChanged,
    /// The password was changed.
    PasswordChanged,
    /// The account was disabled.
    AccountDisabled,
}

/// A composed mail, ready for the outbox.
#[derive(Clone)]
pub struct QueuedMail {
    /// The template's name (the `template` label of `roster_mail_total`).
    pub template: &'static str,
    /// Envelope sender.
    pub sender: String,
    /// Envelope recipient.
    pub recipient: String,
    /// The RFC 5322 message. It may hold a token: never log it.
    pub message: String,
}

impl std::fmt::Debug for QueuedMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedMail")
            .field("template", &self.template)
            .field("recipient", &self.recipient)
            .finish_non_exhaustive()
    }
}

/// What a template says.
struct Copy {
    subject: &'static str,
    intro: &'static str,
    action: &'static str,
    /// The account page its link opens.
    page: Option<&'static str>,
    unexpected: &'static str,
}

impl Template {
    /// Every template.
    pub const ALL: [Self; 7] = [
        Self::VerifyEmail,
        Self::ResetPassword,
        Self::Invite,
        Self::ConfirmEmailChange,
        Self::EmailChanged,
        Self::PasswordChanged,
        Self::AccountDisabled,
    ];

    /// The template's name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify-email",
            Self::ResetPassword => "reset-password",
            Self::Invite => "invite",
            Self::ConfirmEmailChange => "confirm-email-change",
            Self::EmailChanged => "email-changed",
            Self::PasswordChanged => "password-changed",
            Self::AccountDisabled => "account-disabled",
        }
    }

    /// The account page its link opens, when it has one.
    #[must_use]
    pub const fn page(self) -> Option<&'static str> {
        self.copy().page
    }

    const fn copy(self) -> Copy {
        const IGNORE: &str = "If you did not ask for this, you can ignore this mail: nothing changes until the link is used.";
        const ALERT: &str =
            "If this was not you, reset your password at once and tell your administrator.";
        match self {
            Self::VerifyEmail => Copy {
                subject: "Confirm your email address",
                intro: "Please confirm that this address belongs to your account.",
                action: "Confirm the address",
                page: Some("/account/verify-email"),
                unexpected: IGNORE,
            },
            Self::ResetPassword => Copy {
                subject: "Reset your password",
                intro: "Someone, hopefully you, asked to reset the password of your account.",
                action: "Choose a new password",
                page: Some("/account/reset-password"),
                unexpected: IGNORE,
            },
            Self::Invite => Copy {
                subject: "You are invited",
                intro: "An administrator created an account for you. Choose a password to start using it.",
                action: "Accept the invitation",
                page: Some("/account/accept-invite"),
                unexpected: "If you did not expect this invitation, you can ignore this mail: the account stays unusable.",
            },
            Self::ConfirmEmailChange => Copy {
                subject: "Confirm your new email address",
                intro: "Your account asked to use this address from now on.",
                action: "Confirm the new address",
                page: Some("/account/confirm-email"),
                unexpected: "If you did not ask for this, ignore this mail: the account keeps its old address.",
            },
            Self::EmailChanged => Copy {
                subject: "Your email address was changed",
                intro: "Your account no longer uses this address: its email was changed.",
                action: "",
                page: None,
                unexpected: ALERT,
            },
            Self::PasswordChanged => Copy {
                subject: "Your password was changed",
                intro: "The password of your account was changed, and every session was signed out.",
                action: "",
                page: None,
                unexpected: ALERT,
            },
            Self::AccountDisabled => Copy {
                subject: "Your account was disabled",
                intro: "An administrator disabled your account: it can no longer sign in.",
                action: "",
                page: None,
                unexpected: "If you think this is a mistake, contact your administrator.",
            },
        }
    }
}

#[derive(askama::Template)]
#[template(path = "mail.txt")]
struct Text<'a> {
    name: Option<&'a str>,
    intro: &'a str,
    action: &'a str,
    link: Option<&'a str>,
    expires: Option<&'a str>,
    unexpected: &'a str,
    product: &'a str,
}

#[derive(askama::Template)]
#[template(path = "mail.html")]
struct Html<'a> {
    subject: &'a str,
    name: Option<&'a str>,
    intro: &'a str,
    action: &'a str,
    link: Option<&'a str>,
    expires: Option<&'a str>,
    unexpected: &'a str,
    product: &'a str,
}

/// Composes mails from the From address and the public URL links point at.
#[derive(Debug, Clone)]
pub struct Composer {
    from: Mailbox,
    public_url: url::Url,
}

impl Composer {
    /// A composer for mails from `from` with links under `public_url`.
    #[must_use]
    pub const fn new(from: Mailbox, public_url: url::Url) -> Self {
        Self { from, public_url }
    }

    /// The link to a template's page with a token.
    fn link(&self, page: &str, token: &str) -> String {
        let mut url = self.public_url.clone();
        let path = format!("{}{page}", url.path().trim_end_matches('/'));
        url.set_path(&path);
        url.query_pairs_mut().clear().append_pair("token", token);
        url.into()
    }

    /// The text and HTML parts of `template`.
    fn render(
        &self,
        template: Template,
        name: Option<&str>,
        token: Option<(&str, Duration)>,
    ) -> anyhow::Result<(String, String)> {
        let copy = template.copy();
        let link = match (copy.page, token) {
            (Some(page), Some((token, _))) => Some(self.link(page, token)),
            _ => None,
        };
        let expires = token.map(|(_, ttl)| describe(ttl));
        let text = Text {
            name,
            intro: copy.intro,
            action: copy.action,
            link: link.as_deref(),
            expires: expires.as_deref(),
            unexpected: copy.unexpected,
            product: PRODUCT,
        }
        .render()?;
        let html = Html {
            subject: copy.subject,
            name,
            intro: copy.intro,
            action: copy.action,
            link: link.as_deref(),
            expires: expires.as_deref(),
            unexpected: copy.unexpected,
            product: PRODUCT,
        }
        .render()?;
        Ok((text, html))
    }

    /// Composes `template` to `to`, greeting `name`; `token` makes the link
    /// of a template that has one, valid for `ttl`. `None` when `to` is an
    /// address no mail can be sent to: new addresses are checked for that,
    /// but one stored under an older, looser rule may not be.
    ///
    /// # Errors
    ///
    /// When the message cannot be built (a bug).
    pub fn compose(
        &self,
        template: Template,
        to: &Email,
        name: Option<&str>,
        token: Option<(&str, Duration)>,
    ) -> anyhow::Result<Option<QueuedMail>> {
        let Ok(recipient) = to.as_ref().parse::<lettre::Address>() else {
            tracing::warn!(
                template = template.name(),
                "the account's address cannot be mailed; the mail is skipped"
            );
            return Ok(None);
        };
        let copy = template.copy();
        let (text, html) = self.render(template, name, token)?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(name.map(ToOwned::to_owned), recipient.clone()))
            .subject(copy.subject)
            .multipart(MultiPart::alternative_plain_html(text, html))?;
        Ok(Some(QueuedMail {
            template: template.name(),
            sender: self.from.email.to_string(),
            recipient: recipient.to_string(),
            message: String::from_utf8(message.formatted())?,
        }))
    }
}

/// A lifetime in words: "1 hour", "24 hours", "7 days", "90 seconds".
fn describe(ttl: Duration) -> String {
    let secs = ttl.as_secs();
    let (n, unit) = if secs.is_multiple_of(86_400) && secs >= 2 * 86_400 {
        (secs / 86_400, "day")
    } else if secs.is_multiple_of(3600) {
        (secs / 3600, "hour")
    } else if secs.is_multiple_of(60) {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn composer() -> Composer {
        Composer::new(
            "Roster <roster@localhost>".parse().unwrap(),
            "https://id.example.com/base".parse().unwrap(),
        )
    }

    #[test]
    fn links_point_at_the_public_url_and_names_are_text() {
        let token = Some(("tok-en_1", Duration::from_secs(3600)));
        let name = Some("<script>alert(1)</script>");
        let (text, html) = composer()
            .render(Template::ResetPassword, name, token)
            .unwrap();
        let link = "https://id.example.com/base/account/reset-password?token=tok-en_1";
        for part in [&text, &html] {
            assert!(part.contains(link), "{part}");
            assert!(part.contains("expires in 1 hour"), "{part}");
            assert!(part.contains("If you did not ask for this"), "{part}");
            assert!(part.contains(PRODUCT), "{part}");
        }
        // The name is text: escaped in HTML, as typed in plain text.
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"),
            "{html}"
        );
        assert!(text.contains("Hello <script>alert(1)</script>,"), "{text}");

        let mail = composer()
            .compose(
                Template::ResetPassword,
                &Email::parse("ann@example.com").unwrap(),
                name,
                token,
            )
            .unwrap()
            .unwrap();
        assert_eq!(mail.template, "reset-password");
        assert_eq!(mail.recipient, "ann@example.com");
        assert_eq!(mail.sender, "roster@localhost");
        assert!(
            mail.message.contains("Subject: Reset your password"),
            "{}",
            mail.message
        );
        assert!(mail.message.contains("multipart/alternative"));
    }

    #[test]
    fn an_address_stored_under_a_looser_rule_is_skipped() {
        let legacy = Email::from_stored(format!("{}@x.io", "a".repeat(65)));
        let mail = composer().compose(Template::PasswordChanged, &legacy, None, None);
        assert!(mail.unwrap().is_none());
    }

    #[test]
    fn every_template_composes() {
        for template in Template::ALL {
            let token = template.page().map(|_| ("t", Duration::from_secs(86_400)));
            let mail = composer()
                .compose(template, &Email::parse("a@b.io").unwrap(), None, token)
                .unwrap()
                .unwrap();
            assert_eq!(mail.template, template.name());
            let (text, _) = composer().render(template, None, token).unwrap();
            assert_eq!(
                text.contains("?token=t"),
                template.page().is_some(),
                "{}",
                template.name()
            );
        }
        assert_eq!(describe(Duration::from_secs(86_400)), "24 hours");
        assert_eq!(describe(Duration::from_secs(7 * 86_400)), "7 days");
    }
}
