//! Self-tests of the test harness: the SMTP sink and the headless browser.

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{TcpListener, TcpStream},
    process::Command,
    time::Duration,
};

use crate::{browser::browse, mail::MailSink, python::python};

const TO: &str = "alice@example.com";
const RESET: &str = "/account/reset-password?token=";

/// Sends one multipart message with `smtplib`; prints `SENT` or
/// `SMTP-ERROR <code>`.
const SEND: &str = r#"
import smtplib, sys
from email.message import EmailMessage

port, to = int(sys.argv[1]), sys.argv[2]
m = EmailMessage()
m["From"] = "Roster <noreply@roster.test>"
m["To"] = to
m["Subject"] = "Réinitialisez votre mot de passe ✓"
m["X-Roster-Test"] = "harness"
m.set_content(
    "Bonjour Zoë,\n\nhttps://roster.test/account/reset-password?token=abc%2Bdef-_42&lang=fr\n\n"
    + "A long line that quoted-printable has to wrap. " * 4 + "\n",
    cte="quoted-printable",
)
m.add_alternative(
    '<p>Bonjour Zoë, <a href="https://roster.test/account/reset-password?token=abc%2Bdef-_42&amp;lang=fr">réinitialiser</a></p>\n',
    subtype="html",
    cte="base64",
)
try:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(m, from_addr="bounce@roster.test", to_addrs=[to])
    print("SENT")
except (smtplib.SMTPDataError, smtplib.SMTPRecipientsRefused) as error:
    code = error.smtp_code if hasattr(error, "smtp_code") else list(error.recipients.values())[0][0]
    print(f"SMTP-ERROR {code}")
"#;

async fn send(port: u16, to: &str) -> String {
    let to = to.to_owned();
    tokio::task::spawn_blocking(move || {
        let output = Command::new(python())
            .args(["-c", SEND, &port.to_string(), &to])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn mail_sink_decodes_refuses_and_restarts() {
    let started = std::time::Instant::now();
    let sink = MailSink::start().await;
    eprintln!("sink started in {:?}", started.elapsed());
    let port = sink.port();
    assert_eq!(sink.url(), format!("smtp://127.0.0.1:{port}?tls=none"));

    assert_eq!(send(port, TO).await, "SENT");
    // Envelope addresses match case-insensitively.
    let mail = sink.next_to("Alice@Example.COM").await;
    assert_eq!(mail.from, "bounce@roster.test");
    assert_eq!(mail.to, vec![TO.to_owned()]);
    assert_eq!(mail.subject, "Réinitialisez votre mot de passe ✓");
    assert_eq!(mail.headers["subject"], mail.subject);
    assert_eq!(mail.headers["from"], "Roster <noreply@roster.test>");
    assert_eq!(mail.headers["x-roster-test"], "harness");
    let text = mail.text.as_deref().unwrap();
    assert!(text.starts_with("Bonjour Zoë,\n\n"), "{text:?}");
    assert!(
        text.contains(&"A long line that quoted-printable has to wrap. ".repeat(4)),
        "not decoded: {text:?}"
    );
    let html = mail.html.as_deref().unwrap();
    assert!(html.contains("réinitialiser</a>"), "{html:?}");
    // The raw message still has its transfer encodings.
    assert!(mail.raw.contains("quoted-printable"), "{}", mail.raw);
    assert!(mail.raw.contains("Content-Transfer-Encoding: base64"));
    assert!(!mail.raw.contains("Zoë"));

    assert_eq!(
        mail.link(RESET),
        "https://roster.test/account/reset-password?token=abc%2Bdef-_42&lang=fr"
    );
    assert_eq!(mail.token(RESET), "abc+def-_42");
    // Without a text part, the HTML link, unescaped.
    let html_only = crate::mail::Mail {
        text: None,
        ..mail.clone()
    };
    assert_eq!(html_only.link(RESET), mail.link(RESET));

    // Taken: no further mail to Alice.
    sink.expect_none_to(TO, Duration::from_millis(300)).await;
    assert_eq!(sink.received().len(), 1);
    assert_eq!(sink.refused(), 0);
    sink.stop().await;

    // Down: the connection is refused. Back with a temporary failure.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    let sink = MailSink::start_on(port, Some(451)).await;
    assert_eq!(sink.port(), port);
    assert_eq!(send(port, TO).await, "SMTP-ERROR 451");
    sink.wait_for_refused(1).await;
    assert_eq!(sink.refused(), 1);
    assert!(sink.received().is_empty());
    sink.stop().await;

    // Back and accepting, on the same port.
    let sink = MailSink::start_on(port, None).await;
    assert_eq!(send(port, "bob@example.com").await, "SENT");
    let mail = sink.next_to("bob@example.com").await;
    assert_eq!(mail.to, vec!["bob@example.com".to_owned()]);
    sink.expect_none_to(TO, Duration::from_millis(100)).await;
    sink.stop().await;
}

/// Serves `GET` with a password form posting to the same path, and `POST`
/// with a page echoing the body.
fn serve_form() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            // One thread each: Chromium may open a connection it never uses.
            std::thread::spawn(move || {
                let _ = answer(stream);
            });
        }
    });
    port
}

fn answer(stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let (status, page) = match request_line.split_whitespace().collect::<Vec<_>>()[..] {
        ["GET", "/form", _] => (
            "200 OK",
            "<!doctype html><html><head><title>Form</title></head><body>\
             <h1>Choose a password</h1>\
             <form method=post action=/form><input type=password name=password>\
             <button type=submit>Save</button></form></body></html>"
                .to_owned(),
        ),
        ["POST", "/form", _] => (
            "200 OK",
            format!(
                "<!doctype html><html><head><title>Saved</title></head><body><p>{}</p></body></html>",
                String::from_utf8_lossy(&body)
            ),
        ),
        _ => ("404 Not Found", String::new()),
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{page}",
        page.len()
    )?;
    stream.flush()
}

#[tokio::test]
async fn browser_fills_and_submits_a_form() {
    let url = format!("http://127.0.0.1:{}/form", serve_form());
    let started = std::time::Instant::now();
    let page = browse(&url, &[("password", "hunter2")], true).await;
    eprintln!("browsed in {:?}", started.elapsed());
    assert_eq!(page["before"]["title"], "Form", "{page}");
    assert!(
        page["before"]["text"]
            .as_str()
            .unwrap()
            .contains("Choose a password"),
        "{page}"
    );
    assert_eq!(page["after"]["title"], "Saved", "{page}");
    assert_eq!(page["after"]["url"], url.as_str(), "{page}");
    assert!(
        page["after"]["text"]
            .as_str()
            .unwrap()
            .contains("password=hunter2"),
        "{page}"
    );

    // Without a submit there is no `after`.
    let page = browse(&url, &[], false).await;
    assert!(page["after"].is_null(), "{page}");
}
