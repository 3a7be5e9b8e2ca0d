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
    /// Reading a request head: the deadline runs. `matched` counts how much
    /// of the blank line that ends the head has been seen.
    Head { matched: u8 },
    /// The head is in; the body and the handler are not timed here.
    Served,
    /// A response went out; the next byte starts a new head (keep-alive
    /// waits are the idle timeout's business).
    Idle,
    /// HTTP/2 prior knowledge: frames, not text heads; never timed here.
    Http2,
}

const HEAD_END: &[u8; 4] = b"\r\n\r\n";
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

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
}

impl<Io> HeadDeadline<Io> {
    fn new(io: Io, timeout: Duration) -> Self {
        Self {
            io,
            timeout,
            phase: Phase::Head { matched: 0 },
            deadline: Box::pin(tokio::time::sleep(timeout)),
            prefix_len: 0,
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
            self.phase = Phase::Head { matched: 0 };
            self.deadline.as_mut().reset(Instant::now() + self.timeout);
        }
        if let Phase::Head { mut matched } = self.phase {
            for &byte in bytes {
                matched = match (byte, matched) {
                    (b, m) if b == HEAD_END[usize::from(m)] => m + 1,
                    (b'\r', _) => 1,
                    _ => 0,
                };
                if usize::from(matched) == HEAD_END.len() {
                    self.phase = Phase::Served;
                    return;
                }
            }
            self.phase = Phase::Head { matched };
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
        // A `100 Continue` goes out between a head and its body; anything
        // else written means the request was answered.
        if this.phase == Phase::Served && written > 0 && !buf.starts_with(b"HTTP/1.1 1") {
            this.phase = Phase::Idle;
        }
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
        let informational = bufs
            .iter()
            .find(|b| !b.is_empty())
            .is_some_and(|b| b.starts_with(b"HTTP/1.1 1"));
        if this.phase == Phase::Served && written > 0 && !informational {
            this.phase = Phase::Idle;
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
            Phase::Head { matched: 2 }
        );
        assert_eq!(fed(&[b"GET / HTTP/1.1\r\r\n\r\n"]), Phase::Served);
        assert_eq!(fed(&[b"\r\n\r"]), Phase::Head { matched: 3 });
    }

    #[tokio::test]
    async fn http2_prior_knowledge_is_never_timed() {
        assert_eq!(fed(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]), Phase::Http2);
        assert_eq!(fed(&[b"PRI * HT", b"TP/2.0\r\n"]), Phase::Http2);
        assert_eq!(fed(&[b"PRI * HTTP/1.1\r\n\r\n"]), Phase::Served);
    }
}
