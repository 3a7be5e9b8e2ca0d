//! Corrections to the generated OpenAPI document, for what poem-openapi's
//! derives cannot say: that request objects reject unknown fields, that a
//! merge patch's `name` may be `null`, the real shape of `GET /health`'s 503,
//! the query parameters' ranges and values (checked by the handlers, so that
//! violations are 422s rather than the framework's 400s), and the
//! `X-Request-Id` header on every response.

use serde_json::{Value, json};

/// The served document: the generated one with the corrections applied.
#[must_use]
pub fn patch(generated: &str) -> String {
    let Ok(mut doc) = serde_json::from_str::<Value>(generated) else {
        return generated.to_owned();
    };
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in schemas.iter_mut() {
            if name.ends_with("Request") {
                schema["additionalProperties"] = json!(false);
            }
        }
    }
    set(
        &mut doc,
        "/components/schemas/PatchUserRequest/properties/name/nullable",
        json!(true),
    );
    set(
        &mut doc,
        "/components/schemas/LoginRequest/properties/email/maxLength",
        json!(254),
    );
    set(
        &mut doc,
        "/paths/~1health/get/responses/503",
        json!({
            "description": "The database does not answer or migrations are pending: still a health document, not a problem.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HealthReport"}}}
        }),
    );
    if let Some(params) = doc
        .pointer_mut("/paths/~1users/get/parameters")
        .and_then(Value::as_array_mut)
    {
        for param in params {
            let extra = match param["name"].as_str() {
                Some("page") => json!({"minimum": 1, "maximum": 10_000_000}),
                Some("per_page") => json!({"minimum": 1, "maximum": 100}),
                Some("role") => json!({"enum": ["admin", "user"]}),
                Some("sort") => {
                    json!({"enum": ["created_at", "-created_at", "email", "-email", "name", "-name"]})
                }
                Some("created_after" | "created_before") => json!({"format": "date-time"}),
                _ => continue,
            };
            if let (Some(schema), Some(extra)) =
                (param["schema"].as_object_mut(), extra.as_object())
            {
                schema.extend(extra.clone());
            }
        }
    }
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in item.values_mut() {
                let Some(responses) = operation
                    .get_mut("responses")
                    .and_then(Value::as_object_mut)
                else {
                    continue;
                };
                for response in responses.values_mut() {
                    response["headers"]["X-Request-Id"] = json!({
                        "description": "The caller's request id when sane (1-128 of [A-Za-z0-9._-]), or a generated one.",
                        "required": true,
                        "schema": {"type": "string", "maxLength": 128}
                    });
                }
            }
        }
    }
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| generated.to_owned())
}

fn set(doc: &mut Value, pointer: &str, value: Value) {
    if let Some((parent, key)) = pointer.rsplit_once('/') {
        if let Some(object) = doc.pointer_mut(parent).and_then(Value::as_object_mut) {
            object.insert(key.replace("~1", "/").replace("~0", "~"), value);
        }
    }
}
