//! [`PortSessionPool`]: parallel local connections spread over up to N sessions to one
//! destination.
//!
//! One session moves about 1 MB/s each way at best (the agent's 1024-byte, ~1000 messages/s
//! cadence, spec §9), and a basic-mode session carries one connection at a time; several
//! sessions to the same host add up. A new connection goes to an idle session if there is one,
//! else to a new session while fewer than N exist, else to the least busy session that can
//! take it. Sessions that end are dropped from the pool; streams never move between sessions.

use std::num::NonZeroUsize;
use std::sync::Arc;

use tokio::sync::Mutex;

use super::api::SessionApi;
use super::config::SessionConfig;
use super::error::SessionError;
use super::plane::StreamError;
use super::port::PortSession;
use super::state::{SessionState, SessionStats};
use super::stream::SessionStream;
use crate::ssm::proto::PortForwarding;

/// See the module documentation.
pub struct PortSessionPool<A> {
    api: Arc<A>,
    target: String,
    port: u16,
    remote_host: Option<String>,
    config: SessionConfig,
    max_sessions: NonZeroUsize,
    sessions: Mutex<Vec<PortSession>>,
    /// Told of each session the pool starts (a status display follows its state).
    on_start: Option<SessionObserver>,
}

impl<A> std::fmt::Debug for PortSessionPool<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortSessionPool")
            .field("target", &self.target)
            .field("port", &self.port)
            .field("remote_host", &self.remote_host)
            .field("max_sessions", &self.max_sessions)
            .finish_non_exhaustive()
    }
}

/// See [`PortSessionPool::on_start`].
pub type SessionObserver = Box<dyn Fn(&PortSession) + Send + Sync>;

impl<A: SessionApi> PortSessionPool<A> {
    /// A pool for `target:port` (or `remote_host:port` via `target`); no session is started
    /// until the first stream is asked for.
    pub fn new(
        api: Arc<A>,
        target: &str,
        port: u16,
        remote_host: Option<String>,
        config: SessionConfig,
        max_sessions: NonZeroUsize,
    ) -> Self {
        PortSessionPool {
            api,
            target: target.to_owned(),
            port,
            remote_host,
            config,
            max_sessions,
            sessions: Mutex::new(Vec::new()),
            on_start: None,
        }
    }

    /// Calls `observer` with each session the pool starts, before its first stream opens.
    pub fn on_start(mut self, observer: SessionObserver) -> Self {
        self.on_start = Some(observer);
        self
    }

    /// A stream for one local connection, on the session chosen as described above. It is
    /// [`StreamError::Busy`] only when all N sessions are basic-mode sessions that each carry
    /// a connection.
    pub async fn open_stream(&self) -> Result<SessionStream, PoolError> {
        let mut sessions = self.sessions.lock().await;
        sessions.retain(|session| !matches!(session.stats().state, SessionState::Closed(_)));
        let idle = sessions
            .iter()
            .position(|session| session.stats().open_streams == 0);
        let index = match idle {
            Some(index) => index,
            None if sessions.len() < self.max_sessions.get() => {
                let session = PortSession::start(
                    self.api.clone(),
                    &self.target,
                    self.port,
                    self.remote_host.clone(),
                    self.config.clone(),
                )
                .await?;
                if let Some(observer) = &self.on_start {
                    observer(&session);
                }
                sessions.push(session);
                sessions.len() - 1
            }
            None => sessions
                .iter()
                .enumerate()
                .filter(|(_, session)| matches!(session.mode(), PortForwarding::Mux { .. }))
                .min_by_key(|(_, session)| session.stats().open_streams)
                .map(|(index, _)| index)
                .ok_or(PoolError::Stream(StreamError::Busy))?,
        };
        Ok(sessions[index].open_stream().await?)
    }

    /// Every live session's counters.
    pub async fn stats(&self) -> Vec<SessionStats> {
        self.sessions
            .lock()
            .await
            .iter()
            .map(PortSession::stats)
            .collect()
    }

    /// Closes every session; the first failure to confirm a termination is returned.
    pub async fn close(self) -> Result<(), SessionError> {
        let sessions = self.sessions.into_inner();
        let results = futures_util::future::join_all(sessions.into_iter().map(PortSession::close));
        results.await.into_iter().collect()
    }
}

/// Why the pool could not provide a stream.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Starting another session failed.
    #[error(transparent)]
    Start(#[from] SessionError),
    /// The chosen session refused the stream.
    #[error(transparent)]
    Stream(#[from] StreamError),
}
