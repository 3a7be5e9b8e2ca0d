//! `JsonBody<T>`: the JSON request payload of every write endpoint.
//!
//! poem-openapi's own `Json<T>` reports every failure as a 400 with a message
//! that does not name the field. The contract separates the cases: a body that
//! is not JSON is a 400, JSON of the wrong shape (missing field, wrong type,
//! unknown field) is a 422 naming the field with a JSON pointer, and a body
//! over the configured limit is a 413 even when it arrives chunked.

use poem::{Request, RequestBody};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions, impl_apirequest_for_payload,
    payload::{ParsePayload, Payload},
    registry::{MetaMediaType, MetaRequest, MetaSchema, MetaSchemaRef, Registry},
    types::Type,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ApiError, FieldError};

/// The configured request body limits, added to every request by the app.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit {
    /// Largest body, bytes.
    pub bytes: usize,
    /// Longest a body may take to arrive.
    pub timeout: std::time::Duration,
}

/// A JSON request body deserialized into `T` (which derives both `Object`, for
/// the document, and `Deserialize` with `deny_unknown_fields`, for parsing).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        is_json(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type + DeserializeOwned> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let bytes = read_limited(request, body).await?;
        parse(&bytes).map(Self).map_err(Into::into)
    }
}

impl_apirequest_for_payload!(JsonBody<T>, T: Type + DeserializeOwned);

/// A JSON merge patch (RFC 7396) body: `application/merge-patch+json`, or
/// plain `application/json`, parsed like [`JsonBody`].
#[derive(Debug)]
pub struct MergePatch<T>(pub T);

impl<'a, T: Type + DeserializeOwned> ApiExtractor<'a> for MergePatch<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        json_request::<T>(&["application/merge-patch+json", "application/json"], true)
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        if !request.content_type().is_some_and(is_json) {
            return Err(ApiError::UnsupportedMediaType.into());
        }
        let bytes = read_limited(request, body).await?;
        Ok(Self(parse(&bytes)?))
    }
}

/// A JSON body that may be omitted entirely (no body at all, or an empty one).
#[derive(Debug)]
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<'a, T: Type + DeserializeOwned> ApiExtractor<'a> for OptionalJsonBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        json_request::<T>(&["application/json"], false)
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let bytes = read_limited(request, body).await?;
        if bytes.is_empty() {
            return Ok(Self(None));
        }
        if !request.content_type().is_some_and(is_json) {
            return Err(ApiError::UnsupportedMediaType.into());
        }
        Ok(Self(Some(parse(&bytes)?)))
    }
}

/// The document's description of a JSON request body of `T`.
fn json_request<T: Type>(content_types: &[&'static str], required: bool) -> Option<MetaRequest> {
    Some(MetaRequest {
        description: None,
        content: content_types
            .iter()
            .map(|&content_type| MetaMediaType {
                content_type,
                schema: T::schema_ref(),
            })
            .collect(),
        required,
    })
}

/// `application/json`, or any `application/*+json` such as `merge-patch+json`.
#[must_use]
pub fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Reads the whole body, refusing more than the configured limit.
///
/// # Errors
///
/// 413 past the limit; 400 when the connection fails mid-body or the body
/// does not arrive in time.
pub async fn read_limited(request: &Request, body: &mut RequestBody) -> Result<Vec<u8>, ApiError> {
    let BodyLimit {
        bytes: limit,
        timeout,
    } = request.data::<BodyLimit>().copied().unwrap_or(BodyLimit {
        bytes: usize::MAX,
        timeout: std::time::Duration::MAX,
    });
    let body = body
        .take()
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("request body read twice")))?;
    let Ok(read) = tokio::time::timeout(timeout, body.into_bytes_limit(limit)).await else {
        return Err(ApiError::BadRequest(format!(
            "the request body did not arrive within {} seconds",
            timeout.as_secs()
        )));
    };
    match read {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(poem::error::ReadBodyError::PayloadTooLarge) => {
            Err(ApiError::PayloadTooLarge { limit })
        }
        Err(e) => Err(ApiError::BadRequest(format!(
            "cannot read the request body: {e}"
        ))),
    }
}

/// Parses JSON bytes into `T`, mapping serde's error to the contract's status.
///
/// # Errors
///
/// 400 when the bytes are not JSON; 422 naming the field when the shape is wrong.
pub fn parse<T: Type + DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(ApiError::BadRequest(format!(
            "The body is not valid UTF-8: {e}"
        )));
    }
    let starts_object = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{');
    if !starts_object {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => ApiError::Validation(vec![FieldError {
                    field: String::new(),
                    pointer: Some("#".to_owned()),
                    message: "the body must be a JSON object".to_owned(),
                }]),
                Err(e) => ApiError::BadRequest(format!(
                    "The body is not valid JSON: {}",
                    strip_position(&e.to_string())
                )),
            },
        );
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let err = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(value) => {
            return match de.end() {
                Ok(()) => Ok(value),
                Err(e) => Err(ApiError::BadRequest(format!(
                    "The body is not valid JSON: {}",
                    strip_position(&e.to_string())
                ))),
            };
        }
        Err(err) => err,
    };
    let inner = err.inner();
    // Whether the body is JSON at all decides between 400 and 422: serde
    // may report a shape error before a syntax error further on
    // (`{"a": 1} trailing`), and reports some shape errors as syntax (an
    // enum given a number is "expected value").
    let value = match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => value,
        Err(syntax) => {
            return Err(ApiError::BadRequest(format!(
                "The body is not valid JSON: {}",
                strip_position(&syntax.to_string())
            )));
        }
    };
    // serde stops at the first problem; the schema names all of them.
    let errors = shape_errors::<T>(&value);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let message = strip_position(&inner.to_string());
    let mut segments: Vec<String> = err
        .path()
        .iter()
        .filter_map(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
            _ => None,
        })
        .collect();
    // serde reports a missing field at the enclosing object, with its name
    // only in the message.
    let message = if let Some(name) = backticked(&message, "missing field `") {
        segments.push(name);
        "is required".to_owned()
    } else if backticked(&message, "unknown field `").is_some() {
        "is not a known field".to_owned()
    } else if message.starts_with("invalid type: null") {
        "must not be null".to_owned()
    } else {
        message
    };
    let pointer = segments
        .iter()
        .fold("#".to_owned(), |mut pointer, segment| {
            pointer.push('/');
            pointer.push_str(&segment.replace('~', "~0").replace('/', "~1"));
            pointer
        });
    Err(ApiError::Validation(vec![FieldError {
        field: segments.join("."),
        pointer: Some(pointer),
        message,
    }]))
}

/// At most this many field errors in one answer: a body of thousands of
/// unknown keys must not make a problem document thousands of entries long.
const MAX_FIELD_ERRORS: usize = 50;

/// Every way a JSON object breaks the documented shape of `T`: each
/// required field missing, each field of the wrong type (enum fields
/// included), each unknown field, in the document's field order, up to
/// [`MAX_FIELD_ERRORS`]. Only the top level is checked: no request body
/// nests objects.
fn shape_errors<T: Type>(value: &Value) -> Vec<FieldError> {
    let Value::Object(fields) = value else {
        return Vec::new();
    };
    let mut registry = Registry::new();
    T::register(&mut registry);
    let root = T::schema_ref();
    let Some(schema) = resolve(&registry, &root) else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    for (name, property) in &schema.properties {
        let Some(property) = resolve(&registry, property) else {
            continue;
        };
        let required = schema.required.contains(name);
        match fields.get(*name) {
            None if required => errors.push(FieldError::body(name, "is required")),
            None => {}
            Some(Value::Null) if required && !property.nullable => {
                errors.push(FieldError::body(name, "must not be null"));
            }
            Some(Value::Null) => {}
            Some(given) => {
                if let Some(message) = type_mismatch(property, given) {
                    errors.push(FieldError::body(name, message));
                }
            }
        }
    }
    let unknown = fields
        .keys()
        .filter(|name| !schema.properties.iter().any(|(known, _)| known == name));
    for name in unknown {
        if errors.len() == MAX_FIELD_ERRORS {
            break;
        }
        errors.push(FieldError::body(name, "is not a known field"));
    }
    errors
}

/// The schema behind a reference, or inline; a property that only wraps a
/// reference (to add a description) is the referenced schema.
fn resolve<'a>(registry: &'a Registry, schema: &'a MetaSchemaRef) -> Option<&'a MetaSchema> {
    match schema {
        MetaSchemaRef::Reference(name) => registry.schemas.get(name),
        MetaSchemaRef::Inline(inline) => match inline.all_of.as_slice() {
            [only @ MetaSchemaRef::Reference(_), ..] if inline.ty.is_empty() => {
                resolve(registry, only)
            }
            _ => Some(inline),
        },
    }
}

/// Why `given` is not a value of `schema`'s type, if it is not.
fn type_mismatch(schema: &MetaSchema, given: &Value) -> Option<String> {
    let fits = match schema.ty {
        "string" => given.is_string(),
        "integer" => given.is_i64() || given.is_u64(),
        "number" => given.is_number(),
        "boolean" => given.is_boolean(),
        "array" => given.is_array(),
        "object" => given.is_object(),
        _ => true,
    };
    if !fits {
        let article = if schema.ty.starts_with(['a', 'i', 'o']) {
            "an"
        } else {
            "a"
        };
        return Some(format!("must be {article} {}", schema.ty));
    }
    if !schema.enum_items.is_empty() && !schema.enum_items.contains(given) {
        let choices: Vec<String> = schema.enum_items.iter().map(Value::to_string).collect();
        return Some(format!("must be one of {}", choices.join(", ")));
    }
    None
}

fn backticked(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next().map(str::to_owned)
}

/// serde_json appends " at line 1 column 12"; clients need the field, not the column.
fn strip_position(message: &str) -> String {
    message
        .rsplit_once(" at line ")
        .map_or(message, |(head, _)| head)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::RoleName;
    use poem_openapi::Object;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Object)]
    #[serde(deny_unknown_fields)]
    #[oai(rename_all = "snake_case", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        name: Option<String>,
    }

    #[derive(Debug, Deserialize, Object)]
    #[serde(deny_unknown_fields)]
    #[oai(rename_all = "snake_case", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Account {
        email: String,
        password: String,
        count: i64,
        role: Option<RoleName>,
        /// A described enum: poem-openapi wraps its reference.
        kind: Option<RoleName>,
    }

    #[test]
    fn a_body_of_many_unknown_fields_gets_a_bounded_answer() {
        let keys: Vec<String> = (0..5_000).map(|i| format!("\"k{i}\": 1")).collect();
        let body = format!("{{\"email\": \"a\", {}}}", keys.join(", "));
        let Err(ApiError::Validation(errors)) = parse::<Body>(body.as_bytes()) else {
            panic!("expected 422");
        };
        assert_eq!(errors.len(), MAX_FIELD_ERRORS);
    }

    #[test]
    fn every_broken_field_is_named_at_once() {
        let body = br#"{"role": 1, "kind": "root", "count": "3", "extra": true}"#;
        let Err(ApiError::Validation(errors)) = parse::<Account>(body) else {
            panic!("expected 422");
        };
        let named: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.field.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            named,
            [
                ("email", "is required"),
                ("password", "is required"),
                ("count", "must be an integer"),
                ("role", "must be a string"),
                ("kind", r#"must be one of "admin", "user""#),
                ("extra", "is not a known field"),
            ]
        );
        assert!(
            errors
                .iter()
                .all(|e| e.pointer.as_deref() == Some(&*format!("#/{}", e.field)))
        );
    }

    fn field_errors(bytes: &[u8]) -> Vec<FieldError> {
        match parse::<Body>(bytes) {
            Err(ApiError::Validation(errors)) => errors,
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn syntax_errors_are_bad_requests() {
        for body in [
            &b"{"[..],
            b"not json",
            b"",
            b"{\"email\": \"a\"} trailing",
            b"{\"x\": 1} ]",
            b"\"\xff\"",
        ] {
            assert!(
                matches!(parse::<Body>(body), Err(ApiError::BadRequest(_))),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn shape_errors_name_the_field() {
        let cases: [(&[u8], &str, &str); 4] = [
            (b"{}", "email", "is required"),
            (b"{\"email\": 5}", "email", "must be a string"),
            (
                b"{\"email\": \"a\", \"role\": \"admin\"}",
                "role",
                "is not a known field",
            ),
            (b"{\"email\": null}", "email", "must not be null"),
        ];
        for (body, field, message) in cases {
            let errors = field_errors(body);
            assert_eq!(errors[0].field, field, "{errors:?}");
            assert_eq!(
                errors[0].pointer.as_deref(),
                Some(format!("#/{field}").as_str())
            );
            assert_eq!(errors[0].message, message);
        }
    }

    #[test]
    fn non_objects_point_at_the_root() {
        let errors = field_errors(b"[1, 2]");
        assert_eq!(errors[0].pointer.as_deref(), Some("#"));
    }

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }
}
