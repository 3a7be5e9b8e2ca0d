//! Slow-loris clients: a request head or body that trickles in is cut off
//! by its deadline, however steadily the bytes keep coming, while idle
//! keep-alive connections and ordinary clients are left alone.

use std::time::{Duration, Instant};

use roster::config::ClientTimeouts;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{TestApp, backends};

const DEADLINE: Duration = Duration::from_millis(800);
/// Well under the 60 s idle timeout: only the deadline can end these.
const TRICKLE: Duration = Duration::from_millis(100);

async fn app() -> TestApp {
    TestApp::spawn_configured(
        &backends()[0],
        |_| {},
        |c| {
            c.client_timeouts = ClientTimeouts {
                head: DEADLINE,
                body: DEADLINE,
            };
        },
    )
    .await
}

/// Writes `prefix`, then one byte of `trickle` every [`TRICKLE`] until the
/// server closes the connection or answers; returns what it answered and
/// how long after the first byte the connection ended.
async fn trickle(port: u16, prefix: &[u8], trickle: &[u8]) -> (String, Duration) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let started = Instant::now();
    stream.write_all(prefix).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    for byte in trickle.iter().cycle() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the server kept a trickling client for 10 s"
        );
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        match tokio::time::timeout(TRICKLE, stream.read(&mut buf)).await {
            Err(_) => {}
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
        }
    }
    // Drain whatever is left of an answer.
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut answer)).await;
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn a_trickling_request_head_gets_its_connection_closed() {
    let app = app().await;
    let (answer, took) = trickle(
        app.port,
        b"GET /health/live HTTP/1.1\r\nhost: x\r\n",
        b"x-loris: abcdefgh\r\n",
    )
    .await;
    assert!(
        answer.is_empty(),
        "no answer to a head never finished: {answer}"
    );
    assert!(
        took >= DEADLINE.mul_f32(0.9),
        "closed after {took:?}, before the deadline"
    );
    assert!(took < DEADLINE * 4, "closed only after {took:?}");
    // Everyone else is still served.
    assert_eq!(app.get("/health/live").await.status(), 200);
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_at_the_deadline() {
    let app = app().await;
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the silent connection was kept for 10 s");
    assert!(buf.is_empty());
    assert!(started.elapsed() >= DEADLINE.mul_f32(0.9));
}

#[tokio::test]
async fn a_trickling_body_gets_a_400_problem() {
    let app = app().await;
    let head = "POST /auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                content-length: 1000\r\n\r\n{\"email\": \"";
    let (answer, took) = trickle(app.port, head.as_bytes(), b"a").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("did not arrive within"), "{answer}");
    assert!(
        took >= DEADLINE.mul_f32(0.9),
        "answered after {took:?}, before the deadline"
    );
}

#[tokio::test]
async fn idle_keep_alive_connections_are_not_timed_by_the_head_deadline() {
    let app = app().await;
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let request = b"GET /health/live HTTP/1.1\r\nhost: x\r\n\r\n";
    let mut buf = [0u8; 4096];
    for _ in 0..2 {
        stream.write_all(request).await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("answered")
            .unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );
        // Idle between requests for longer than the head deadline.
        tokio::time::sleep(DEADLINE * 2).await;
    }
}
