//! What generated clients and black-box callers rely on: a document that
//! generators accept, and the answers to wrong shapes, methods and numbers.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, backends};

/// Every operation of the served document, as (method, path, operation).
fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            all.push((method.clone(), path.clone(), op.clone()));
        }
    }
    all
}

/// The `field` of each of a validation problem's errors, in order.
fn fields(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn the_document_declares_json_as_generators_expect_it() {
    let app = TestApp::spawn(&backends()[0]).await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    for (method, path, op) in operations(&spec) {
        let id = op["operationId"].as_str().unwrap().to_owned();
        for (status, response) in op["responses"].as_object().unwrap() {
            let description = response["description"].as_str().unwrap_or_default();
            assert!(!description.is_empty(), "{id} {status}: has a description");
            let Some(content) = response.get("content").and_then(Value::as_object) else {
                continue;
            };
            for media in content.keys() {
                let expected = if status.starts_with('2') || (id == "getHealth" && status == "503")
                {
                    "application/json"
                } else {
                    "application/problem+json"
                };
                assert_eq!(media, expected, "{id} {status}");
            }
            if !status.starts_with('2') && id != "getHealth" {
                assert_eq!(
                    content["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{id} {status}"
                );
            }
        }
        let statuses: Vec<&str> = op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        if method == "put" || method == "patch" {
            assert!(!statuses.contains(&"304"), "{id}: PUT/PATCH never send 304");
        }
        if path == "/health/live" {
            assert_eq!(statuses, ["200", "500"], "{id}");
        }
    }
}

#[tokio::test]
async fn each_operation_declares_its_own_problem_statuses() {
    let app = TestApp::spawn(&backends()[0]).await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    let declared = |id: &str| -> Vec<String> {
        let (_, _, op) = operations(&spec)
            .into_iter()
            .find(|(_, _, op)| op["operationId"] == id)
            .unwrap();
        op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|s| s.starts_with('4'))
            .cloned()
            .collect()
    };
    let writes: &[&str] = &[
        "400", "401", "403", "404", "409", "412", "413", "415", "422", "429",
    ];
    let cases: [(&str, &[&str]); 11] = [
        ("login", &["400", "401", "403", "413", "415", "422", "429"]),
        ("registerUser", &["400", "403", "409", "413", "415", "422"]),
        ("getCurrentUser", &["401"]),
        ("listUsers", &["400", "401", "403", "422"]),
        ("endUserSessions", &["401", "403", "404"]),
        ("getJwks", &["404"]),
        ("replaceUser", writes),
        ("updateUser", writes),
        ("deleteUser", &["401", "404", "409", "412"]),
        (
            "changePassword",
            &["400", "401", "403", "413", "415", "422", "429"],
        ),
        ("getUser", &["401", "404"]),
    ];
    for (id, expected) in cases {
        assert_eq!(declared(id), expected, "{id}");
    }
}

#[tokio::test]
async fn fields_that_can_be_null_are_declared_nullable_and_required() {
    let app = TestApp::spawn(&backends()[0]).await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    let schemas = &spec["components"]["schemas"];
    for (schema, field) in [
        ("User", "name"),
        ("UserPage", "next_cursor"),
        ("Session", "user_agent"),
        ("Session", "ip"),
        ("DatabaseCheck", "latency_ms"),
    ] {
        assert_eq!(
            schemas[schema]["properties"][field]["nullable"], true,
            "{schema}.{field}"
        );
        assert!(
            schemas[schema]["required"]
                .as_array()
                .unwrap()
                .contains(&json!(field)),
            "{schema}.{field} is required"
        );
    }
    // What a fresh login's session shows: every nullable field is what the
    // document says, and `last_used_at` is never null.
    let (_, tokens) = app.signed_up("ann@x.io").await;
    let sessions: Value = app
        .get_auth("/auth/sessions", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    assert!(sessions[0]["last_used_at"].is_string(), "{sessions}");
    assert_ne!(
        schemas["Session"]["properties"]["last_used_at"]["nullable"],
        true
    );
}

#[tokio::test]
async fn no_enum_reference_is_wrapped_in_all_of() {
    let app = TestApp::spawn(&backends()[0]).await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    let is_enum = |reference: &str| {
        let name = reference.trim_start_matches("#/components/schemas/");
        schemas[name].get("enum").is_some()
    };
    for (name, schema) in schemas {
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            continue;
        };
        for (field, property) in properties {
            if let Some(all_of) = property.get("allOf").and_then(Value::as_array) {
                for part in all_of {
                    if let Some(reference) = part.get("$ref").and_then(Value::as_str) {
                        assert!(!is_enum(reference), "{name}.{field} wraps an enum");
                    }
                }
            }
        }
    }
    assert_eq!(
        schemas["User"]["properties"]["role"]["$ref"],
        "#/components/schemas/RoleName"
    );
}

#[tokio::test]
async fn limits_in_the_document_are_the_ones_enforced() {
    let app = TestApp::spawn(&backends()[0]).await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    let schemas = &spec["components"]["schemas"];
    let email = &schemas["RegisterRequest"]["properties"]["email"];
    assert_eq!(email["maxLength"], 254);
    let password = &schemas["RegisterRequest"]["properties"]["password"];
    assert_eq!(
        (&password["minLength"], &password["maxLength"]),
        (&json!(8), &json!(128))
    );
    assert_eq!(
        schemas["CreateUserRequest"]["properties"]["name"]["maxLength"],
        100
    );
    let params = spec["paths"]["/users"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let param = |name: &str| &params.iter().find(|p| p["name"] == name).unwrap()["schema"];
    assert_eq!(param("per_page")["maximum"].as_f64(), Some(100.0));
    assert_eq!(param("per_page")["default"], 20);
    assert_eq!(param("sort")["enum"].as_array().unwrap().len(), 6);
    assert_eq!(param("role")["enum"], json!(["admin", "user"]));

    // The same limits, enforced: one past each is a 422 naming the field.
    let long_email = format!("{}@x.io", "a".repeat(250));
    let body = app
        .post_json(
            "/auth/register",
            &json!({"email": long_email, "password": "p".repeat(129), "name": "n".repeat(101)}),
        )
        .await;
    let problem = assert_problem(body, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert_eq!(fields(&problem), ["email", "password", "name"], "{problem}");
}

#[tokio::test]
async fn a_body_missing_several_fields_names_every_one() {
    let app = TestApp::spawn(&backends()[0]).await;
    let problem = assert_problem(
        app.post_json("/auth/register", &json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    assert_eq!(problem["detail"], "2 fields are invalid");
    assert_eq!(
        problem["errors"],
        json!([
            {"field": "email", "pointer": "#/email", "message": "is required"},
            {"field": "password", "pointer": "#/password", "message": "is required"},
        ])
    );
}

#[tokio::test]
async fn a_field_of_the_wrong_type_is_a_422_naming_it_enums_included() {
    let app = TestApp::spawn(&backends()[0]).await;
    let admin = app.login_admin().await;
    let cases = [
        (
            json!({"email": "b@x.io", "password": "a long passphrase", "role": 1}),
            "role",
        ),
        (
            json!({"email": "b@x.io", "password": "a long passphrase", "role": "root"}),
            "role",
        ),
        (
            json!({"email": 5, "password": "a long passphrase"}),
            "email",
        ),
        (
            json!({"email": "b@x.io", "password": ["a long passphrase"]}),
            "password",
        ),
        (
            json!({"email": "b@x.io", "password": "a long passphrase", "name": {}}),
            "name",
        ),
    ];
    for (body, field) in cases {
        let response = app
            .send_json_auth(Method::POST, "/users", &admin.access, &body)
            .await;
        let problem =
            assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
        assert_eq!(problem["errors"].as_array().unwrap().len(), 1, "{problem}");
    }
    let patched = app
        .send_json_auth(
            Method::PATCH,
            &format!(
                "/users/{}",
                app.me(&admin.access).await["id"].as_str().unwrap()
            ),
            &admin.access,
            &json!({"role": true, "name": 7}),
        )
        .await;
    let problem = assert_problem(patched, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert_eq!(fields(&problem), ["name", "role"], "{problem}");
}

#[tokio::test]
async fn a_wrong_method_is_a_405_with_allow_listing_the_routes_methods() {
    let app = TestApp::spawn(&backends()[0]).await;
    let cases = [
        (Method::POST, "/health/live", "GET, HEAD"),
        (Method::GET, "/auth/login", "POST"),
        (Method::PUT, "/users", "GET, POST, HEAD"),
        (Method::POST, "/users/0193", "DELETE, GET, PATCH, PUT, HEAD"),
        (Method::DELETE, "/metrics", "GET, HEAD"),
        (Method::POST, "/openapi.json", "GET, HEAD"),
    ];
    for (method, path, allow) in cases {
        let response = app.request(method.clone(), path).send().await.unwrap();
        let header = response
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(header.as_deref(), Some(allow), "{method} {path}");
        assert_problem(
            response,
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
        )
        .await;
    }
    // Allowed methods really are allowed.
    let head = app
        .request(Method::HEAD, "/health/live")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
}

#[tokio::test]
async fn ending_the_sessions_of_a_user_that_does_not_exist_is_a_404() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let admin = app.login_admin().await;
        let (ann, _) = app.signed_up("ann@x.io").await;
        let ann_id = ann["id"].as_str().unwrap();
        let ended = app
            .send_auth(
                Method::DELETE,
                &format!("/users/{ann_id}/sessions"),
                &admin.access,
            )
            .await;
        assert_eq!(ended.status(), StatusCode::NO_CONTENT);
        let deleted = app
            .send_auth(Method::DELETE, &format!("/users/{ann_id}"), &admin.access)
            .await;
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
        for id in [ann_id, "0193f000-0000-7000-8000-000000000000", "not-a-uuid"] {
            let response = app
                .send_auth(
                    Method::DELETE,
                    &format!("/users/{id}/sessions"),
                    &admin.access,
                )
                .await;
            assert_problem(response, StatusCode::NOT_FOUND, "not-found").await;
        }
    }
}

#[tokio::test]
async fn integers_past_64_bits_are_out_of_range_and_non_integers_are_bad_requests() {
    let app = TestApp::spawn(&backends()[0]).await;
    let admin = app.login_admin().await;
    for query in [
        "per_page=99999999999999999999",
        "page=99999999999999999999",
        "page=-99999999999999999999",
        "per_page=0",
        "page=10000001",
    ] {
        let response = app
            .get_auth(&format!("/users?{query}"), &admin.access)
            .await;
        let problem =
            assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        let param = query.split('=').next().unwrap();
        assert_eq!(problem["errors"][0]["field"], param, "{query}");
        assert_eq!(problem["errors"][0].get("pointer"), None, "{query}");
    }
    for query in ["per_page=ten", "page=1.5", "page="] {
        let response = app
            .get_auth(&format!("/users?{query}"), &admin.access)
            .await;
        assert_problem(response, StatusCode::BAD_REQUEST, "bad-request").await;
    }
    let unknown = app
        .get_auth("/users?sort=age&role=root", &admin.access)
        .await;
    let problem = assert_problem(unknown, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2, "{problem}");
}
