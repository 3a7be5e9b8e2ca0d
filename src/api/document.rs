//! Corrections to the generated OpenAPI document, for the three things
//! poem-openapi's derives cannot say: that request objects reject unknown
//! fields, that a merge patch's `name` may be `null`, and the `X-Request-Id`
//! header on every response. Everything else comes from the types.

use serde_json::{Value, json};

use crate::domain::limits::REQUEST_ID_MAX_CHARS;

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
                        "schema": {"type": "string", "maxLength": REQUEST_ID_MAX_CHARS}
                    });
                }
            }
        }
    }
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| generated.to_owned())
}

fn set(doc: &mut Value, pointer: &str, value: Value) {
    if let Some((parent, key)) = pointer.rsplit_once('/')
        && let Some(object) = doc.pointer_mut(parent).and_then(Value::as_object_mut)
    {
        object.insert(key.replace("~1", "/").replace("~0", "~"), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENERATED: &str = r#"{
        "paths": {"/users/{id}": {"patch": {"responses": {"200": {"description": "ok"}}}}},
        "components": {"schemas": {
            "PatchUserRequest": {"type": "object", "properties": {"name": {"type": "string"}}},
            "User": {"type": "object"}
        }}
    }"#;

    #[test]
    fn patches_only_what_the_derives_cannot_say() {
        let doc: Value = serde_json::from_str(&patch(GENERATED)).unwrap();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["PatchUserRequest"]["additionalProperties"], false);
        assert_eq!(
            schemas["User"].get("additionalProperties"),
            None,
            "responses may grow fields"
        );
        assert_eq!(
            schemas["PatchUserRequest"]["properties"]["name"]["nullable"],
            true
        );
        let response = &doc["paths"]["/users/{id}"]["patch"]["responses"]["200"];
        assert_eq!(response["description"], "ok");
        assert_eq!(response["headers"]["X-Request-Id"]["required"], true);
    }

    #[test]
    fn a_document_that_is_not_json_is_served_as_it_is() {
        assert_eq!(patch("not json"), "not json");
    }
}
