//! The committed `openapi.json` is the served document: a change to the API
//! shows up in review as a change to that file.

use serde_json::Value;

use crate::helpers::{TestApp, backends};

#[tokio::test]
async fn committed_openapi_document_matches_the_served_one() {
    let app = TestApp::spawn(&backends()[0]).await;
    let served: Value = app.get("/openapi.json").await.json().await.unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let pretty = format!("{}\n", serde_json::to_string_pretty(&served).unwrap());
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, pretty).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let committed: Value = serde_json::from_str(&committed).unwrap_or(Value::Null);
    assert!(
        committed == served,
        "openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test --test api openapi` and commit it"
    );
}
