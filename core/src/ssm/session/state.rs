//! What a session shows the outside: its state (through a `watch` channel, so a UI can
//! follow it without polling), how it ended, and its counters.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Where a session is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    /// StartSession succeeded; the first connection and the handshake are under way.
    Connecting,
    /// Data flows.
    Open,
    /// The connection was lost (or the service rotated it, or the first one failed); getting
    /// it back with ResumeSession. `attempt` counts from 1 within one loss.
    Resuming { attempt: u32 },
    /// Over.
    Closed(SessionEnd),
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionEnd {
    /// We ended it ([`close`](super::PortSession::close), or its handle was dropped).
    #[error("the session was closed")]
    Terminated,
    /// The service ended it (`channel_closed`), e.g. the agent's destination went away or an
    /// idle or maximum-duration limit of the Session Manager preferences was reached.
    #[error("Session Manager ended the session{}", reason_suffix(.reason))]
    ClosedByService { reason: String },
    /// ResumeSession returned no token: the session had already timed out or ended.
    #[error(
        "the session timed out while its connection was being restored (ResumeSession \
         returned no token); start a new one"
    )]
    TimedOut,
    /// The connection was lost and could not be restored in time.
    #[error("the session's connection was lost and could not be restored: {error}")]
    ResumeFailed { error: String },
    /// Something the session cannot survive (a protocol violation, a refused handshake).
    #[error("the session failed: {error}")]
    Failed { error: String },
}

fn reason_suffix(reason: &str) -> String {
    if reason.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", reason.trim())
    }
}

/// A snapshot of a session's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStats {
    pub state: SessionState,
    /// Bytes from local streams accepted for the instance.
    pub bytes_sent: u64,
    /// Bytes from the instance delivered to local streams.
    pub bytes_received: u64,
    /// Connections restored after a loss.
    pub resumes: u32,
    /// Local streams currently carried.
    pub open_streams: usize,
    /// The smoothed round-trip time to the agent, once an acknowledgement gave a sample.
    pub rtt: Option<std::time::Duration>,
}

/// The live counters behind [`SessionStats`], shared by the driver and the handles.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) resumes: AtomicU32,
    pub(crate) open_streams: AtomicUsize,
    /// [`SessionStats::rtt`] in microseconds; 0 until known.
    pub(crate) rtt_micros: AtomicU64,
}

impl Counters {
    pub(crate) fn add_sent(&self, bytes: usize) {
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn add_received(&self, bytes: usize) {
        self.bytes_received
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn set_rtt(&self, rtt: std::time::Duration) {
        let micros = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX).max(1);
        self.rtt_micros.store(micros, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, state: SessionState) -> SessionStats {
        SessionStats {
            state,
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            resumes: self.resumes.load(Ordering::Relaxed),
            open_streams: self.open_streams.load(Ordering::Relaxed),
            rtt: match self.rtt_micros.load(Ordering::Relaxed) {
                0 => None,
                micros => Some(std::time::Duration::from_micros(micros)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_close_shows_its_reason_only_when_there_is_one() {
        let with = SessionEnd::ClosedByService {
            reason: "Session timed out\n".into(),
        };
        assert_eq!(
            with.to_string(),
            "Session Manager ended the session: Session timed out"
        );
        let without = SessionEnd::ClosedByService {
            reason: String::new(),
        };
        assert_eq!(without.to_string(), "Session Manager ended the session");
    }
}
