//! [`SessionStream`]: one local connection's end of a session — an `AsyncRead + AsyncWrite`
//! the tunnel manager joins to a TCP connection (or stdin/stdout).
//!
//! The stream and the session driver share two bounded buffers under a mutex. Writes fill the
//! outgoing buffer and return `Pending` when it is full, so a copy loop stops reading its
//! socket: that is the backpressure from the data channel all the way to the local peer. The
//! driver fills the incoming buffer and stops taking the agent's data while any stream's
//! buffer is full (spec §7.3: smux v1 has no per-stream windows). Each side wakes the other
//! through wakers, never by polling.
//!
//! Closing: `shutdown` (or dropping the stream) ends the local side; what was written is still
//! sent, then the session closes its end (an smux FIN, or DisconnectToPort in basic mode —
//! both are full closes, spec §7.3). When the remote side ends, reads drain what arrived and
//! then see end-of-file, or the session's failure as an error.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How the remote side of a stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    /// Normally: reads see end-of-file, writes fail with `BrokenPipe`.
    Eof,
    /// Abnormally: reads and writes fail with this error once buffered data is read.
    Failed {
        kind: io::ErrorKind,
        message: String,
    },
}

impl StreamEnd {
    fn to_io_error(&self) -> io::Error {
        match self {
            StreamEnd::Eof => io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the instance side closed the connection",
            ),
            StreamEnd::Failed { kind, message } => io::Error::new(*kind, message.clone()),
        }
    }
}

#[derive(Debug)]
struct Buffers {
    limit: usize,
    outgoing: BytesMut,
    write_waker: Option<Waker>,
    /// `shutdown` was called or the stream was dropped: nothing more will be written.
    local_closed: bool,
    dropped: bool,
    incoming: VecDeque<Bytes>,
    incoming_len: usize,
    read_waker: Option<Waker>,
    end: Option<StreamEnd>,
}

/// The state a [`SessionStream`] shares with the session driver.
#[derive(Debug)]
pub(crate) struct StreamShared {
    buffers: Mutex<Buffers>,
    driver: Arc<AtomicWaker>,
}

impl StreamShared {
    /// A new stream buffering up to `limit` bytes each way; `driver` is woken whenever the
    /// stream has something for the driver to do.
    pub(crate) fn new(limit: usize, driver: Arc<AtomicWaker>) -> Arc<Self> {
        Arc::new(StreamShared {
            buffers: Mutex::new(Buffers {
                limit: limit.max(1),
                outgoing: BytesMut::new(),
                write_waker: None,
                local_closed: false,
                dropped: false,
                incoming: VecDeque::new(),
                incoming_len: 0,
                read_waker: None,
                end: None,
            }),
            driver,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Buffers> {
        // A panic while holding the lock leaves plain buffers behind; they are still usable.
        self.buffers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Offers the outgoing bytes to `send`, which returns how many it took; wakes the writer
    /// when room was made. Returns the number taken.
    pub(crate) fn drain_outgoing(&self, send: impl FnOnce(&[u8]) -> usize) -> usize {
        let mut buffers = self.lock();
        if buffers.outgoing.is_empty() {
            return 0;
        }
        let taken = send(&buffers.outgoing).min(buffers.outgoing.len());
        if taken > 0 {
            buffers.outgoing.advance(taken);
            if let Some(waker) = buffers.write_waker.take() {
                waker.wake();
            }
        }
        taken
    }

    /// The local side is done and everything it wrote has been taken.
    pub(crate) fn is_local_finished(&self) -> bool {
        let buffers = self.lock();
        buffers.local_closed && buffers.outgoing.is_empty()
    }

    /// Whether the incoming buffer is at its limit (a dropped stream never is).
    pub(crate) fn is_incoming_full(&self) -> bool {
        let buffers = self.lock();
        !buffers.dropped && buffers.incoming_len >= buffers.limit
    }

    /// Delivers bytes from the instance. Returns how many reach the local side (0 if the
    /// stream was dropped or has already ended).
    pub(crate) fn push_incoming(&self, data: Bytes) -> usize {
        let mut buffers = self.lock();
        if buffers.dropped || buffers.end.is_some() || data.is_empty() {
            return 0;
        }
        let len = data.len();
        buffers.incoming_len += len;
        buffers.incoming.push_back(data);
        if let Some(waker) = buffers.read_waker.take() {
            waker.wake();
        }
        len
    }

    /// Ends the remote side (first end wins). Unsent outgoing data is discarded.
    pub(crate) fn finish(&self, end: StreamEnd) {
        let mut buffers = self.lock();
        if buffers.end.is_none() {
            buffers.end = Some(end);
        }
        buffers.outgoing.clear();
        let wakers = [buffers.read_waker.take(), buffers.write_waker.take()];
        drop(buffers);
        wakers.into_iter().flatten().for_each(Waker::wake);
    }
}

/// One local connection carried by a session. See the module documentation.
#[derive(Debug)]
pub struct SessionStream {
    shared: Arc<StreamShared>,
}

impl SessionStream {
    pub(crate) fn new(shared: Arc<StreamShared>) -> Self {
        SessionStream { shared }
    }
}

impl AsyncRead for SessionStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut buffers = self.shared.lock();
        if let Some(front) = buffers.incoming.front_mut() {
            let n = front.len().min(buf.remaining());
            buf.put_slice(&front[..n]);
            front.advance(n);
            if front.is_empty() {
                buffers.incoming.pop_front();
            }
            buffers.incoming_len -= n;
            drop(buffers);
            self.shared.driver.wake();
            return Poll::Ready(Ok(()));
        }
        match &buffers.end {
            Some(StreamEnd::Eof) => Poll::Ready(Ok(())),
            Some(end) => Poll::Ready(Err(end.to_io_error())),
            None => {
                buffers.read_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for SessionStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut buffers = self.shared.lock();
        if let Some(end) = &buffers.end {
            return Poll::Ready(Err(end.to_io_error()));
        }
        if buffers.local_closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the stream was shut down for writing",
            )));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let room = buffers.limit.saturating_sub(buffers.outgoing.len());
        if room == 0 {
            buffers.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let taken = room.min(data.len());
        buffers.outgoing.extend_from_slice(&data[..taken]);
        drop(buffers);
        self.shared.driver.wake();
        Poll::Ready(Ok(taken))
    }

    /// Completes once everything written has been handed to the session's data channel.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut buffers = self.shared.lock();
        if buffers.outgoing.is_empty() {
            return Poll::Ready(Ok(()));
        }
        if let Some(end) = &buffers.end {
            return Poll::Ready(Err(end.to_io_error()));
        }
        buffers.write_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.shared.lock().local_closed = true;
        self.shared.driver.wake();
        Poll::Ready(Ok(()))
    }
}

impl Drop for SessionStream {
    fn drop(&mut self) {
        let mut buffers = self.shared.lock();
        buffers.local_closed = true;
        buffers.dropped = true;
        buffers.incoming.clear();
        buffers.incoming_len = 0;
        drop(buffers);
        self.shared.driver.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn pair(limit: usize) -> (SessionStream, Arc<StreamShared>) {
        let shared = StreamShared::new(limit, Arc::new(AtomicWaker::new()));
        (SessionStream::new(shared.clone()), shared)
    }

    #[tokio::test]
    async fn writes_push_back_when_the_outgoing_buffer_is_full() {
        let (mut stream, shared) = pair(4);
        assert_eq!(stream.write(b"abcdef").await.unwrap(), 4);
        let blocked = tokio::spawn(async move {
            stream.write_all(b"ef").await.unwrap();
            stream
        });
        tokio::task::yield_now().await;
        assert!(!blocked.is_finished());
        assert_eq!(
            shared.drain_outgoing(|data| {
                assert_eq!(data, b"abcd");
                3
            }),
            3
        );
        let _stream = blocked.await.unwrap();
        let mut rest = Vec::new();
        shared.drain_outgoing(|data| {
            rest.extend_from_slice(data);
            data.len()
        });
        assert_eq!(rest, b"def");
    }

    #[tokio::test]
    async fn reads_drain_what_arrived_before_the_end_of_file() {
        let (mut stream, shared) = pair(1024);
        shared.push_incoming(Bytes::from_static(b"hello "));
        shared.push_incoming(Bytes::from_static(b"world"));
        shared.finish(StreamEnd::Eof);
        let mut all = String::new();
        stream.read_to_string(&mut all).await.unwrap();
        assert_eq!(all, "hello world");
        let error = stream.write(b"x").await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
    }

    #[tokio::test]
    async fn a_failed_session_reaches_readers_as_an_error_after_the_data() {
        let (mut stream, shared) = pair(1024);
        shared.push_incoming(Bytes::from_static(b"partial"));
        shared.finish(StreamEnd::Failed {
            kind: io::ErrorKind::ConnectionAborted,
            message: "lost".into(),
        });
        let mut buf = [0u8; 16];
        assert_eq!(stream.read(&mut buf).await.unwrap(), 7);
        let error = stream.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionAborted);
        assert_eq!(error.to_string(), "lost");
    }

    #[tokio::test]
    async fn the_incoming_buffer_reports_full_until_read_and_never_once_dropped() {
        let (mut stream, shared) = pair(4);
        shared.push_incoming(Bytes::from_static(b"abcdef"));
        assert!(shared.is_incoming_full());
        let mut buf = [0u8; 3];
        stream.read_exact(&mut buf).await.unwrap();
        assert!(!shared.is_incoming_full());
        shared.push_incoming(Bytes::from_static(b"gh"));
        assert!(shared.is_incoming_full());
        drop(stream);
        assert!(!shared.is_incoming_full());
        assert_eq!(shared.push_incoming(Bytes::from_static(b"ignored")), 0);
    }

    #[tokio::test]
    async fn shutdown_finishes_the_local_side_once_written_data_is_taken() {
        let (mut stream, shared) = pair(1024);
        stream.write_all(b"last words").await.unwrap();
        stream.shutdown().await.unwrap();
        assert!(!shared.is_local_finished());
        shared.drain_outgoing(<[u8]>::len);
        assert!(shared.is_local_finished());
        stream.flush().await.unwrap();
    }
}
