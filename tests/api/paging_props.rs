//! Property: for random users, sort and page size, the cursor walk visits
//! every matching user exactly once and in order, and agrees with offset paging.

use std::cmp::Ordering;

use chrono::TimeDelta;
use proptest::{prelude::*, test_runner::TestRunner};
use reqwest::StatusCode;
use serde_json::Value;

use crate::{
    fixtures::{NewUser, base_time, insert_users},
    helpers::{Backend, TestApp, backends, item_strings},
};

const SORTS: [&str; 6] = roster::domain::listing::Sort::NAMES;

#[derive(Debug, Clone)]
struct Case {
    users: Vec<(String, Option<String>, i64)>,
    sort: &'static str,
    per_page: usize,
}

fn case() -> impl Strategy<Value = Case> {
    let user = (
        "[a-c]{1,3}",
        proptest::option::weighted(0.7, "[aAbBé_ ]{0,3}"),
        0_i64..4,
    );
    (
        proptest::collection::vec(user, 0..25),
        proptest::sample::select(SORTS.to_vec()),
        1_usize..7,
    )
        .prop_map(|(users, sort, per_page)| Case {
            // Unique emails; few distinct times and names, so ties are common.
            users: users
                .into_iter()
                .enumerate()
                .map(|(i, (local, name, t))| (format!("{local}{i}@p.test"), name, t))
                .collect(),
            sort,
            per_page,
        })
}

/// The order the contract defines, computed independently of the service.
fn expected_order(items: &mut [Value], sort: &str) {
    let (desc, key) = sort.strip_prefix('-').map_or((false, sort), |k| (true, k));
    items.sort_by(|a, b| {
        let by_key = match key {
            "name" => match (a["name"].as_str(), b["name"].as_str()) {
                (Some(x), Some(y)) => {
                    if desc {
                        y.cmp(x)
                    } else {
                        x.cmp(y)
                    }
                }
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
            _ => {
                let ord = a[key].as_str().cmp(&b[key].as_str());
                if desc { ord.reverse() } else { ord }
            }
        };
        let by_id = a["id"].as_str().cmp(&b["id"].as_str());
        by_key.then(if desc { by_id.reverse() } else { by_id })
    });
}

async fn get_page(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app
        .get_auth(&format!("/users?role=user&{query}"), token)
        .await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    response.json().await.unwrap()
}

async fn check(backend: &Backend, case: &Case) {
    let app = TestApp::spawn(backend).await;
    let admin = app.login_admin().await;
    let users: Vec<NewUser> = case
        .users
        .iter()
        .map(|(email, name, t)| NewUser {
            email: email.clone(),
            name: name.clone(),
            role: "user",
            created_at: base_time() + TimeDelta::seconds(*t),
        })
        .collect();
    insert_users(&app, &users).await;

    let everyone = get_page(&app, &admin.access, "per_page=100").await;
    let mut expected: Vec<Value> = everyone["items"].as_array().unwrap().clone();
    assert_eq!(expected.len(), users.len());
    expected_order(&mut expected, case.sort);
    let expected_ids: Vec<&str> = expected.iter().map(|u| u["id"].as_str().unwrap()).collect();

    let base = format!("sort={}&per_page={}", case.sort, case.per_page);
    let mut walked = Vec::new();
    let mut page = get_page(&app, &admin.access, &base).await;
    loop {
        walked.extend(item_strings(&page, "id"));
        let Some(cursor) = page["next_cursor"].as_str() else {
            break;
        };
        page = get_page(&app, &admin.access, &format!("{base}&cursor={cursor}")).await;
    }
    assert_eq!(walked, expected_ids, "{backend:?} cursor walk, {case:?}");

    let mut by_offset = Vec::new();
    for page_no in 1..=users.len().div_ceil(case.per_page).max(1) {
        let page = get_page(&app, &admin.access, &format!("{base}&page={page_no}")).await;
        assert_eq!(page["total"], users.len());
        by_offset.extend(item_strings(&page, "id"));
    }
    assert_eq!(
        by_offset, expected_ids,
        "{backend:?} offset paging, {case:?}"
    );
}

#[test]
fn cursor_walk_and_offset_paging_agree_with_the_defined_order() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 12,
        ..ProptestConfig::default()
    });
    runner
        .run(&case(), |case| {
            runtime.block_on(async {
                for backend in backends() {
                    check(&backend, &case).await;
                }
            });
            Ok(())
        })
        .unwrap();
}
