//! Shared response types: users, timestamps at microsecond precision, and
//! fields that are always present but may be `null`.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, Utc};
use poem_openapi::{
    Enum, Object,
    registry::{MetaSchema, MetaSchemaRef, Registry},
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use uuid::Uuid;

use crate::{
    api::{
        json::{WriteJson, write_str},
        params::{EmailText, Text, scalar_type},
    },
    domain::{AccountStatus, Role, User, UserName},
};

/// A field that is always present and may be `null`. poem-openapi's `Option`
/// is declared optional but not nullable, which typed client generators
/// reject when they meet the `null`; this declares `nullable: true` and keeps
/// the field required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nullable<T>(pub Option<T>);

impl<T: Type> Type for Nullable<T> {
    const IS_REQUIRED: bool = true;
    type RawValueType = T::RawValueType;
    type RawElementValueType = T::RawElementValueType;

    fn name() -> Cow<'static, str> {
        format!("nullable_{}", T::name()).into()
    }

    fn schema_ref() -> MetaSchemaRef {
        match T::schema_ref() {
            MetaSchemaRef::Inline(schema) => MetaSchemaRef::Inline(Box::new(MetaSchema {
                nullable: true,
                ..*schema
            })),
            reference @ MetaSchemaRef::Reference(_) => {
                MetaSchemaRef::Inline(Box::new(MetaSchema {
                    nullable: true,
                    all_of: vec![reference],
                    ..MetaSchema::ANY
                }))
            }
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        self.0.as_ref().and_then(Type::as_raw_value)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        match &self.0 {
            Some(value) => value.raw_element_iter(),
            None => Box::new(std::iter::empty()),
        }
    }
}

impl<T: Serialize> Serialize for Nullable<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<T: ToJSON> ToJSON for Nullable<T> {
    fn to_json(&self) -> Option<Value> {
        Some(
            self.0
                .as_ref()
                .and_then(ToJSON::to_json)
                .unwrap_or(Value::Null),
        )
    }
}

impl<T: ParseFromJSON> ParseFromJSON for Nullable<T> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            None | Some(Value::Null) => Ok(Self(None)),
            some => T::parse_from_json(some)
                .map(|v| Self(Some(v)))
                .map_err(ParseError::propagate),
        }
    }
}

/// An RFC 3339 UTC timestamp with exactly six fractional digits
/// (`2026-11-26T10:00:00.123456Z`), usable as a filter bound as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub DateTime<Utc>);

impl Type for Timestamp {
    scalar_type!();

    fn name() -> Cow<'static, str> {
        "string_date-time".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            example: Some(Value::String("2026-11-26T10:00:00.123456Z".into())),
            ..MetaSchema::new_with_format("string", "date-time")
        }))
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`: the length of every timestamp of years
/// 0 to 9999.
const RFC3339_MICROS_LEN: usize = 27;

impl Timestamp {
    fn rfc3339(self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    /// What [`Self::rfc3339`] returns, written into `buf` digit by digit:
    /// chrono's formatter goes through `fmt` and a `String` per call, and a
    /// page of users holds forty-odd timestamps (`k6/callgrind.sh` on W2c
    /// counts the difference). `None` where chrono writes something else: a
    /// year outside 0 to 9999, or a leap second.
    fn write_rfc3339(self, buf: &mut [u8; RFC3339_MICROS_LEN]) -> Option<&str> {
        use chrono::{Datelike as _, Timelike as _};
        let (date, time) = (self.0.date_naive(), self.0.time());
        let year = u32::try_from(date.year()).ok().filter(|y| *y <= 9999)?;
        let nanos = time.nanosecond();
        if nanos >= 1_000_000_000 {
            return None;
        }
        let mut at = 0;
        let mut put = |mut value: u32, digits: usize, then: u8| {
            // Digits from the last: divisions by a constant 10 are cheap.
            for digit in buf[at..at + digits].iter_mut().rev() {
                // A decimal digit: always below 10, so the cast is exact.
                *digit = b'0' + (value % 10) as u8;
                value /= 10;
            }
            buf[at + digits] = then;
            at += digits + 1;
        };
        put(year, 4, b'-');
        put(date.month(), 2, b'-');
        put(date.day(), 2, b'T');
        put(time.hour(), 2, b':');
        put(time.minute(), 2, b':');
        put(time.second(), 2, b'.');
        put(nanos / 1_000, 6, b'Z');
        std::str::from_utf8(buf).ok()
    }
}

impl Timestamp {
    /// Appends this timestamp as serde writes it (a JSON string; digits
    /// and `-:.TZ` need no escaping).
    fn write_json(self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        match self.write_rfc3339(&mut [0; RFC3339_MICROS_LEN]) {
            Some(text) => {
                out.push(b'"');
                out.extend_from_slice(text.as_bytes());
                out.push(b'"');
                Ok(())
            }
            None => serde_json::to_writer(out, &self),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.write_rfc3339(&mut [0; RFC3339_MICROS_LEN]) {
            Some(text) => serializer.serialize_str(text),
            None => serializer.serialize_str(&self.rfc3339()),
        }
    }
}

impl ToJSON for Timestamp {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.rfc3339()))
    }
}

impl ParseFromJSON for Timestamp {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(s)) => DateTime::parse_from_rfc3339(&s)
                .map(|t| Self(t.with_timezone(&Utc)))
                .map_err(ParseError::custom),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

/// A user's role: `admin` manages every user, `user` manages itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize, Serialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    /// Manages every user.
    Admin,
    /// Manages itself.
    User,
}

impl From<Role> for RoleName {
    fn from(role: Role) -> Self {
        match role {
            Role::Admin => Self::Admin,
            Role::User => Self::User,
        }
    }
}

impl From<RoleName> for Role {
    fn from(role: RoleName) -> Self {
        match role {
            RoleName::Admin => Self::Admin,
            RoleName::User => Self::User,
        }
    }
}

/// Whether an account may log in: `active` does, `invited` has not set its
/// first password yet, `disabled` may not (an admin can enable it again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize, Serialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum StatusName {
    /// Logs in.
    Active,
    /// Created by an admin without a password.
    Invited,
    /// May not log in.
    Disabled,
}

impl From<AccountStatus> for StatusName {
    fn from(status: AccountStatus) -> Self {
        match status {
            AccountStatus::Active => Self::Active,
            AccountStatus::Invited => Self::Invited,
            AccountStatus::Disabled => Self::Disabled,
        }
    }
}

impl From<StatusName> for AccountStatus {
    fn from(status: StatusName) -> Self {
        match status {
            StatusName::Active => Self::Active,
            StatusName::Invited => Self::Invited,
            StatusName::Disabled => Self::Disabled,
        }
    }
}

/// A user: the only shape in which a user is ever returned. `role` is the
/// current role (see `RoleName`), `status` whether it may log in (see
/// `StatusName`).
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename_all = "snake_case", rename = "User", example)]
pub struct UserResponse {
    /// Public id (UUID v7, time-ordered).
    pub id: Uuid,
    /// Email, lower-cased.
    pub email: EmailText,
    /// Display name, or `null`.
    pub name: Nullable<String>,
    // No doc comment: it would wrap the enum's `$ref` in an `allOf`.
    pub role: RoleName,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    // No doc comment: it would wrap the enum's `$ref` in an `allOf`.
    pub status: StatusName,
    /// Whether the user proved control of this email (or an admin or the
    /// operator vouched for it); an email change sets it back to `false`.
    pub email_verified: bool,
    /// The last successful login, or `null`.
    pub last_login_at: Nullable<Timestamp>,
}

impl WriteJson for UserResponse {
    /// serde's output, field by field, without escaping what cannot need it.
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(b"{\"id\":\"");
        out.extend_from_slice(
            self.id
                .hyphenated()
                .encode_lower(&mut Uuid::encode_buffer())
                .as_bytes(),
        );
        out.extend_from_slice(b"\",\"email\":");
        write_str(out, self.email.as_str())?;
        out.extend_from_slice(b",\"name\":");
        match &self.name.0 {
            Some(name) => write_str(out, name)?,
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(match self.role {
            RoleName::Admin => b",\"role\":\"admin\",\"created_at\":",
            RoleName::User => b",\"role\":\"user\",\"created_at\":",
        });
        self.created_at.write_json(out)?;
        out.extend_from_slice(b",\"updated_at\":");
        self.updated_at.write_json(out)?;
        out.extend_from_slice(match self.status {
            StatusName::Active => b",\"status\":\"active\"",
            StatusName::Invited => b",\"status\":\"invited\"",
            StatusName::Disabled => b",\"status\":\"disabled\"",
        });
        out.extend_from_slice(if self.email_verified {
            b",\"email_verified\":true,\"last_login_at\":"
        } else {
            b",\"email_verified\":false,\"last_login_at\":"
        });
        match self.last_login_at.0 {
            Some(at) => at.write_json(out)?,
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
        Ok(())
    }
}

impl From<User> for UserResponse {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            email: Text(user.email.into_string()),
            name: Nullable(user.name.map(UserName::into_string)),
            role: user.role.into(),
            created_at: Timestamp(user.created_at),
            updated_at: Timestamp(user.updated_at),
            status: user.status.into(),
            email_verified: user.email_verified,
            last_login_at: Nullable(user.last_login_at.map(Timestamp)),
        }
    }
}

impl poem_openapi::types::Example for UserResponse {
    fn example() -> Self {
        let at = example_time();
        Self {
            id: Uuid::from_u128(0x0193_6a4e_0c1d_7000_8000_0000_0000_0002),
            email: Text("ann@example.com".into()),
            name: Nullable(Some("Ann Lee".into())),
            role: RoleName::User,
            created_at: Timestamp(at),
            updated_at: Timestamp(at),
            status: StatusName::Active,
            email_verified: true,
            last_login_at: Nullable(Some(Timestamp(at))),
        }
    }
}

/// A fixed instant for document examples.
#[must_use]
pub fn example_time() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(1_795_687_200_123_456).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeDelta, TimeZone as _};
    use rand::Rng as _;

    use super::*;

    fn json(at: DateTime<Utc>) -> String {
        serde_json::to_string(&Timestamp(at)).unwrap()
    }

    #[test]
    fn timestamps_serialize_as_chrono_writes_them() {
        let mut rng = rand::rng();
        let min = NaiveDate::from_ymd_opt(0, 1, 1)
            .unwrap()
            .and_time(chrono::NaiveTime::MIN);
        let max = NaiveDate::from_ymd_opt(9999, 12, 31)
            .unwrap()
            .and_hms_micro_opt(23, 59, 59, 999_999)
            .unwrap();
        let span = (max - min).num_microseconds().unwrap();
        let mut cases: Vec<DateTime<Utc>> = vec![
            Utc.from_utc_datetime(&min),
            Utc.from_utc_datetime(&max),
            Utc.with_ymd_and_hms(2026, 12, 6, 3, 0, 0).unwrap(),
            // Nanoseconds are cut to microseconds, not rounded.
            Utc.with_ymd_and_hms(2026, 12, 6, 3, 0, 0).unwrap()
                + TimeDelta::nanoseconds(999_999_999),
            // Outside four-digit years chrono's own form is kept.
            Utc.with_ymd_and_hms(-1, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap(),
            // A leap second.
            Utc.from_utc_datetime(
                &NaiveDate::from_ymd_opt(2016, 12, 31)
                    .unwrap()
                    .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
                    .unwrap(),
            ),
        ];
        cases.extend((0..10_000).map(|_| {
            Utc.from_utc_datetime(&min)
                + TimeDelta::microseconds(rng.random_range(0..=span))
                + TimeDelta::nanoseconds(rng.random_range(0..1_000))
        }));
        for at in cases {
            let expected = format!("\"{}\"", at.to_rfc3339_opts(SecondsFormat::Micros, true));
            assert_eq!(json(at), expected, "{at:?}");
        }
    }
}
