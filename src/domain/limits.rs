//! The contract's limits, named once: the domain parsers enforce them and
//! the OpenAPI document declares them (through `api::params`). The columns
//! were sized by migrations, which never change once applied; a test holds
//! them to these numbers.
//!
//! A message that states a limit is a constant beside it, since `&'static
//! str` messages cannot be formatted; a test holds each message to its number.

/// Longest email, in characters, counted after lower-casing (as stored).
pub const EMAIL_MAX_CHARS: usize = 254;
/// The message for an email past [`EMAIL_MAX_CHARS`].
pub const EMAIL_TOO_LONG: &str = "must be at most 254 characters";

/// Shortest password, in characters.
pub const PASSWORD_MIN_CHARS: usize = 8;
/// The message for a password under [`PASSWORD_MIN_CHARS`].
pub const PASSWORD_TOO_SHORT: &str = "must be at least 8 characters";
/// Longest password, in characters.
pub const PASSWORD_MAX_CHARS: usize = 128;
/// The message for a password past [`PASSWORD_MAX_CHARS`].
pub const PASSWORD_TOO_LONG: &str = "must be at most 128 characters";

/// Longest display name, in characters.
pub const NAME_MAX_CHARS: usize = 100;
/// The message for a name past [`NAME_MAX_CHARS`].
pub const NAME_TOO_LONG: &str = "must be at most 100 characters";

/// Longest text filter of a listing (`email`, `q`): no stored value is longer.
pub const FILTER_MAX_CHARS: usize = EMAIL_MAX_CHARS;
/// The message for a filter past [`FILTER_MAX_CHARS`].
pub const FILTER_TOO_LONG: &str = EMAIL_TOO_LONG;

/// Smallest and largest page size of a listing, and its default.
pub const PER_PAGE_MIN: i64 = 1;
/// See [`PER_PAGE_MIN`].
pub const PER_PAGE_MAX: i64 = 100;
/// See [`PER_PAGE_MIN`].
pub const PER_PAGE_DEFAULT: i64 = 20;
/// The message for a page size out of range.
pub const PER_PAGE_RANGE: &str = "must be from 1 to 100";

/// First and last page number of offset paging: the last keeps the offset
/// far from overflow (cursors go deeper).
pub const PAGE_MIN: i64 = 1;
/// See [`PAGE_MIN`].
pub const PAGE_MAX: i64 = 10_000_000;
/// The message for a page number out of range.
pub const PAGE_RANGE: &str = "must be from 1 to 10000000";

/// Longest `User-Agent` kept with a session, in characters.
pub const USER_AGENT_MAX_CHARS: usize = 512;

/// Longest `X-Request-Id` echoed back, in bytes (of `[A-Za-z0-9._-]`).
pub const REQUEST_ID_MAX_CHARS: usize = 128;

/// Longest token of a mailed link that is looked at (they are 43).
pub const LINK_TOKEN_MAX_CHARS: usize = 128;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_message_states_its_limit() {
        let cases: [(&str, String); 7] = [
            (EMAIL_TOO_LONG, format!("at most {EMAIL_MAX_CHARS} ")),
            (
                PASSWORD_TOO_SHORT,
                format!("at least {PASSWORD_MIN_CHARS} "),
            ),
            (PASSWORD_TOO_LONG, format!("at most {PASSWORD_MAX_CHARS} ")),
            (NAME_TOO_LONG, format!("at most {NAME_MAX_CHARS} ")),
            (FILTER_TOO_LONG, format!("at most {FILTER_MAX_CHARS} ")),
            (
                PER_PAGE_RANGE,
                format!("from {PER_PAGE_MIN} to {PER_PAGE_MAX}"),
            ),
            (PAGE_RANGE, format!("from {PAGE_MIN} to {PAGE_MAX}")),
        ];
        for (message, expected) in cases {
            assert!(message.contains(&expected), "{message:?} vs {expected:?}");
        }
    }
}
