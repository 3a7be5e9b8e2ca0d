//! The listener's defence against slow-loris clients.
//!
//! poem builds hyper's connection itself and sets no timer, so hyper's own
//! `header_read_timeout` never runs, and the idle timeout only closes a
//! connection on which *no* byte moves: a client that trickles one header
//! byte every few seconds would hold its socket forever. [`HeadDeadline`]
//! wraps each accepted stream and fails its reads once a request head has
//! taken longer than the deadline to arrive, which makes hyper drop the
//! connection. Slow bodies are bounded where they are read
//! (`api::body::read_limited`).

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use poem::{
    http::uri::Scheme,
    listener::Acceptor,
    web::{LocalAddr, RemoteAddr},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{Instant, Sleep},
};

/// Wraps an acceptor so that every connection it yields is a [`HeadDeadline`].
#[derive(Debug)]
pub struct HeadDeadlineAcceptor<A> {
    inner: A,
    timeout: Duration,
}

impl<A> HeadDeadlineAcceptor<A> {
    /// Request heads on connections from `inner` must arrive within `timeout`.
    pub const fn new(inner: A, timeout: Duration) -> Self {
        Self { inner, timeout }
    }
}

impl<A: Acceptor> Acceptor for HeadDeadlineAcceptor<A> {
    type Io = HeadDeadline<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (io, local, remote, scheme) = self.inner.accept().await?;
        Ok((HeadDeadline::new(io, self.timeout), local, remote, scheme))
    }
}

/// Where the connection is in its request/response cycle, as far as the
/// bytes tell without parsing HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a request head: the deadline runs. `started` once a byte
    /// other than CR or LF came (hyper skips blank lines before a request
    /// line, so they neither start nor end a head); `in_line` once the
    /// current line has a byte other than CR: an empty line after a started
    /// head ends it, whether lines end in CRLF or a bare LF as hyper accepts.
    Head { started: bool, in_line: bool },
    /// The head is in; the body and the handler are not timed here.
    Served,
    /// A response went out; the next byte starts a new head (keep-alive
    /// waits are the idle timeout's business).
    Idle,
    /// HTTP/2 prior knowledge: frames, not text heads; never timed here.
    Http2,
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";
/// What an informational (1xx) response starts with.
const INFORMATIONAL: &[u8] = b"HTTP/1.1 1";
const HEAD_START: Phase = Phase::Head {
    started: false,
    in_line: false,
};

/// A stream whose request heads must arrive within a deadline: from the
/// connection's start, and from the first byte of each later request.
#[derive(Debug)]
pub struct HeadDeadline<Io> {
    io: Io,
    timeout: Duration,
    phase: Phase,
    deadline: Pin<Box<Sleep>>,
    /// Bytes read so far, up to the length of the HTTP/2 preface.
    prefix_len: usize,
    /// The first bytes of the response being written, until they tell
    /// whether it is informational (a `100 Continue` may be written in parts).
    response_start: Vec<u8>,
}

impl<Io> HeadDeadline<Io> {
    fn new(io: Io, timeout: Duration) -> Self {
        Self {
            io,
            timeout,
            phase: HEAD_START,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            prefix_len: 0,
            response_start: Vec::new(),
        }
    }

    /// Advances the phase over bytes just read.
    fn observe(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.prefix_len < H2_PREFACE.len() {
            let wanted = &H2_PREFACE[self.prefix_len..];
            let n = wanted.len().min(bytes.len());
            if bytes[..n] == wanted[..n] {
                self.prefix_len += n;
                if self.prefix_len == H2_PREFACE.len() {
                    self.phase = Phase::Http2;
                }
            } else {
                // Not HTTP/2: stop comparing.
                self.prefix_len = usize::MAX;
            }
        }
        if self.phase == Phase::Idle {
            self.phase = HEAD_START;
            self.deadline.as_mut().reset(Instant::now() + self.timeout);
        }
        if let Phase::Head {
            mut started,
            mut in_line,
        } = self.phase
        {
            // Line by line, with memchr finding the ends, rather than byte
            // by byte: this runs on every read of every connection.
            let mut rest = bytes;
            loop {
                let end = memchr::memchr(b'\n', rest);
                if rest[..end.unwrap_or(rest.len())]
                    .iter()
                    .any(|&b| b != b'\r')
                {
                    started = true;
                    in_line = true;
                }
                let Some(end) = end else { break };
                if started && !in_line {
                    self.phase = Phase::Served;
                    self.response_start.clear();
                    return;
                }
                in_line = false;
                rest = &rest[end + 1..];
            }
            self.phase = Phase::Head { started, in_line };
        }
    }

    /// Advances the phase over bytes just written: anything but an
    /// informational response answers the request.
    fn wrote(&mut self, bytes: &[u8]) {
        if self.phase != Phase::Served || bytes.is_empty() {
            return;
        }
        let wanted = INFORMATIONAL.len() - self.response_start.len();
        self.response_start
            .extend_from_slice(&bytes[..wanted.min(bytes.len())]);
        let seen = self.response_start.len();
        if self.response_start[..] != INFORMATIONAL[..seen] {
            self.phase = Phase::Idle;
        } else if seen == INFORMATIONAL.len() {
            // A 1xx: the final response is still to come.
            self.response_start.clear();
        }
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for HeadDeadline<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.observe(&buf.filled()[before..]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if matches!(this.phase, Phase::Head { .. }) {
                    ready!(this.deadline.as_mut().poll(cx));
                    tracing::debug!("closing a connection whose request head is too slow");
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "request head not received in time",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for HeadDeadline<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        this.wrote(&buf[..written]);
        Poll::Ready(Ok(written))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = ready!(Pin::new(&mut this.io).poll_write_vectored(cx, bufs))?;
        let mut left = written;
        for buf in bufs {
            if left == 0 {
                break;
            }
            let n = left.min(buf.len());
            this.wrote(&buf[..n]);
            left -= n;
        }
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(chunks: &[&[u8]]) -> Phase {
        let mut stream = HeadDeadline::new((), Duration::from_secs(1));
        for chunk in chunks {
            stream.observe(chunk);
        }
        stream.phase
    }

    #[tokio::test]
    async fn a_head_ends_at_the_blank_line_even_split_across_reads() {
        assert_eq!(fed(&[b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"]), Phase::Served);
        assert_eq!(
            fed(&[b"GET / HTTP/1.1\r\nHost: a\r", b"\n\r", b"\n"]),
            Phase::Served
        );
        assert_eq!(
            fed(&[b"GET / HTTP/1.1\r\nHost: a\r\n"]),
            Phase::Head {
                started: true,
                in_line: false
            }
        );
        // Bare LF line ends, as hyper accepts them.
        assert_eq!(fed(&[b"GET / HTTP/1.1\nHost: a\n\n"]), Phase::Served);
    }

    #[tokio::test]
    async fn blank_lines_before_a_request_line_do_not_end_a_head() {
        assert_eq!(fed(&[b"\r\n\r\n\r\n"]), HEAD_START);
        assert_eq!(
            fed(&[b"\r\n\r\nGET / HTTP/1.1\r\n"]),
            Phase::Head {
                started: true,
                in_line: false
            }
        );
    }

    /// The phase after `bytes`, read byte by byte: the definition that
    /// `observe` implements line by line.
    fn reference(bytes: &[u8]) -> Phase {
        let (mut started, mut in_line) = (false, false);
        for &byte in bytes {
            match byte {
                b'\r' => {}
                b'\n' if started && !in_line => return Phase::Served,
                b'\n' => in_line = false,
                _ => (started, in_line) = (true, true),
            }
        }
        Phase::Head { started, in_line }
    }

    proptest::proptest! {
        #[test]
        fn any_split_of_any_head_gives_the_bytewise_phase(
            bytes in proptest::collection::vec(
                proptest::sample::select(b"\r\nGa".to_vec()),
                0..40,
            ),
            cuts in proptest::collection::vec(0usize..40, 0..4),
        ) {
            // `HeadDeadline` holds a timer, which needs a runtime.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            let _entered = runtime.enter();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut from = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                chunks.push(&bytes[from..cut]);
                from = cut;
            }
            proptest::prop_assert_eq!(fed(&chunks), reference(&bytes));
        }
    }

    #[tokio::test]
    async fn only_a_final_response_answers_a_request() {
        let mut stream = HeadDeadline::new((), Duration::from_secs(1));
        stream.observe(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n");
        // A 100 Continue written in two parts.
        stream.wrote(b"HTTP/1.");
        stream.wrote(b"1 100 Continue\r\n\r\n");
        assert_eq!(stream.phase, Phase::Served);
        stream.wrote(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(stream.phase, Phase::Idle);
    }

    #[tokio::test]
    async fn http2_prior_knowledge_is_never_timed() {
        assert_eq!(fed(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]), Phase::Http2);
        assert_eq!(fed(&[b"PRI * HT", b"TP/2.0\r\n"]), Phase::Http2);
        assert_eq!(fed(&[b"PRI * HTTP/1.1\r\n\r\n"]), Phase::Served);
    }
}
