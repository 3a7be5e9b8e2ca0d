//! `MailSink`: a real SMTP server (`tests/support/smtp_sink.py`) that records
//! what the service sends, for tests to wait on and read.
//!
//! The sink runs as a child process; a reader thread turns its `MAIL` and
//! `REFUSED` lines into shared state. It exits when the `MailSink` is stopped
//! or dropped, and on its own when this process dies (it watches its stdin).

#![allow(dead_code)]

use std::{
    collections::HashMap,
    fmt::Write as _,
    io::{BufRead as _, BufReader},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use serde::Deserialize;
use tokio::{sync::Notify, time::Instant};

use crate::python::{python, support_script};

/// How long `start` waits for the sink to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `next_to` (and `wait_for_refused`) wait.
const MAIL_TIMEOUT: Duration = Duration::from_secs(20);

/// One accepted message, as the sink decoded it.
#[derive(Debug, Clone, Deserialize)]
pub struct Mail {
    /// The envelope sender (`MAIL FROM`).
    pub from: String,
    /// The envelope recipients (`RCPT TO`).
    pub to: Vec<String>,
    /// The decoded `Subject` ("" without one).
    pub subject: String,
    /// Top-level headers: lowercased name -> decoded value (the first, when
    /// repeated).
    pub headers: HashMap<String, String>,
    /// The decoded text/plain body, LF line ends.
    pub text: Option<String>,
    /// The decoded text/html body, LF line ends.
    pub html: Option<String>,
    /// The message as received (CRLF line ends, transfer encodings intact).
    pub raw: String,
}

impl Mail {
    /// Whether `address` is an envelope recipient (case-insensitive).
    pub fn is_to(&self, address: &str) -> bool {
        let address = address.trim();
        self.to
            .iter()
            .any(|to| to.trim().eq_ignore_ascii_case(address))
    }

    /// The first URL in the text body (else in the HTML body, `&amp;`
    /// unescaped) that contains `path`, e.g. `/account/reset-password?token=`.
    /// A URL ends at whitespace, `"`, `<` or `>`; trailing sentence
    /// punctuation is dropped. Panics when there is none.
    pub fn link(&self, path: &str) -> String {
        self.text
            .as_deref()
            .and_then(|text| find_link(text, path))
            .or_else(|| {
                self.html
                    .as_deref()
                    .and_then(|html| find_link(html, path))
                    .map(|link| link.replace("&amp;", "&"))
            })
            .unwrap_or_else(|| {
                panic!(
                    "no link containing {path:?} in the mail {:?} to {:?}\n\
                     text: {:?}\nhtml: {:?}",
                    self.subject, self.to, self.text, self.html
                )
            })
    }

    /// The (percent-decoded) `token` query parameter of `link(path)`.
    pub fn token(&self, path: &str) -> String {
        let link = self.link(path);
        let url = url::Url::parse(&link).unwrap_or_else(|e| panic!("bad link {link:?}: {e}"));
        url.query_pairs()
            .find_map(|(key, value)| (key == "token").then(|| value.into_owned()))
            .unwrap_or_else(|| panic!("no token in {link:?}"))
    }

    fn summary(&self) -> String {
        format!("{} -> {:?}: {:?}", self.from, self.to, self.subject)
    }
}

fn find_link(body: &str, path: &str) -> Option<String> {
    body.match_indices("http").find_map(|(start, _)| {
        let rest = &body[start..];
        if !(rest.starts_with("http://") || rest.starts_with("https://")) {
            return None;
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '<' | '>'))
            .unwrap_or(rest.len());
        let link = rest[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')']);
        link.contains(path).then(|| link.to_owned())
    })
}

#[derive(Debug, Clone, Deserialize)]
struct Refused {
    from: String,
    to: Vec<String>,
}

#[derive(Default)]
struct State {
    mails: Vec<Mail>,
    taken: Vec<bool>,
    refused: Vec<Refused>,
    /// The sink's stdout closed: it exited.
    closed: bool,
}

impl State {
    fn listing(&self) -> String {
        if self.mails.is_empty() {
            return "  (no mail)\n".to_owned();
        }
        let mut out = String::new();
        for (mail, taken) in self.mails.iter().zip(&self.taken) {
            let taken = if *taken { " (taken)" } else { "" };
            let _ = writeln!(out, "  {}{taken}", mail.summary());
        }
        out
    }

    fn untaken_to(&self, address: &str) -> Option<usize> {
        (0..self.mails.len()).find(|&i| !self.taken[i] && self.mails[i].is_to(address))
    }
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Notify,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running SMTP sink; see the module docs.
pub struct MailSink {
    child: Child,
    /// Closing it tells the sink to exit.
    stdin: Option<ChildStdin>,
    port: u16,
    shared: Arc<Shared>,
}

impl MailSink {
    /// A sink on a free port that accepts everything.
    pub async fn start() -> Self {
        Self::start_on(0, None).await
    }

    /// A sink on `port` (0: a free one). With `reply`, every message is
    /// refused at DATA with that SMTP code (e.g. 451, 550) and counted by
    /// `refused`. Stopping a sink and starting one on its `port` simulates a
    /// server that goes down and comes back.
    pub async fn start_on(port: u16, reply: Option<u16>) -> Self {
        let python = tokio::task::spawn_blocking(python)
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let mut command = Command::new(&python);
        command
            .arg(support_script("smtp_sink.py"))
            .arg(format!("--port={port}"))
            .arg("--watch-stdin");
        if let Some(code) = reply {
            command.arg(format!("--reply={code}"));
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {} smtp_sink.py: {e}", python.display()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");

        let shared = Arc::new(Shared::default());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let reader = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("mail-sink-reader".into())
            .spawn(move || read_lines(stdout, &reader, ready_tx))
            .expect("spawn the mail sink's reader");

        let mut sink = Self {
            child,
            stdin,
            port: 0,
            shared,
        };
        // Dropping `sink` on a panic below kills the child.
        sink.port = match tokio::time::timeout(START_TIMEOUT, ready_rx).await {
            Ok(Ok(Ok(bound))) => bound,
            Ok(Ok(Err(line))) => panic!("the mail sink printed {line:?} instead of READY <port>"),
            Ok(Err(_)) => {
                let status = sink.child.wait();
                panic!("the mail sink exited before it was ready ({status:?}); see its stderr")
            }
            Err(_) => panic!("the mail sink was not ready within {START_TIMEOUT:?}"),
        };
        sink
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `smtp://127.0.0.1:<port>?tls=none`, for `ROSTER_SMTP_URL`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    /// Waits (up to 20 s) for the next mail to `address` (an envelope
    /// recipient, case-insensitive) that no earlier call took, and takes it.
    pub async fn next_to(&self, address: &str) -> Mail {
        let deadline = Instant::now() + MAIL_TIMEOUT;
        loop {
            let changed = self.shared.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            {
                let mut state = self.shared.state();
                if let Some(i) = state.untaken_to(address) {
                    state.taken[i] = true;
                    return state.mails[i].clone();
                }
                if state.closed {
                    panic!(
                        "the mail sink exited while waiting for mail to {address}; it received:\n{}",
                        state.listing()
                    );
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!(
                    "no mail to {address} within {MAIL_TIMEOUT:?}; the sink received:\n{}",
                    self.shared.state().listing()
                );
            }
        }
    }

    /// Asserts that no untaken mail to `address` arrives (or is already
    /// waiting) within `wait`.
    pub async fn expect_none_to(&self, address: &str, wait: Duration) {
        let deadline = Instant::now() + wait;
        loop {
            let changed = self.shared.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            {
                let state = self.shared.state();
                if let Some(i) = state.untaken_to(address) {
                    panic!(
                        "expected no mail to {address}, got {}; the sink received:\n{}",
                        state.mails[i].summary(),
                        state.listing()
                    );
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return;
            }
        }
    }

    /// Every mail accepted so far, taken or not, in arrival order.
    pub fn received(&self) -> Vec<Mail> {
        self.shared.state().mails.clone()
    }

    /// How many messages were refused (with `start_on(_, Some(code))`).
    pub fn refused(&self) -> usize {
        self.shared.state().refused.len()
    }

    /// Waits (up to 20 s) until at least `count` messages were refused.
    pub async fn wait_for_refused(&self, count: usize) {
        let deadline = Instant::now() + MAIL_TIMEOUT;
        loop {
            let changed = self.shared.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            let refused = self.refused();
            if refused >= count {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!("{refused} messages refused within {MAIL_TIMEOUT:?}, expected {count}");
            }
        }
    }

    /// Stops the sink and waits for it to exit, freeing its port.
    pub async fn stop(mut self) {
        // EOF on its stdin: it closes the listener and exits.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        // Drop kills it.
    }
}

impl Drop for MailSink {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

type Ready = tokio::sync::oneshot::Sender<Result<u16, String>>;

fn read_lines(stdout: std::process::ChildStdout, shared: &Shared, ready: Ready) {
    let mut ready = Some(ready);
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(ready) = ready.take() {
            let port = line
                .strip_prefix("READY ")
                .and_then(|port| port.trim().parse().ok());
            let _ = ready.send(port.ok_or_else(|| line.clone()));
            continue;
        }
        if let Some(json) = line.strip_prefix("MAIL ") {
            match serde_json::from_str::<Mail>(json) {
                Ok(mail) => {
                    let mut state = shared.state();
                    state.mails.push(mail);
                    state.taken.push(false);
                }
                Err(e) => eprintln!("mail sink: unreadable MAIL line ({e}): {json}"),
            }
        } else if let Some(json) = line.strip_prefix("REFUSED ") {
            match serde_json::from_str::<Refused>(json) {
                Ok(refused) => shared.state().refused.push(refused),
                Err(e) => eprintln!("mail sink: unreadable REFUSED line ({e}): {json}"),
            }
        } else {
            eprintln!("mail sink: {line}");
        }
        shared.changed.notify_waiters();
    }
    shared.state().closed = true;
    shared.changed.notify_waiters();
}
