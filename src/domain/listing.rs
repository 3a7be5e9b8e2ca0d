//! The user list's sort orders, filters and opaque keyset cursors.

use base64::Engine as _;
use chrono::{DateTime, Datelike as _, SecondsFormat, SubsecRound as _, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AccountStatus, Role, User};

/// The column a list is sorted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortKey {
    /// `created_at` (time-ordered ids make ties rare).
    CreatedAt,
    /// The stored, lower-cased email.
    Email,
    /// The name by code point; users without a name come last either way.
    Name,
}

/// A sort key and direction; ties always break on `id` in the same direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sort {
    /// The column.
    pub key: SortKey,
    /// Descending when true.
    pub descending: bool,
}

impl Default for Sort {
    /// `-created_at`: newest first.
    fn default() -> Self {
        Self {
            key: SortKey::CreatedAt,
            descending: true,
        }
    }
}

impl Sort {
    /// Every accepted `sort` value.
    pub const NAMES: [&'static str; 6] = [
        "created_at",
        "-created_at",
        "email",
        "-email",
        "name",
        "-name",
    ];

    /// Parses `created_at`, `-created_at`, `email`, `-email`, `name` or `-name`.
    ///
    /// # Errors
    ///
    /// For any other value.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let (descending, key) = raw.strip_prefix('-').map_or((false, raw), |k| (true, k));
        let key = match key {
            "created_at" => SortKey::CreatedAt,
            "email" => SortKey::Email,
            "name" => SortKey::Name,
            _ => return Err("must be one of created_at, -created_at, email, -email, name, -name"),
        };
        Ok(Self { key, descending })
    }

    /// The query-string form.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match (self.key, self.descending) {
            (SortKey::CreatedAt, false) => "created_at",
            (SortKey::CreatedAt, true) => "-created_at",
            (SortKey::Email, false) => "email",
            (SortKey::Email, true) => "-email",
            (SortKey::Name, false) => "name",
            (SortKey::Name, true) => "-name",
        }
    }
}

/// Which users a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Only this role.
    pub role: Option<Role>,
    /// Case-insensitive substring of the email.
    pub email: Option<String>,
    /// Case-insensitive substring of the email or the name.
    pub q: Option<String>,
    /// Created strictly after.
    pub created_after: Option<DateTime<Utc>>,
    /// Created strictly before.
    pub created_before: Option<DateTime<Utc>>,
    /// Only this status.
    pub status: Option<AccountStatus>,
    /// Only verified (or unverified) addresses.
    pub email_verified: Option<bool>,
}

impl UserFilter {
    /// No filter, or a role only: what the trigger-kept counts can total.
    #[must_use]
    pub const fn is_role_only(&self) -> bool {
        matches!(
            self,
            Self {
                role: _,
                email: None,
                q: None,
                created_after: None,
                created_before: None,
                status: None,
                email_verified: None,
            }
        )
    }
}

/// The last row of a page, where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The sort the cursor was made for.
    pub sort: Sort,
    /// The sort key's value in that row.
    pub value: CursorValue,
    /// The row's id (the tie-break).
    pub id: Uuid,
}

/// A sort key value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CursorValue {
    /// `created_at`.
    Time(DateTime<Utc>),
    /// `email` or `name` (`None`: a user without a name).
    Text(Option<String>),
}

impl Cursor {
    /// The cursor after `user` in `sort` order.
    #[must_use]
    pub fn after(user: &User, sort: Sort) -> Self {
        let value = match sort.key {
            SortKey::CreatedAt => CursorValue::Time(user.created_at),
            SortKey::Email => CursorValue::Text(Some(user.email.as_ref().to_owned())),
            SortKey::Name => CursorValue::Text(user.name.as_ref().map(|n| n.as_ref().to_owned())),
        };
        Self {
            sort,
            value,
            id: user.id,
        }
    }

    /// The opaque form handed to clients.
    #[must_use]
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// Parses an opaque cursor made for `sort`.
    ///
    /// # Errors
    ///
    /// When it is not one of ours, or was made for another sort.
    pub fn decode(raw: &str, sort: Sort) -> Result<Self, &'static str> {
        const MALFORMED: &str = "is not a cursor returned by this endpoint";
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .map_err(|_| MALFORMED)?;
        let cursor: Self = serde_json::from_slice(&bytes).map_err(|_| MALFORMED)?;
        let value_fits = matches!(
            (&cursor.value, cursor.sort.key),
            (CursorValue::Time(_), SortKey::CreatedAt)
                | (CursorValue::Text(Some(_)), SortKey::Email)
                | (CursorValue::Text(_), SortKey::Name)
        );
        // Values come from stored emails and names: never longer than an
        // email or holding control characters (which Postgres would
        // refuse inside the driver).
        let value_sane = match &cursor.value {
            CursorValue::Text(Some(text)) => {
                text.chars().count() <= super::limits::EMAIL_MAX_CHARS
                    && !text.chars().any(char::is_control)
            }
            CursorValue::Text(None) => true,
            CursorValue::Time(t) => (1..=9999).contains(&t.year()),
        };
        if !value_fits || !value_sane {
            return Err(MALFORMED);
        }
        if cursor.sort != sort {
            return Err("was made for another sort order");
        }
        Ok(cursor)
    }
}

/// Renders a time as the API does (used in cursors' debug output and links).
#[must_use]
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Offset or keyset paging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Paging {
    /// Page number from 1.
    Offset(u64),
    /// Rows after a cursor.
    After(Cursor),
}

/// A list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserQuery {
    /// Which users.
    pub filter: UserFilter,
    /// In which order.
    pub sort: Sort,
    /// Page size, 1-100.
    pub per_page: u64,
    /// Which page.
    pub paging: Paging,
}

/// One page of users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    /// The users.
    pub items: Vec<User>,
    /// How many users match the filter in all.
    pub total: u64,
    /// Where the next page starts, when there is one.
    pub next: Option<Cursor>,
}

/// A text filter (`email`, `q`): absent or empty is no filter.
///
/// # Errors
///
/// Past the longest stored value, or with control characters.
pub fn text_filter(raw: Option<&str>) -> Result<Option<String>, &'static str> {
    match raw {
        None | Some("") => Ok(None),
        Some(text) if text.chars().count() > super::limits::FILTER_MAX_CHARS => {
            Err(super::limits::FILTER_TOO_LONG)
        }
        Some(text) if text.chars().any(char::is_control) => {
            Err("must not contain control characters")
        }
        Some(text) => Ok(Some(text.to_owned())),
    }
}

/// A `created_after`/`created_before` bound, at microsecond precision.
///
/// # Errors
///
/// Not RFC 3339, or outside the years 0001 to 9999 in UTC.
pub fn time_bound(raw: Option<&str>) -> Result<Option<DateTime<Utc>>, &'static str> {
    raw.map(|text| {
        let t = DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc).trunc_subsecs(6))
            .map_err(|_| "must be an RFC 3339 date-time such as 2026-11-26T10:00:00Z")?;
        // Years past 9999 in UTC (`9999-12-31T23:59:59-23:59`) have no
        // four-digit form: SQLite would compare them as text wrongly.
        if (1..=9999).contains(&t.year()) {
            Ok(t)
        } else {
            Err("must fall between the years 0001 and 9999 in UTC")
        }
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_round_trip() {
        for raw in Sort::NAMES {
            assert_eq!(Sort::parse(raw).unwrap().as_str(), raw);
        }
        for bad in ["", "-", "id", "--name", "Name", "created_at "] {
            assert!(Sort::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn filters_and_bounds_parse_as_the_contract_says() {
        assert_eq!(text_filter(None), Ok(None));
        assert_eq!(text_filter(Some("")), Ok(None));
        assert_eq!(text_filter(Some("50%_")), Ok(Some("50%_".into())));
        assert!(text_filter(Some("a\0")).is_err());
        assert!(text_filter(Some(&"a".repeat(255))).is_err());
        let t = time_bound(Some("2026-11-26T10:00:00.1234567+01:00"))
            .unwrap()
            .unwrap();
        assert_eq!(format_time(t), "2026-11-26T09:00:00.123456Z");
        for bad in [
            "yesterday",
            "9999-12-31T23:59:59-23:59",
            "0000-01-01T00:00:00Z",
        ] {
            assert!(time_bound(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_reject_tampering() {
        let sort = Sort::parse("-name").unwrap();
        let cursor = Cursor {
            sort,
            value: CursorValue::Text(None),
            id: Uuid::now_v7(),
        };
        let encoded = cursor.encode();
        assert_eq!(Cursor::decode(&encoded, sort), Ok(cursor));
        assert!(
            Cursor::decode(&encoded, Sort::default()).is_err(),
            "other sort"
        );
        for bad in ["", "!!!", "bm90IGpzb24", &encoded[1..]] {
            assert!(Cursor::decode(bad, sort).is_err(), "{bad:?}");
        }
        let nul = Cursor {
            sort: Sort::parse("email").unwrap(),
            value: CursorValue::Text(Some("a\0b".into())),
            id: Uuid::now_v7(),
        };
        assert!(
            Cursor::decode(&nul.encode(), nul.sort).is_err(),
            "control characters"
        );
        let wrong_value = Cursor {
            sort: Sort::default(),
            value: CursorValue::Text(Some("x".into())),
            id: Uuid::now_v7(),
        };
        assert!(Cursor::decode(&wrong_value.encode(), Sort::default()).is_err());
    }
}
