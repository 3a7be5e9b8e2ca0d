//! `/users`: listing, reading, creating, replacing, patching and deleting.

use chrono::{TimeDelta, Utc};
use entity::user;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    fixtures::{NewUser, delete_user, insert_users, set_time},
    helpers::{ADMIN_EMAIL, PASSWORD, TestApp, assert_problem, backends, item_strings, tally},
};

async fn list(app: &TestApp, token: &str, query: &str) -> (Value, Option<String>) {
    let response = app.get_auth(&format!("/users{query}"), token).await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    let link = response
        .headers()
        .get("link")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.json().await.unwrap(), link)
}

#[tokio::test]
async fn list_pages_by_offset_with_total_and_links() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let admin = app.login_admin().await;
        insert_users(&app, &(0..45).map(NewUser::numbered).collect::<Vec<_>>()).await;

        let (first, link) = list(&app, &admin.access, "?sort=email&per_page=20").await;
        assert_eq!(first["total"], 46, "{backend:?}: 45 + the admin");
        assert_eq!(
            (first["page"].as_i64(), first["per_page"].as_i64()),
            (Some(1), Some(20))
        );
        assert_eq!(item_strings(&first, "email")[0], ADMIN_EMAIL);
        let link = link.unwrap();
        assert!(
            link.contains("rel=\"next\"") && !link.contains("rel=\"prev\""),
            "{link}"
        );
        assert!(
            link.contains("page=2") && link.contains("sort=email"),
            "{link}"
        );

        let (third, link) = list(&app, &admin.access, "?sort=email&per_page=20&page=3").await;
        assert_eq!(item_strings(&third, "email").len(), 6);
        assert_eq!(third["next_cursor"], Value::Null);
        let link = link.unwrap();
        assert!(
            link.contains("rel=\"prev\"") && !link.contains("rel=\"next\""),
            "{link}"
        );

        let (beyond, _) = list(&app, &admin.access, "?page=99").await;
        assert_eq!(item_strings(&beyond, "email").len(), 0);
        assert_eq!(beyond["total"], 46);
    }
}

#[tokio::test]
async fn cursor_paging_walks_every_user_once_across_inserts_and_deletes() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let admin = app.login_admin().await;
        let ids = insert_users(&app, &(0..30).map(NewUser::numbered).collect::<Vec<_>>()).await;

        let (page1, _) = list(&app, &admin.access, "?sort=created_at&per_page=10").await;
        let cursor = page1["next_cursor"].as_str().unwrap().to_owned();
        // Between pages: delete a user already seen and one not yet seen, and add one.
        delete_user(&app, ids[0]).await;
        delete_user(&app, ids[20]).await;
        insert_users(&app, &[NewUser::numbered(99)]).await;

        let mut seen = item_strings(&page1, "email");
        let mut next = Some(cursor);
        while let Some(cursor) = next {
            let (page, link) = list(
                &app,
                &admin.access,
                &format!("?sort=created_at&per_page=10&cursor={cursor}"),
            )
            .await;
            seen.extend(item_strings(&page, "email"));
            next = page["next_cursor"].as_str().map(str::to_owned);
            assert_eq!(
                link.is_some(),
                next.is_some(),
                "Link rel=next iff next_cursor"
            );
        }
        let mut expected: Vec<String> = (0..30)
            .filter(|i| *i != 20)
            .map(|i| format!("user{i:05}@bulk.test"))
            .collect();
        expected.push("user00099@bulk.test".into());
        expected.push(ADMIN_EMAIL.into()); // created now: newest of all
        assert_eq!(seen, expected, "{backend:?}");
    }
}

#[tokio::test]
async fn list_filters_match_literally_and_case_insensitively() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let admin = app.login_admin().await;
        let make = |email: &str, name: Option<&str>| NewUser {
            email: email.into(),
            name: name.map(Into::into),
            ..NewUser::numbered(0)
        };
        insert_users(
            &app,
            &[
                make("percent%sign@x.io", Some("Hundred % Sure")),
                make("under_score@x.io", Some("Snake_Case")),
                make("underXscore@x.io", Some("Not a match")),
                make("back\\slash@x.io", None),
                make("quote'o@x.io", Some("O'Brien")),
                make("plain@x.io", Some("MiXeD Case")),
            ],
        )
        .await;
        let cases = [
            ("email=%25", vec!["percent%sign@x.io"]),
            ("email=_", vec!["under_score@x.io"]),
            ("email=%5C", vec!["back\\slash@x.io"]),
            ("email='", vec!["quote'o@x.io"]),
            ("email=PLAIN", vec!["plain@x.io"]),
            ("q=mixed%20case", vec!["plain@x.io"]),
            ("q=o'brien", vec!["quote'o@x.io"]),
            ("q=snake_", vec!["under_score@x.io"]),
            ("q=%25%20sure", vec!["percent%sign@x.io"]),
            ("role=admin", vec![ADMIN_EMAIL]),
        ];
        for (query, expected) in cases {
            let (page, _) = list(&app, &admin.access, &format!("?sort=email&{query}")).await;
            assert_eq!(
                item_strings(&page, "email"),
                expected,
                "{backend:?} {query}"
            );
            assert_eq!(page["total"], expected.len(), "{query}");
        }
    }
}

#[tokio::test]
async fn list_created_bounds_are_exclusive_and_round_trip_from_responses() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let admin = app.login_admin().await;
        insert_users(&app, &(0..5).map(NewUser::numbered).collect::<Vec<_>>()).await;
        let (all, _) = list(&app, &admin.access, "?sort=created_at&role=user").await;
        let times: Vec<&str> = all["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["created_at"].as_str().unwrap())
            .collect();
        let (page, _) = list(
            &app,
            &admin.access,
            &format!(
                "?sort=created_at&created_after={}&created_before={}",
                times[1], times[4]
            ),
        )
        .await;
        assert_eq!(
            item_strings(&page, "email"),
            vec!["user00002@bulk.test", "user00003@bulk.test"],
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn name_sort_is_by_code_point_with_unnamed_users_last_both_ways() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let admin = app.login_admin().await;
        let named = |email: &str, name: Option<&str>| NewUser {
            email: email.into(),
            name: name.map(Into::into),
            ..NewUser::numbered(0)
        };
        insert_users(
            &app,
            &[
                named("a@x.io", Some("b")),
                named("b@x.io", Some("B")),
                named("c@x.io", None),
                named("d@x.io", Some("É")),
                named("e@x.io", Some("a")),
            ],
        )
        .await;
        let (asc, _) = list(&app, &admin.access, "?sort=name&role=user").await;
        assert_eq!(
            item_strings(&asc, "email"),
            vec!["b@x.io", "e@x.io", "a@x.io", "d@x.io", "c@x.io"],
            "{backend:?}"
        );
        let (desc, _) = list(&app, &admin.access, "?sort=-name&role=user").await;
        assert_eq!(
            item_strings(&desc, "email"),
            vec!["d@x.io", "a@x.io", "e@x.io", "b@x.io", "c@x.io"],
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn list_rejects_bad_parameters() {
    let app = TestApp::spawn(&backends()[0]).await;
    let admin = app.login_admin().await;
    for (query, param) in [
        ("?page=0", "page"),
        ("?page=-1", "page"),
        ("?page=10000001", "page"),
        ("?per_page=0", "per_page"),
        ("?per_page=101", "per_page"),
        ("?sort=id", "sort"),
        ("?role=root", "role"),
        ("?created_after=yesterday", "created_after"),
        ("?created_before=2026-13-01T00:00:00Z", "created_before"),
        ("?cursor=garbage", "cursor"),
        ("?q=%00", "q"),
    ] {
        let response = app.get_auth(&format!("/users{query}"), &admin.access).await;
        let problem =
            assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        let error = &problem["errors"][0];
        assert_eq!(error["field"], param, "{query}: {problem}");
        assert!(
            error.get("pointer").is_none(),
            "query errors have no pointer"
        );
    }
    // Only a value that is no integer at all is a 400 (too large for 64
    // bits is out of range: see contract.rs).
    for query in ["?page=abc", "?per_page=1.5"] {
        let response = app.get_auth(&format!("/users{query}"), &admin.access).await;
        assert_problem(response, StatusCode::BAD_REQUEST, "bad-request").await;
    }
    // A cursor made for one sort is refused for another.
    insert_users(&app, &(0..3).map(NewUser::numbered).collect::<Vec<_>>()).await;
    let (page, _) = list(&app, &admin.access, "?per_page=1").await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let response = app
        .get_auth(&format!("/users?sort=email&cursor={cursor}"), &admin.access)
        .await;
    assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
}

#[tokio::test]
async fn only_admins_list_and_create_users() {
    let app = TestApp::spawn(&backends()[0]).await;
    let (_, user) = app.signed_up("ann@x.io").await;
    assert_problem(
        app.get_auth("/users", &user.access).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let response = app
        .send_json_auth(
            Method::POST,
            "/users",
            &user.access,
            &json!({"email": "b@x.io", "password": PASSWORD}),
        )
        .await;
    assert_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
    assert_problem(
        app.get("/users").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}

/// `GET /users` checks the session and the current role in the statement
/// that reads the page: a token issued to an admin lists only while its
/// session lives and its holder is still an admin, and a non-admin's bad
/// query is still a 403 before it is a 400.
#[tokio::test]
async fn listing_checks_the_session_and_the_current_role_of_admin_tokens() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let admin = app.login_admin().await;
        let (bob, _) = app.signed_up("bob@x.io").await;
        let path = format!("/users/{}", bob["id"].as_str().unwrap());
        let role = |role: &str| json!({ "role": role });
        let promoted = app
            .send_json_auth(Method::PATCH, &path, &admin.access, &role("admin"))
            .await;
        assert_eq!(promoted.status(), StatusCode::OK);
        // Issued while an admin: the token claims the role.
        let bob_admin = app.login("bob@x.io", PASSWORD).await;
        let (page, _) = list(&app, &bob_admin.access, "?per_page=1").await;
        assert_eq!(page["total"], 2, "{backend:?}");
        assert_eq!(page["items"].as_array().unwrap().len(), 1, "{backend:?}");

        let demoted = app
            .send_json_auth(Method::PATCH, &path, &admin.access, &role("user"))
            .await;
        assert_eq!(demoted.status(), StatusCode::OK);
        // Both statement shapes (first page; past an offset or a filter),
        // with rows to show and without.
        for query in [
            "",
            "?per_page=1&page=2",
            "?q=bob",
            "?q=nobody",
            "?per_page=0",
        ] {
            assert_problem(
                app.get_auth(&format!("/users{query}"), &bob_admin.access)
                    .await,
                StatusCode::FORBIDDEN,
                "forbidden",
            )
            .await;
        }
        assert_problem(
            app.get_auth("/users?per_page=0", &admin.access).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        )
        .await;

        let logout = app
            .send_auth(Method::POST, "/auth/logout", &admin.access)
            .await;
        assert_eq!(logout.status(), StatusCode::NO_CONTENT);
        let expired = app.login_admin().await;
        app.sql("UPDATE sessions SET expires_at = '2000-01-01T00:00:00+00:00'")
            .await;
        for token in [&admin.access, &expired.access] {
            for query in ["", "?per_page=1&page=2", "?q=bob"] {
                assert_problem(
                    app.get_auth(&format!("/users{query}"), token).await,
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                )
                .await;
            }
        }
        app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn admin_creates_users_of_any_role() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let admin = app.login_admin().await;
        let response = app
            .send_json_auth(
                Method::POST,
                "/users",
                &admin.access,
                &json!({"email": "Boss@X.io", "password": PASSWORD, "name": "Boss", "role": "admin"}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "{backend:?}");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let user: Value = response.json().await.unwrap();
        assert_eq!(
            (user["email"].as_str(), user["role"].as_str()),
            (Some("boss@x.io"), Some("admin"))
        );
        assert_eq!(location, format!("/users/{}", user["id"].as_str().unwrap()));
        app.login("boss@x.io", PASSWORD).await;

        let again = app
            .send_json_auth(
                Method::POST,
                "/users",
                &admin.access,
                &json!({"email": "BOSS@x.io", "password": PASSWORD}),
            )
            .await;
        assert_problem(again, StatusCode::CONFLICT, "conflict").await;
        let bad_role = app
            .send_json_auth(
                Method::POST,
                "/users",
                &admin.access,
                &json!({"email": "c@x.io", "password": PASSWORD, "role": "root"}),
            )
            .await;
        assert_problem(bad_role, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    }
}

#[tokio::test]
async fn get_user_is_for_admins_and_self_with_etag_and_304() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let (ann, ann_tokens) = app.signed_up("ann@x.io").await;
        let (bob, _) = app.signed_up("bob@x.io").await;
        let admin = app.login_admin().await;
        let ann_path = format!("/users/{}", ann["id"].as_str().unwrap());
        let bob_path = format!("/users/{}", bob["id"].as_str().unwrap());

        let own = app.get_auth(&ann_path, &ann_tokens.access).await;
        assert_eq!(own.status(), StatusCode::OK, "{backend:?}");
        let tag = own.headers()["etag"].to_str().unwrap().to_owned();
        assert!(tag.starts_with('"') && tag.ends_with('"'), "strong: {tag}");
        assert_eq!(
            app.get_auth(&ann_path, &admin.access).await.status(),
            StatusCode::OK
        );

        // Someone else's record, an unknown id and a malformed id all look the same.
        for path in [
            bob_path.as_str(),
            "/users/01930000-0000-7000-8000-000000000000",
            "/users/nope",
        ] {
            assert_problem(
                app.get_auth(path, &ann_tokens.access).await,
                StatusCode::NOT_FOUND,
                "not-found",
            )
            .await;
        }

        let cached = app
            .request(Method::GET, &ann_path)
            .bearer_auth(&ann_tokens.access)
            .header("if-none-match", &tag)
            .send()
            .await
            .unwrap();
        assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(cached.headers()["etag"].to_str().unwrap(), tag);
        let stale = app
            .request(Method::GET, &ann_path)
            .bearer_auth(&ann_tokens.access)
            .header("if-none-match", "\"stale\"")
            .send()
            .await
            .unwrap();
        assert_eq!(stale.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn patch_is_a_merge_patch_and_put_a_full_replace() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let response = app
            .post_json(
                "/auth/register",
                &json!({"email": "ann@x.io", "password": PASSWORD, "name": "Ann"}),
            )
            .await;
        let ann: Value = response.json().await.unwrap();
        let tokens = app.login("ann@x.io", PASSWORD).await;
        let path = format!("/users/{}", ann["id"].as_str().unwrap());

        // Absent fields stay; merge-patch content type accepted.
        let response = app
            .request(Method::PATCH, &path)
            .bearer_auth(&tokens.access)
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"name": "Ann Lee"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{backend:?}");
        let patched: Value = response.json().await.unwrap();
        assert_eq!(
            (patched["name"].as_str(), patched["email"].as_str()),
            (Some("Ann Lee"), Some("ann@x.io"))
        );
        assert!(
            patched["updated_at"].as_str() > ann["updated_at"].as_str(),
            "updated_at moves forward"
        );
        assert_eq!(patched["created_at"], ann["created_at"]);

        // null clears the name.
        let cleared: Value = app
            .send_json_auth(Method::PATCH, &path, &tokens.access, &json!({"name": null}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(cleared["name"], Value::Null);

        // PUT without name clears it too; with it, sets it.
        let put: Value = app
            .send_json_auth(
                Method::PUT,
                &path,
                &tokens.access,
                &json!({"email": "ann@x.io", "name": "Again"}),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(put["name"], "Again");
        let put: Value = app
            .send_json_auth(
                Method::PUT,
                &path,
                &tokens.access,
                &json!({"email": "ann@x.io"}),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(put["name"], Value::Null);

        // Garbage.
        for (method, body, field) in [
            (Method::PATCH, json!({"name": "x\u{0}y"}), "name"),
            (Method::PATCH, json!({"email": null}), "email"),
            (Method::PATCH, json!({"email": "nope"}), "email"),
            (Method::PATCH, json!({"nickname": "x"}), "nickname"),
            (Method::PUT, json!({"name": "no email"}), "email"),
            (
                Method::PUT,
                json!({"email": "ann@x.io", "password": "x"}),
                "password",
            ),
        ] {
            let response = app
                .send_json_auth(method.clone(), &path, &tokens.access, &body)
                .await;
            let problem =
                assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
            assert_eq!(problem["errors"][0]["field"], field, "{method} {body}");
        }
        let text = app
            .request(Method::PATCH, &path)
            .bearer_auth(&tokens.access)
            .header("content-type", "text/plain")
            .body("name=x")
            .send()
            .await
            .unwrap();
        assert_problem(
            text,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
        )
        .await;
    }
}

#[tokio::test]
async fn role_and_email_rules_for_non_admins() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let (ann, tokens) = app.signed_up("ann@x.io").await;
        let (bob, _) = app.signed_up("bob@x.io").await;
        let path = format!("/users/{}", ann["id"].as_str().unwrap());

        for role in ["admin", "user"] {
            let response = app
                .send_json_auth(Method::PATCH, &path, &tokens.access, &json!({"role": role}))
                .await;
            assert_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
        }
        let missing = app
            .send_json_auth(
                Method::PATCH,
                &path,
                &tokens.access,
                &json!({"email": "ann2@x.io"}),
            )
            .await;
        let problem = assert_problem(missing, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        assert_eq!(problem["errors"][0]["field"], "current_password");
        let wrong = app
            .send_json_auth(
                Method::PATCH,
                &path,
                &tokens.access,
                &json!({"email": "ann2@x.io", "current_password": "nope nope"}),
            )
            .await;
        assert_problem(wrong, StatusCode::FORBIDDEN, "forbidden").await;
        let taken = app
            .send_json_auth(
                Method::PATCH,
                &path,
                &tokens.access,
                &json!({"email": "BOB@x.io", "current_password": PASSWORD}),
            )
            .await;
        assert_problem(taken, StatusCode::CONFLICT, "conflict").await;
        let ok = app
            .send_json_auth(
                Method::PATCH,
                &path,
                &tokens.access,
                &json!({"email": "Ann2@x.io", "current_password": PASSWORD}),
            )
            .await;
        // Confirmed by default: the address stays until the new one confirms.
        assert_eq!(ok.status(), StatusCode::ACCEPTED, "{backend:?}");
        assert_eq!(ok.json::<Value>().await.unwrap()["email"], "ann@x.io");

        // Another user's record is a 404 for writes too.
        let bob_path = format!("/users/{}", bob["id"].as_str().unwrap());
        let other = app
            .send_json_auth(
                Method::PATCH,
                &bob_path,
                &tokens.access,
                &json!({"name": "x"}),
            )
            .await;
        assert_problem(other, StatusCode::NOT_FOUND, "not-found").await;
        assert_eq!(
            app.send_auth(Method::DELETE, &bob_path, &tokens.access)
                .await
                .status(),
            StatusCode::NOT_FOUND
        );

        // An admin changes roles and emails without current_password (ignored if sent).
        let admin = app.login_admin().await;
        let promoted = app
            .send_json_auth(
                Method::PATCH,
                &bob_path,
                &admin.access,
                &json!({"role": "admin", "email": "robert@x.io", "current_password": "ignored"}),
            )
            .await;
        assert_eq!(promoted.status(), StatusCode::OK);
        let promoted: Value = promoted.json().await.unwrap();
        assert_eq!(
            (promoted["role"].as_str(), promoted["email"].as_str()),
            (Some("admin"), Some("robert@x.io"))
        );
    }
}

/// A change goes through as one `UPDATE` only while the row's `updated_at`
/// is before the clock; otherwise (a clock set back, or two changes in one
/// microsecond) the transaction still moves it forward, so the ETag changes.
#[tokio::test]
async fn updated_at_moves_forward_even_past_the_clock() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let (ann, tokens) = app.signed_up("ann@x.io").await;
        let id = ann["id"].as_str().unwrap().parse().unwrap();
        let path = format!("/users/{id}");
        let ahead = Utc::now() + TimeDelta::hours(1);
        set_time(&app, id, user::Column::UpdatedAt, ahead).await;
        let tag = app.get_auth(&path, &tokens.access).await.headers()["etag"]
            .to_str()
            .unwrap()
            .to_owned();
        let mut last = ahead.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        for (n, if_match) in [Some(tag), None].into_iter().enumerate() {
            let mut request = app
                .request(Method::PATCH, &path)
                .bearer_auth(&tokens.access)
                .json(&json!({"name": format!("Ann {n}")}));
            if let Some(tag) = if_match {
                request = request.header("if-match", tag);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{backend:?}");
            let patched: Value = response.json().await.unwrap();
            let updated = patched["updated_at"].as_str().unwrap().to_owned();
            assert!(updated > last, "{updated} after {last} ({backend:?})");
            assert_eq!(patched["name"], format!("Ann {n}"));
            last = updated;
        }
    }
}

#[tokio::test]
async fn if_match_guards_writes() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let (ann, tokens) = app.signed_up("ann@x.io").await;
        let path = format!("/users/{}", ann["id"].as_str().unwrap());
        let tag = app.get_auth(&path, &tokens.access).await.headers()["etag"]
            .to_str()
            .unwrap()
            .to_owned();

        let stale = app
            .request(Method::PATCH, &path)
            .bearer_auth(&tokens.access)
            .header("if-match", "\"stale\"")
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap();
        assert_problem(
            stale,
            StatusCode::PRECONDITION_FAILED,
            "precondition-failed",
        )
        .await;

        let fresh = app
            .request(Method::PATCH, &path)
            .bearer_auth(&tokens.access)
            .header("if-match", &tag)
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(fresh.status(), StatusCode::OK, "{backend:?}");
        let new_tag = fresh.headers()["etag"].to_str().unwrap().to_owned();
        assert_ne!(new_tag, tag);

        // The old tag no longer matches, for PUT and DELETE either.
        for method in [Method::PUT, Method::DELETE] {
            let response = app
                .request(method.clone(), &path)
                .bearer_auth(&tokens.access)
                .header("if-match", &tag)
                .json(&json!({"email": "ann@x.io"}))
                .send()
                .await
                .unwrap();
            assert_problem(
                response,
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
            )
            .await;
        }

        // Concurrent patches with one If-Match: exactly one wins.
        let requests = (0..8).map(|i| {
            app.request(Method::PATCH, &path)
                .bearer_auth(&tokens.access)
                .header("if-match", &new_tag)
                .json(&json!({"name": format!("writer {i}")}))
                .send()
        });
        let statuses: Vec<StatusCode> = futures_util::future::join_all(requests)
            .await
            .into_iter()
            .map(|r| r.unwrap().status())
            .collect();
        let [ok, failed] = tally(&statuses, [StatusCode::OK, StatusCode::PRECONDITION_FAILED]);
        assert_eq!((ok, failed), (1, 7), "{backend:?}: {statuses:?}");
    }
}

#[tokio::test]
async fn delete_removes_the_user_and_its_sessions() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let (ann, tokens) = app.signed_up("ann@x.io").await;
        let path = format!("/users/{}", ann["id"].as_str().unwrap());
        assert_eq!(
            app.send_auth(Method::DELETE, &path, &tokens.access)
                .await
                .status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            app.get_auth("/users/me", &tokens.access).await.status(),
            StatusCode::UNAUTHORIZED,
            "{backend:?}"
        );
        let refresh = app
            .post_json("/auth/refresh", &json!({"refresh_token": tokens.refresh}))
            .await;
        assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);
        let admin = app.login_admin().await;
        assert_eq!(
            app.send_auth(Method::DELETE, &path, &admin.access)
                .await
                .status(),
            StatusCode::NOT_FOUND
        );
        // The email is free again.
        app.register("ann@x.io").await;
    }
}

#[tokio::test]
async fn the_last_admin_cannot_be_removed_or_demoted() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let admin = app.login_admin().await;
        let me = app.me(&admin.access).await;
        let path = format!("/users/{}", me["id"].as_str().unwrap());
        let demote = app
            .send_json_auth(
                Method::PATCH,
                &path,
                &admin.access,
                &json!({"role": "user"}),
            )
            .await;
        assert_problem(demote, StatusCode::CONFLICT, "conflict").await;
        let put = app
            .send_json_auth(
                Method::PUT,
                &path,
                &admin.access,
                &json!({"email": ADMIN_EMAIL, "role": "user"}),
            )
            .await;
        assert_problem(put, StatusCode::CONFLICT, "conflict").await;
        let delete = app.send_auth(Method::DELETE, &path, &admin.access).await;
        assert_problem(delete, StatusCode::CONFLICT, "conflict").await;
        let still = app.me(&admin.access).await;
        assert_eq!(still["role"], "admin", "{backend:?}");
    }
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
    for backend in backends() {
        for round in 0..3 {
            let app = TestApp::spawn(&backend).await;
            let first = app.login_admin().await;
            let created: Value = app
                .send_json_auth(
                    Method::POST,
                    "/users",
                    &first.access,
                    &json!({"email": "second@x.io", "password": PASSWORD, "role": "admin"}),
                )
                .await
                .json()
                .await
                .unwrap();
            let second = app.login("second@x.io", PASSWORD).await;
            let me = app.me(&first.access).await;
            let (first_path, second_path) = (
                format!("/users/{}", me["id"].as_str().unwrap()),
                format!("/users/{}", created["id"].as_str().unwrap()),
            );
            let body = json!({"role": "user"});
            let (a, b) = tokio::join!(
                app.send_json_auth(Method::PATCH, &second_path, &first.access, &body),
                app.send_json_auth(Method::PATCH, &first_path, &second.access, &body),
            );
            // The loser gets 409 when both were admins as its request ran, or
            // 404 when it had already been demoted (a non-admin writing another user).
            let mut statuses = [a.status(), b.status()];
            statuses.sort();
            assert!(
                statuses == [StatusCode::OK, StatusCode::CONFLICT]
                    || statuses == [StatusCode::OK, StatusCode::NOT_FOUND],
                "{backend:?} round {round}: {statuses:?}"
            );
            let admin_token = if a.status() == StatusCode::OK {
                &first.access
            } else {
                &second.access
            };
            let (admins, _) = list(&app, admin_token, "?role=admin").await;
            assert_eq!(admins["total"], 1);
        }
    }
}

/// `total` on unfiltered and role-only pages comes from counts that
/// triggers keep; it must match a real count through every kind of write.
#[tokio::test]
async fn totals_stay_exact_through_creates_role_changes_and_deletes() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let admin = app.login_admin().await;
        let totals = |expected: [u64; 3]| {
            let (app, token, backend) = (&app, admin.access.clone(), &backend);
            async move {
                for (query, want) in ["", "?role=admin", "?role=user"].iter().zip(expected) {
                    let (page, _) = list(app, &token, query).await;
                    assert_eq!(page["total"], want, "{backend:?} {query}");
                    // The same filter with a `q` that matches everyone is a
                    // real COUNT(*): both must agree.
                    let sep = if query.is_empty() { "?" } else { "&" };
                    let (counted, _) = list(app, &token, &format!("{query}{sep}q=%40")).await;
                    assert_eq!(counted["total"], want, "{backend:?} {query} counted");
                }
            }
        };
        totals([1, 1, 0]).await;

        let ann = app.register("ann@x.io").await;
        app.register("bob@x.io").await;
        insert_users(&app, &(0..5).map(NewUser::numbered).collect::<Vec<_>>()).await;
        let created = app
            .send_json_auth(
                Method::POST,
                "/users",
                &admin.access,
                &json!({"email": "cy@x.io", "password": PASSWORD, "role": "admin"}),
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        totals([9, 2, 7]).await;

        let ann_path = format!("/users/{}", ann["id"].as_str().unwrap());
        let promoted = app
            .send_json_auth(
                Method::PATCH,
                &ann_path,
                &admin.access,
                &json!({"role": "admin"}),
            )
            .await;
        assert_eq!(promoted.status(), StatusCode::OK);
        // Setting the role a user already has changes no count.
        let again = app
            .send_json_auth(
                Method::PATCH,
                &ann_path,
                &admin.access,
                &json!({"role": "admin"}),
            )
            .await;
        assert_eq!(again.status(), StatusCode::OK);
        totals([9, 3, 6]).await;

        let deleted = app
            .send_auth(Method::DELETE, &ann_path, &admin.access)
            .await;
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
        totals([8, 2, 6]).await;
    }
}

/// Offset pages of the `created_at` orders start from rows remembered from
/// earlier pages. Every write that moves rows (a create, a delete, a role
/// change, a `created_at` changed in SQL), made through this instance,
/// another one on the same database or straight in SQL, must move the pages
/// with it, their `total` and their `next_cursor`.
#[tokio::test]
async fn offset_pages_follow_every_write_from_any_instance() {
    const PER_PAGE: usize = 7;
    const QUERIES: [&str; 4] = [
        "sort=-created_at",
        "sort=created_at",
        "sort=-created_at&role=user",
        "sort=created_at&role=admin",
    ];
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let other = app.sibling_with(|_| {}).await;
        let admin = app.login_admin().await;
        // Ten users share each instant: pages break inside runs of ties.
        let users: Vec<NewUser> = (0..40)
            .map(|i| NewUser {
                created_at: NewUser::numbered(0).created_at + TimeDelta::seconds(i / 10),
                ..NewUser::numbered(usize::try_from(i).unwrap())
            })
            .collect();
        let ids = insert_users(&app, &users).await;
        // Each step starts with another of the queries: right after a write,
        // its deep pages are read while this instance still remembers where
        // they started before it.
        let pages_agree = |step: usize, what: &'static str| {
            let (app, token, backend) = (&app, admin.access.clone(), &backend);
            async move {
                for query in QUERIES.iter().cycle().skip(step).take(QUERIES.len()) {
                    let token = token.as_str();
                    let page = |per_page: usize, n: usize| {
                        let path = format!("?{query}&per_page={per_page}&page={n}");
                        async move { list(app, token, &path).await.0 }
                    };
                    // Backwards, then forwards from the rows remembered, then
                    // backwards by 5: those pages start between remembered rows.
                    let mut backwards = Vec::new();
                    for n in (1..=8).rev() {
                        backwards.push(page(PER_PAGE, n).await);
                    }
                    backwards.reverse();
                    let mut forwards = Vec::new();
                    for n in 1..=8 {
                        forwards.push(page(PER_PAGE, n).await);
                    }
                    let mut by_five = Vec::new();
                    for n in (1..=10).rev() {
                        by_five.push(page(5, n).await);
                    }
                    by_five.reverse();
                    let (all, _) = list(app, token, &format!("?{query}&per_page=100")).await;
                    let all = item_strings(&all, "id");
                    let walks = [
                        ("backwards", PER_PAGE, backwards),
                        ("forwards", PER_PAGE, forwards),
                        ("backwards by 5", 5, by_five),
                    ];
                    for (walk, per_page, pages) in walks {
                        let context = format!("{backend:?} after {what}: {query} {walk}");
                        let mut seen = Vec::new();
                        for (i, page) in pages.iter().enumerate() {
                            let more = (i + 1) * per_page < all.len();
                            assert_eq!(page["total"], all.len(), "{context}, page {}", i + 1);
                            assert_eq!(page["next_cursor"].is_string(), more, "{context}");
                            seen.extend(item_strings(page, "id"));
                        }
                        assert_eq!(seen, all, "{context}");
                    }
                }
            }
        };
        pages_agree(0, "seeding").await;

        other.register("newest@x.io").await;
        pages_agree(0, "a create on the other instance").await;

        let doomed = format!("/users/{}", ids[13]);
        let deleted = other
            .send_auth(Method::DELETE, &doomed, &admin.access)
            .await;
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
        pages_agree(1, "a delete on the other instance").await;

        let promoted = other
            .send_json_auth(
                Method::PATCH,
                &format!("/users/{}", ids[22]),
                &admin.access,
                &json!({"role": "admin"}),
            )
            .await;
        assert_eq!(promoted.status(), StatusCode::OK);
        pages_agree(2, "a promotion on the other instance").await;

        // In the middle of the order, with a tie, without the API.
        insert_users(
            &other,
            &[NewUser {
                created_at: users[25].created_at,
                ..NewUser::numbered(99)
            }],
        )
        .await;
        delete_user(&app, ids[31]).await;
        pages_agree(3, "an insert and a delete in SQL").await;

        // Roster never moves a user's created_at; SQL can.
        set_time(
            &other,
            ids[5],
            user::Column::CreatedAt,
            users[35].created_at,
        )
        .await;
        pages_agree(0, "a created_at changed in SQL").await;
    }
}
