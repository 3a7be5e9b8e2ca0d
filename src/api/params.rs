//! Input types whose OpenAPI schema carries the contract's limits from
//! [`crate::domain::limits`], so that the document, the validators and the
//! store read the same numbers.
//!
//! Each type parses leniently on purpose: a value the framework would turn
//! into a `400` (a number too large for 64 bits, a `sort` it does not know)
//! is a field rule broken, which the contract makes a `422` naming the
//! field. The handler applies the rule; the type only documents it.

use std::{borrow::Cow, marker::PhantomData};

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type},
};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::error::FieldError;
use crate::domain::limits::{
    EMAIL_MAX_CHARS, NAME_MAX_CHARS, PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS,
};
use crate::domain::{AccountStatus, Role, listing::Sort};

/// The parts of `Type` that are the same for every scalar value of the API
/// (these inputs, and `types::Timestamp`): it is required, it is its own raw
/// value, and it holds one element.
macro_rules! scalar_type {
    () => {
        const IS_REQUIRED: bool = true;
        type RawValueType = Self;
        type RawElementValueType = Self;

        fn as_raw_value(&self) -> Option<&Self::RawValueType> {
            Some(self)
        }

        fn raw_element_iter<'a>(
            &'a self,
        ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
            Box::new(std::iter::once(self))
        }
    };
}
pub(crate) use scalar_type;

/// An email field: the domain's [`crate::domain::Email`] checks the rest.
pub type EmailText = Text<1, EMAIL_MAX_CHARS>;
/// A new password: the domain's [`crate::domain::Password`] checks the rest.
pub type PasswordText = Text<PASSWORD_MIN_CHARS, PASSWORD_MAX_CHARS>;
/// A display name: the domain's [`crate::domain::UserName`] checks the rest.
pub type NameText = Text<0, NAME_MAX_CHARS>;

/// A JSON string documented with `minLength`/`maxLength`; the domain parser
/// behind the field enforces the same bounds (counted in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text<const MIN: usize, const MAX: usize>(pub String);

impl<const MIN: usize, const MAX: usize> Text<MIN, MAX> {
    /// The text as sent.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de, const MIN: usize, const MAX: usize> Deserialize<'de> for Text<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

impl<const MIN: usize, const MAX: usize> serde::Serialize for Text<MIN, MAX> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<const MIN: usize, const MAX: usize> Type for Text<MIN, MAX> {
    scalar_type!();

    fn name() -> Cow<'static, str> {
        format!("string_{MIN}_{MAX}").into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            min_length: (MIN > 0).then_some(MIN),
            max_length: Some(MAX),
            ..MetaSchema::new("string")
        }))
    }
}

impl<const MIN: usize, const MAX: usize> ParseFromJSON for Text<MIN, MAX> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(text)) => Ok(Self(text)),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl<const MIN: usize, const MAX: usize> ToJSON for Text<MIN, MAX> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

/// An integer query parameter documented with its range and default.
/// `None` holds an integer too large for 64 bits: out of range, like any
/// other, rather than "not a number".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounded<const MIN: i64, const MAX: i64, const DEFAULT: i64>(pub Option<i64>);

impl<const MIN: i64, const MAX: i64, const DEFAULT: i64> Bounded<MIN, MAX, DEFAULT> {
    /// The value, or the default when the parameter is absent.
    ///
    /// # Errors
    ///
    /// The `422` field error `message` when it is outside `MIN..=MAX`.
    pub fn value_or_default(
        param: Option<Self>,
        name: &str,
        message: &str,
    ) -> Result<i64, FieldError> {
        match param {
            None => Ok(DEFAULT),
            Some(Self(Some(value))) if (MIN..=MAX).contains(&value) => Ok(value),
            Some(_) => Err(FieldError::query(name, message)),
        }
    }
}

impl<const MIN: i64, const MAX: i64, const DEFAULT: i64> Type for Bounded<MIN, MAX, DEFAULT> {
    scalar_type!();

    fn name() -> Cow<'static, str> {
        format!("integer_int64_{MIN}_{MAX}").into()
    }

    fn schema_ref() -> MetaSchemaRef {
        // Page bounds are far inside f64's exact integers.
        #[allow(clippy::cast_precision_loss)]
        let (minimum, maximum) = (MIN as f64, MAX as f64);
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            minimum: Some(minimum),
            maximum: Some(maximum),
            default: Some(Value::from(DEFAULT)),
            ..MetaSchema::new_with_format("integer", "int64")
        }))
    }
}

impl<const MIN: i64, const MAX: i64, const DEFAULT: i64> ParseFromParameter
    for Bounded<MIN, MAX, DEFAULT>
{
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::custom("must be an integer"));
        }
        Ok(Self(value.parse().ok()))
    }
}

/// The values a string query parameter may take, for its schema.
pub trait Choices: Send + Sync {
    /// Every accepted value.
    const VALUES: &'static [&'static str];
}

/// The `role` values.
#[derive(Debug)]
pub struct Roles;

impl Choices for Roles {
    const VALUES: &'static [&'static str] = &Role::NAMES;
}

/// The `status` values.
#[derive(Debug)]
pub struct Statuses;

impl Choices for Statuses {
    const VALUES: &'static [&'static str] = &AccountStatus::NAMES;
}

/// The `sort` values of `GET /users`.
#[derive(Debug)]
pub struct UserSorts;

impl Choices for UserSorts {
    const VALUES: &'static [&'static str] = &Sort::NAMES;
}

/// A string query parameter documented as one of `C::VALUES`. Any string
/// parses: the handler's parser rejects the others with a `422`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneOf<C>(pub String, PhantomData<C>);

impl<C> OneOf<C> {
    /// The value as sent.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<C: Choices> Type for OneOf<C> {
    scalar_type!();

    fn name() -> Cow<'static, str> {
        format!("string_enum_{}", C::VALUES.join("_")).into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            enum_items: C::VALUES.iter().map(|&v| Value::from(v)).collect(),
            ..MetaSchema::new("string")
        }))
    }
}

impl<C: Choices> ParseFromParameter for OneOf<C> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(Self(value.to_owned(), PhantomData))
    }
}

/// A query parameter documented as an RFC 3339 `date-time`; any string
/// parses, and the handler rejects a malformed one with a `422`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateTimeText(pub String);

impl Type for DateTimeText {
    scalar_type!();

    fn name() -> Cow<'static, str> {
        "string_date-time_text".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", "date-time")))
    }
}

impl ParseFromParameter for DateTimeText {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(Self(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Page = Bounded<1, 100, 20>;

    #[test]
    fn integers_past_64_bits_are_out_of_range_not_malformed() {
        let parsed = |raw: &str| Page::parse_from_parameter(raw).ok();
        assert_eq!(parsed("7"), Some(Bounded(Some(7))));
        assert_eq!(parsed("-3"), Some(Bounded(Some(-3))));
        assert_eq!(parsed("99999999999999999999"), Some(Bounded(None)));
        assert_eq!(parsed("-99999999999999999999"), Some(Bounded(None)));
        for malformed in ["", "-", "1.5", "abc", "1e3", " 1", "0x10"] {
            assert_eq!(parsed(malformed), None, "{malformed:?}");
        }
    }

    #[test]
    fn the_range_is_applied_by_value_or_default() {
        let check =
            |p: Option<Page>| Page::value_or_default(p, "per_page", "must be from 1 to 100");
        assert_eq!(check(None), Ok(20));
        assert_eq!(check(Some(Bounded(Some(100)))), Ok(100));
        for bad in [Some(0), Some(101), Some(i64::MIN), None] {
            let err = check(Some(Bounded(bad))).unwrap_err();
            assert_eq!(err.field, "per_page");
            assert_eq!(err.pointer, None);
        }
    }

    #[test]
    fn schemas_carry_the_limits() {
        let MetaSchemaRef::Inline(int) = Page::schema_ref() else {
            panic!("inline")
        };
        assert_eq!((int.minimum, int.maximum), (Some(1.0), Some(100.0)));
        assert_eq!(int.default, Some(Value::from(20)));
        let MetaSchemaRef::Inline(text) = Text::<8, 128>::schema_ref() else {
            panic!("inline")
        };
        assert_eq!((text.min_length, text.max_length), (Some(8), Some(128)));
    }
}
