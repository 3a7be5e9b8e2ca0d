//! Graceful shutdown lets an in-flight request finish.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{PASSWORD, TestApp, backends};

#[tokio::test]
async fn stop_waits_for_an_in_flight_request_to_finish() {
    let app = TestApp::spawn(&backends()[0]).await;
    let port = app.port;
    // Arrange: a registration whose body is still arriving when the stop comes.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let body = format!(r#"{{"email": "late@x.io", "password": "{PASSWORD}"}}"#);
    let head = format!(
        "POST /auth/register HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Act: stop, then finish the request.
    let db = app.db.clone();
    app.stop_handle().stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        TcpStream::connect(("127.0.0.1", port)).await.is_err(),
        "new connections are refused"
    );
    stream.write_all(&body.as_bytes()[10..]).await.unwrap();

    // Assert: the request completes, then the server exits cleanly.
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("answered within the grace period")
        .unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 201"), "{text}");
    tokio::time::timeout(Duration::from_secs(10), app.wait_stopped())
        .await
        .expect("server stops")
        .unwrap();
    let _ = db;
}
