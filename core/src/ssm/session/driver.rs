//! The session driver: one tokio task per session that owns the data channel and keeps it
//! connected (spec §2, §8.3).
//!
//! Its life: connect the WebSocket with the StartSession token; run the connection (see
//! `connection`) until it is lost, the session ends, or we end it; after a loss, ask
//! ResumeSession for a fresh token and reconnect to the *same* StreamUrl, keeping all sequence
//! state, with capped exponential backoff for as long as [`ResumePolicy`] allows and the
//! service keeps handing out tokens. Commands from the handle (open a stream, close) are
//! served in every phase, including while disconnected.
//!
//! Ending: what we end (close, the handle dropped, a failure we detect) gets the in-band
//! TerminateSession flag and, after its acknowledgement or a short wait, the TerminateSession
//! API; what the service ends (`channel_closed`, no token on resume) needs neither.
//!
//! [`ResumePolicy`]: super::ResumePolicy

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::api::{ApiError, SessionApi, SessionToken, StartedSession};
use super::backoff::Backoff;
use super::config::SessionConfig;
use super::error::SessionError;
use super::pacer::Pacer;
use super::plane::{DataPlane, PlaneContext, StreamError};
use super::state::{Counters, SessionEnd, SessionState};
use super::stream::{SessionStream, StreamEnd};
use super::url::StreamUrl;
use crate::ssm::proto::{ClientFlag, DataChannel, PortForwarding, TerminalSize};

/// How long the TerminateSession API call may take before we stop waiting for it.
const TERMINATE_API_TIMEOUT: Duration = Duration::from_secs(10);

/// What the handle asks of the driver.
pub(crate) enum Command {
    OpenStream(oneshot::Sender<Result<SessionStream, StreamError>>),
    /// A shell's terminal changed size.
    Resize(TerminalSize),
    Close,
}

/// What the session is for, which decides the data planes it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Local TCP connections: mux or basic port forwarding.
    PortForwarding,
    /// One byte stream (stdin/stdout): any port data plane.
    Stdio,
    /// An interactive shell (`Standard_Stream`): one byte stream, opened by the agent's first
    /// output since shells have no handshake (spec §7.6).
    Shell,
}

impl Purpose {
    fn accepts(self, mode: PortForwarding) -> bool {
        match self {
            Purpose::PortForwarding => !matches!(mode, PortForwarding::Stream),
            Purpose::Stdio => true,
            Purpose::Shell => matches!(mode, PortForwarding::Stream),
        }
    }
}

/// How the driver ended, for [`close`](super::PortSession::close).
#[derive(Debug)]
pub(crate) struct DriverExit {
    pub(crate) end: SessionEnd,
    /// For sessions we ended: whether the service confirmed the TerminateSession flag.
    pub(crate) confirmed: bool,
    /// The TerminateSession API call's outcome, when one was made.
    pub(crate) terminate_api: Option<Result<(), ApiError>>,
}

impl DriverExit {
    /// How the session ended, unless we ended it and could confirm that neither in-band nor
    /// through the API.
    pub(crate) fn into_result(self) -> Result<SessionEnd, SessionError> {
        match (self.end, self.terminate_api) {
            (SessionEnd::Terminated, Some(Err(error))) if !self.confirmed => {
                Err(SessionError::NotTerminated(error))
            }
            (end, _) => Ok(end),
        }
    }
}

/// How the run of connections ended.
#[derive(Debug)]
pub(crate) enum Finish {
    /// The service ended the session, or it failed without our asking.
    Ended(SessionEnd),
    /// We ended it; `confirmed` if the flag was acknowledged or the channel closed.
    Terminated { end: SessionEnd, confirmed: bool },
}

/// A termination under way.
#[derive(Debug)]
pub(crate) struct Terminating {
    pub(crate) deadline: tokio::time::Instant,
    pub(crate) end: SessionEnd,
    pub(crate) flag_sent: bool,
}

/// The handle side of a spawned driver.
pub(crate) struct Spawned {
    pub(crate) session_id: String,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) state: watch::Receiver<SessionState>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) opened: oneshot::Receiver<Result<PortForwarding, SessionError>>,
    pub(crate) task: tokio::task::JoinHandle<DriverExit>,
}

pub(crate) struct Driver<A> {
    pub(super) api: Arc<A>,
    pub(super) session_id: String,
    pub(super) target: String,
    pub(super) url: StreamUrl,
    pub(super) client_id: Uuid,
    pub(super) purpose: Purpose,
    pub(super) config: SessionConfig,
    pub(super) channel: DataChannel,
    pub(super) plane: Option<DataPlane>,
    pub(super) context: PlaneContext,
    pub(super) pacer: Pacer,
    /// A stream message waiting for the pacer.
    pub(super) held: Option<Bytes>,
    pub(super) commands: mpsc::Receiver<Command>,
    pub(super) commands_open: bool,
    pub(super) state: watch::Sender<SessionState>,
    pub(super) opened: Option<oneshot::Sender<Result<PortForwarding, SessionError>>>,
    pub(super) refusals: Vec<String>,
    pub(super) terminating: Option<Terminating>,
    /// `kms:GenerateDataKey` under way for a KMS-encrypted shell's handshake.
    pub(super) data_key: Option<DataKeyCall>,
    /// A shell handshake's message for the terminal, shown before the shell's output.
    pub(super) notice: Option<Bytes>,
}

/// A data key being fetched; its result goes to `DataChannel::provide_data_key`.
pub(crate) type DataKeyCall =
    tokio::task::JoinHandle<Result<crate::ssm::proto::DataKey, crate::ssm::kms::KmsError>>;

/// Spawns the driver for a started session.
pub(crate) fn spawn<A: SessionApi>(
    api: Arc<A>,
    target: &str,
    started: StartedSession,
    purpose: Purpose,
    config: SessionConfig,
) -> Spawned {
    let (command_tx, commands) = mpsc::channel(16);
    let (state_tx, state) = watch::channel(SessionState::Connecting);
    let (opened_tx, opened) = oneshot::channel();
    let counters = Arc::new(Counters::default());
    let now = tokio::time::Instant::now().into_std();
    let unix_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let driver = Driver {
        api,
        session_id: started.session_id.clone(),
        target: target.to_owned(),
        url: started.stream_url,
        client_id: Uuid::new_v4(),
        purpose,
        channel: DataChannel::new(config.channel.clone(), now, unix_ms),
        plane: None,
        context: PlaneContext {
            stream_buffer: config.stream_buffer,
            driver: Arc::new(AtomicWaker::new()),
            counters: counters.clone(),
        },
        pacer: Pacer::new(config.max_messages_per_second),
        held: None,
        commands,
        commands_open: true,
        state: state_tx,
        opened: Some(opened_tx),
        refusals: Vec::new(),
        terminating: None,
        data_key: None,
        notice: None,
        config,
    };
    tracing::debug!(session_id = %started.session_id, url = ?driver.url, "starting the data channel");
    let task = tokio::spawn(driver.run(started.token));
    Spawned {
        session_id: started.session_id,
        commands: command_tx,
        state,
        counters,
        opened,
        task,
    }
}

/// A loss of the connection that may be resumed.
pub(crate) struct Lost {
    /// The connection worked (it carried a frame, or stayed up a while): start a new backoff.
    pub(crate) proven: bool,
    pub(crate) error: String,
}

impl<A: SessionApi> Driver<A> {
    async fn run(mut self, token: SessionToken) -> DriverExit {
        let (end, confirmed) = match self.run_connections(token).await {
            Finish::Ended(end) => (end, false),
            Finish::Terminated { end, confirmed } => (end, confirmed),
        };
        let stream_end = match &end {
            SessionEnd::Terminated | SessionEnd::ClosedByService { .. } => StreamEnd::Eof,
            other => StreamEnd::Failed {
                kind: std::io::ErrorKind::ConnectionAborted,
                message: other.to_string(),
            },
        };
        if let Some(plane) = &mut self.plane {
            plane.finish_all(&stream_end);
        }
        if let Some(opened) = self.opened.take() {
            let error = if self.refusals.is_empty() {
                SessionError::Ended(end.clone())
            } else {
                SessionError::HandshakeRefused {
                    target: self.target.clone(),
                    reasons: std::mem::take(&mut self.refusals),
                }
            };
            let _ = opened.send(Err(error));
        }
        let service_ended = matches!(
            end,
            SessionEnd::ClosedByService { .. } | SessionEnd::TimedOut
        );
        let terminate_api = if service_ended {
            None
        } else {
            Some(self.terminate_api().await)
        };
        tracing::info!(session_id = %self.session_id, %end, "session over");
        self.state.send_replace(SessionState::Closed(end.clone()));
        DriverExit {
            end,
            confirmed,
            terminate_api,
        }
    }

    async fn terminate_api(&self) -> Result<(), ApiError> {
        let call = self.api.terminate_session(&self.session_id);
        let result = tokio::time::timeout(TERMINATE_API_TIMEOUT, call)
            .await
            .unwrap_or_else(|_| {
                Err(ApiError::Unreachable {
                    action: "TerminateSession",
                    detail: format!("no answer within {} s", TERMINATE_API_TIMEOUT.as_secs()),
                })
            });
        if let Err(error) = &result {
            tracing::warn!(session_id = %self.session_id, %error, "TerminateSession failed");
        }
        result
    }

    /// Connects, runs, and resumes until the session is over.
    async fn run_connections(&mut self, first: SessionToken) -> Finish {
        let mut token = Some(first);
        let mut backoff = Backoff::new(self.config.resume, now());
        let mut connected_before = false;
        loop {
            let token = match token.take() {
                Some(token) => token,
                None => match self.resume(&mut backoff).await {
                    Ok(token) => token,
                    Err(finish) => return finish,
                },
            };
            let connector = self.config.connector.clone();
            let url = self.url.clone();
            let socket = match self
                .interruptible(async move { connector.connect(&url).await })
                .await
            {
                None => return self.finish_disconnected(),
                Some(Ok(socket)) => socket,
                Some(Err(error)) => {
                    tracing::info!(session_id = %self.session_id, %error, "data channel connect failed");
                    let text = error.to_string();
                    if !error.is_retryable() {
                        self.fail_opening(SessionError::Connect(error));
                        return Finish::Ended(SessionEnd::Failed { error: text });
                    }
                    if let Err(finish) = self.pause(&mut backoff, text).await {
                        return finish;
                    }
                    continue;
                }
            };
            self.held = None;
            if connected_before {
                self.channel.reconnected(now());
                self.context
                    .counters
                    .resumes
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(session_id = %self.session_id, "data channel resumed");
            }
            connected_before = true;
            self.publish_progress();
            match self.connected(socket, &token).await {
                Ok(finish) => return finish,
                Err(_) if self.channel.is_closed() => return self.drain().await,
                Err(lost) => {
                    tracing::info!(session_id = %self.session_id, error = %lost.error, "data channel lost");
                    if let Some(terminating) = self.terminating.take() {
                        return Finish::Terminated {
                            end: terminating.end,
                            confirmed: false,
                        };
                    }
                    if lost.proven {
                        backoff = Backoff::new(self.config.resume, now());
                    } else if let Err(finish) = self.pause(&mut backoff, lost.error).await {
                        return finish;
                    }
                }
            }
        }
    }

    /// Asks ResumeSession for a token, retrying transient failures.
    async fn resume(&mut self, backoff: &mut Backoff) -> Result<SessionToken, Finish> {
        loop {
            let attempt = backoff.failures() + 1;
            self.state.send_replace(SessionState::Resuming { attempt });
            let api = self.api.clone();
            let session_id = self.session_id.clone();
            let call = async move { api.resume_session(&session_id).await };
            match self.interruptible(call).await {
                None => return Err(self.finish_disconnected()),
                Some(Ok(Some(token))) => return Ok(token),
                Some(Ok(None) | Err(ApiError::SessionNotFound { .. })) => {
                    return Err(Finish::Ended(SessionEnd::TimedOut));
                }
                Some(Err(error)) if error.is_retryable() => {
                    tracing::info!(session_id = %self.session_id, %error, "ResumeSession failed");
                    self.pause(backoff, error.to_string()).await?;
                }
                Some(Err(error)) => {
                    let text = error.to_string();
                    self.fail_opening(SessionError::Api(error));
                    return Err(Finish::Ended(SessionEnd::ResumeFailed { error: text }));
                }
            }
        }
    }

    /// Waits before the next attempt, or gives up with `error` when the budget is spent.
    async fn pause(&mut self, backoff: &mut Backoff, error: String) -> Result<(), Finish> {
        let Some(delay) = backoff.next_delay(now()) else {
            return Err(Finish::Ended(SessionEnd::ResumeFailed { error }));
        };
        match self.interruptible(tokio::time::sleep(delay)).await {
            Some(()) => Ok(()),
            None => Err(self.finish_disconnected()),
        }
    }

    /// Runs `work` while serving commands. `None` if the session is to end (a close, or the
    /// handle is gone) before `work` finished.
    async fn interruptible<T>(&mut self, work: impl Future<Output = T>) -> Option<T> {
        let mut work = std::pin::pin!(work);
        loop {
            if !self.commands_open || self.terminating.is_some() {
                return None;
            }
            tokio::select! {
                output = &mut work => return Some(output),
                command = self.commands.recv() => match command {
                    Some(Command::OpenStream(reply)) => self.open_stream(reply),
                    Some(Command::Resize(size)) => self.resize(size),
                    Some(Command::Close) => self.request_close(now()),
                    None => {
                        self.commands_open = false;
                        self.request_close(now());
                    }
                },
            }
        }
    }

    /// A close that arrived while no connection could carry the flag.
    fn finish_disconnected(&mut self) -> Finish {
        Finish::Terminated {
            end: self
                .terminating
                .take()
                .map_or(SessionEnd::Terminated, |t| t.end),
            confirmed: false,
        }
    }

    pub(super) fn open_stream(
        &mut self,
        reply: oneshot::Sender<Result<SessionStream, StreamError>>,
    ) {
        let result = match (&mut self.plane, &self.terminating) {
            (_, Some(_)) => Err(StreamError::Closed("it is being closed".into())),
            (Some(plane), None) => plane.open_stream(),
            (None, None) => Err(StreamError::Closed("it has not opened yet".into())),
        };
        let _ = reply.send(result);
    }

    /// Starts ending the session ourselves with `end` as the reason: the TerminateSession flag
    /// now, the API once it is acknowledged or `terminate_wait` has passed.
    pub(super) fn begin_terminate(&mut self, end: SessionEnd, now: Instant) {
        if self.terminating.is_some() {
            return;
        }
        let supported = self
            .plane
            .as_ref()
            .is_none_or(DataPlane::terminate_flag_supported);
        let flag_sent = supported && self.channel.send_flag(ClientFlag::TerminateSession).is_ok();
        let wait = if flag_sent {
            self.config.terminate_wait
        } else {
            Duration::ZERO
        };
        tracing::debug!(session_id = %self.session_id, flag_sent, "terminating the session");
        self.terminating = Some(Terminating {
            deadline: tokio::time::Instant::from_std(now) + wait,
            end,
            flag_sent,
        });
    }

    /// Queues a terminal size message; it is sequenced like data, so it survives a resume.
    pub(super) fn resize(&mut self, size: TerminalSize) {
        if let Err(error) = self.channel.send_terminal_size(size) {
            tracing::debug!(%error, "the terminal size could not be sent");
        }
    }

    fn request_close(&mut self, now: Instant) {
        self.begin_terminate(SessionEnd::Terminated, now);
    }

    /// Reports an error to a `start` still waiting for the session to open.
    pub(super) fn fail_opening(&mut self, error: SessionError) {
        if let Some(opened) = self.opened.take() {
            let _ = opened.send(Err(error));
        }
    }

    /// The handshake decided the data plane.
    pub(super) fn on_open(&mut self, mode: PortForwarding, now: Instant) {
        if !self.purpose.accepts(mode) {
            let error = format!(
                "the agent opened a {mode:?} session, which cannot carry local TCP connections"
            );
            self.begin_terminate(SessionEnd::Failed { error }, now);
            return;
        }
        tracing::debug!(session_id = %self.session_id, ?mode, "session open");
        self.plane = Some(DataPlane::new(mode, self.context.clone(), now));
        self.state.send_replace(SessionState::Open);
        if let Some(opened) = self.opened.take() {
            let _ = opened.send(Ok(mode));
        }
    }

    fn publish_progress(&self) {
        let state = if self.plane.is_some() {
            SessionState::Open
        } else {
            SessionState::Connecting
        };
        self.state.send_replace(state);
    }
}

/// The driver's notion of now: tokio's clock (so tests can pause it) as a std `Instant`.
pub(super) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
