//! [`PortSession`]: a port-forwarding session as the tunnel manager uses it — start it, open
//! one stream per accepted local connection, watch its state, close it.
//!
//! A session keeps its connections for its whole life: streams are never moved between
//! sessions, and a resumed connection carries on the same streams. Dropping the handle without
//! [`close`](PortSession::close) still ends the session (in the background).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::api::{SessionApi, SessionDocument, StartSessionRequest};
use super::config::SessionConfig;
use super::driver::{self, Command, DriverExit, Purpose};
use super::error::SessionError;
use super::plane::StreamError;
use super::state::{Counters, SessionEnd, SessionState, SessionStats};
use super::stream::SessionStream;
use crate::ssm::proto::PortForwarding;

/// One open Session Manager session. See the module documentation.
pub struct PortSession {
    session_id: String,
    mode: PortForwarding,
    commands: mpsc::Sender<Command>,
    state: watch::Receiver<SessionState>,
    counters: Arc<Counters>,
    task: JoinHandle<DriverExit>,
}

impl std::fmt::Debug for PortSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortSession")
            .field("session_id", &self.session_id)
            .field("mode", &self.mode)
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

impl PortSession {
    /// Starts a session forwarding to `port` on `target` (an instance id), or to
    /// `remote_host:port` as reached from the instance, and returns once data can flow:
    /// StartSession, the WebSocket, and the agent's handshake are done.
    pub async fn start<A: SessionApi>(
        api: Arc<A>,
        target: &str,
        port: u16,
        remote_host: Option<String>,
        config: SessionConfig,
    ) -> Result<PortSession, SessionError> {
        let document = match remote_host {
            Some(host) => SessionDocument::PortForwardingToRemoteHost { host, port },
            None => SessionDocument::PortForwarding { port },
        };
        PortSession::start_with(api, target, document, Purpose::PortForwarding, config).await
    }

    /// Starts a session with `document` for `purpose`; fails if the agent picks a data plane
    /// the purpose cannot use.
    pub(crate) async fn start_with<A: SessionApi>(
        api: Arc<A>,
        target: &str,
        document: SessionDocument,
        purpose: Purpose,
        config: SessionConfig,
    ) -> Result<PortSession, SessionError> {
        let request = StartSessionRequest {
            target: target.to_owned(),
            document,
        };
        let started = api.start_session(&request).await?;
        let open_timeout = config.open_timeout;
        let spawned = driver::spawn(api, target, started, purpose, config);
        let opened = tokio::time::timeout(open_timeout, spawned.opened).await;
        let mode = match opened {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => {
                // The driver ended without a word: only a panic does that.
                return Err(SessionError::Ended(SessionEnd::Failed {
                    error: "the session driver stopped unexpectedly".into(),
                }));
            }
            Err(_) => {
                let waiting_for = match &*spawned.state.borrow() {
                    SessionState::Resuming { attempt } => {
                        format!("the data channel connection, attempt {attempt}")
                    }
                    _ => "the data channel connection and the SSM agent's handshake".to_owned(),
                };
                // Dropping `spawned.commands` makes the driver end the session.
                return Err(SessionError::OpenTimeout {
                    target: target.to_owned(),
                    after: open_timeout,
                    waiting_for,
                });
            }
        };
        Ok(PortSession {
            session_id: spawned.session_id,
            mode,
            commands: spawned.commands,
            state: spawned.state,
            counters: spawned.counters,
            task: spawned.task,
        })
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The data plane the agent and we agreed on: `Mux` carries any number of streams at
    /// once, `Basic` one at a time.
    pub fn mode(&self) -> PortForwarding {
        self.mode
    }

    /// A new stream for one local connection. In basic mode, [`StreamError::Busy`] while
    /// another stream is open.
    pub async fn open_stream(&self) -> Result<SessionStream, StreamError> {
        let (reply, answer) = oneshot::channel();
        if self
            .commands
            .send(Command::OpenStream(reply))
            .await
            .is_err()
        {
            return Err(self.closed_error());
        }
        answer.await.unwrap_or_else(|_| Err(self.closed_error()))
    }

    /// Tells a shell session's agent the terminal's new size.
    pub async fn resize(&self, size: crate::ssm::proto::TerminalSize) {
        // A closed session has no terminal left to resize.
        let _ = self.commands.send(Command::Resize(size)).await;
    }

    fn closed_error(&self) -> StreamError {
        match &*self.state.borrow() {
            SessionState::Closed(end) => StreamError::Closed(end.to_string()),
            _ => StreamError::Closed("it is ending".into()),
        }
    }

    pub fn stats(&self) -> SessionStats {
        self.counters.snapshot(self.state.borrow().clone())
    }

    /// Reads [`PortSession::stats`] from anywhere, for as long as anyone asks (a status
    /// display that must not hold the session itself).
    pub fn stats_reader(&self) -> impl Fn() -> SessionStats + Send + Sync + 'static {
        let (state, counters) = (self.state.clone(), self.counters.clone());
        move || counters.snapshot(state.borrow().clone())
    }

    /// Follows the session's state as it changes.
    pub fn state(&self) -> watch::Receiver<SessionState> {
        self.state.clone()
    }

    /// Ends the session: the TerminateSession flag, a short wait for its acknowledgement,
    /// then the TerminateSession API. Open streams end. An error means neither the flag
    /// nor the API call was confirmed, so the service may keep the session until it times out.
    pub async fn close(self) -> Result<(), SessionError> {
        self.shut_down().await?.into_result().map(drop)
    }

    /// Asks the driver to end the session and waits until it has.
    pub(crate) async fn shut_down(self) -> Result<DriverExit, SessionError> {
        let _ = self.commands.send(Command::Close).await;
        drop(self.commands);
        self.task.await.map_err(|error| {
            SessionError::Ended(SessionEnd::Failed {
                error: format!("the session driver failed: {error}"),
            })
        })
    }
}
