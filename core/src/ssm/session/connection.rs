//! One WebSocket connection of a session: the loop that moves frames, bytes and time between
//! the socket, the sans-IO state machines and the local streams (the sketch in `ssm/mod.rs`).
//!
//! It is a single hand-written `poll` so that reading, writing and timers share one task
//! without cancellation hazards: each turn registers the task's waker with the streams, reads
//! the frames that are ready, lets the data plane and the channel move bytes, takes commands,
//! writes what the socket accepts (acknowledgements at once, stream messages as the pacer
//! allows, a Ping every `ping_interval`), and sleeps until the earliest timer. The socket's
//! own readiness and the streams wake it for everything else.
//!
//! The connection ends when it is lost (an error, a Close frame — the service rotates
//! connections about hourly — or nothing heard for `liveness_timeout`), when the service ends
//! the session, or when our termination is confirmed or times out. Frames that arrived before
//! a loss are handled first, so a `channel_closed` just before the close is not mistaken for a
//! loss to resume from.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use super::api::{SessionApi, SessionToken};
use super::connect::DataChannelSocket;
use super::driver::{Command, Driver, Finish, Lost, Purpose};
use super::state::SessionEnd;
use crate::ssm::proto::{CloseReason, Event, OpenDataChannel, PortForwarding};

/// A connection that stayed up this long counts as working even if it carried nothing.
const PROVEN_AFTER: Duration = Duration::from_secs(10);
/// Frames read per turn before the rest of the loop gets a say.
const READ_BUDGET: usize = 64;
/// The Ping payload the plugin sends (spec §2).
const PING: &[u8] = b"keepalive";

/// Per-connection bookkeeping.
struct Link {
    connected_at: tokio::time::Instant,
    last_heard: tokio::time::Instant,
    next_ping: tokio::time::Instant,
    got_frame: bool,
    timer: Pin<Box<Sleep>>,
}

impl Link {
    fn lost(&self, now: tokio::time::Instant, error: impl Into<String>) -> Lost {
        Lost {
            proven: self.got_frame || now.duration_since(self.connected_at) >= PROVEN_AFTER,
            error: error.into(),
        }
    }
}

impl<A: SessionApi> Driver<A> {
    /// Authenticates the new connection with `token` and runs it.
    pub(super) async fn connected(
        &mut self,
        mut socket: DataChannelSocket,
        token: &SessionToken,
    ) -> Result<Finish, Lost> {
        let open = OpenDataChannel::new(token.expose_secret(), Uuid::new_v4(), self.client_id);
        if let Err(error) = socket.send(Message::text(open.to_text())).await {
            return Err(Lost {
                proven: false,
                error: format!("sending OpenDataChannel failed: {error}"),
            });
        }
        let start = tokio::time::Instant::now();
        let mut link = Link {
            connected_at: start,
            last_heard: start,
            next_ping: start,
            got_frame: false,
            timer: Box::pin(tokio::time::sleep_until(start)),
        };
        poll_fn(|cx| self.poll_connection(cx, &mut socket, &mut link)).await
    }

    fn poll_connection(
        &mut self,
        cx: &mut Context<'_>,
        socket: &mut DataChannelSocket,
        link: &mut Link,
    ) -> Poll<Result<Finish, Lost>> {
        loop {
            let tick = tokio::time::Instant::now();
            let now = tick.into_std();
            self.context.driver.register(cx.waker());

            let mut lost = None;
            for read in 1..=READ_BUDGET {
                if read == READ_BUDGET {
                    // More may be ready: come back after the rest of this turn.
                    cx.waker().wake_by_ref();
                }
                match socket.poll_next_unpin(cx) {
                    Poll::Pending => break,
                    Poll::Ready(Some(Ok(message))) => {
                        link.last_heard = tick;
                        match message {
                            Message::Binary(frame) => {
                                link.got_frame = true;
                                self.on_frame(&frame, now);
                            }
                            Message::Text(text) => self.on_frame(text.as_bytes(), now),
                            Message::Close(frame) => {
                                let why = frame.map_or_else(String::new, |f| {
                                    format!(" ({} {})", u16::from(f.code), f.reason)
                                });
                                lost = Some(format!("the service closed the connection{why}"));
                                break;
                            }
                            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                        }
                    }
                    Poll::Ready(Some(Err(error))) => {
                        lost = Some(error.to_string());
                        break;
                    }
                    Poll::Ready(None) => {
                        lost = Some("the connection was closed".to_owned());
                        break;
                    }
                }
            }

            self.poll_data_key(cx);
            // Local closes are seen before commands, so a basic-mode stream closed just
            // before the next one is asked for makes room for it.
            if let Some(finish) = self.pump(now) {
                return Poll::Ready(Ok(finish));
            }
            self.take_commands(cx, now);
            if let Some(finish) = self.pump(now) {
                return Poll::Ready(Ok(finish));
            }
            if let Some(finish) = self.termination_done(tick) {
                return Poll::Ready(Ok(finish));
            }
            // What arrived before the loss has been handled (it may have ended the session).
            if let Some(error) = lost {
                return Poll::Ready(Err(link.lost(tick, error)));
            }

            loop {
                match socket.poll_ready_unpin(cx) {
                    Poll::Pending => break,
                    Poll::Ready(Err(error)) => {
                        return Poll::Ready(Err(link.lost(tick, error.to_string())));
                    }
                    Poll::Ready(Ok(())) => {}
                }
                let message = if link.next_ping <= tick {
                    link.next_ping = tick + self.config.ping_interval;
                    Message::Ping(Bytes::from_static(PING))
                } else if let Some(frame) = self.next_frame(now) {
                    Message::Binary(frame)
                } else {
                    break;
                };
                if let Err(error) = socket.start_send_unpin(message) {
                    return Poll::Ready(Err(link.lost(tick, error.to_string())));
                }
            }
            if let Poll::Ready(Err(error)) = socket.poll_flush_unpin(cx) {
                return Poll::Ready(Err(link.lost(tick, error.to_string())));
            }

            let silent_until = link.last_heard + self.config.liveness_timeout;
            if silent_until <= tick {
                return Poll::Ready(Err(link.lost(
                    tick,
                    format!(
                        "nothing was received for {} s",
                        self.config.liveness_timeout.as_secs()
                    ),
                )));
            }
            // Timers that are due act now; the ping and the pacer, when due, wait for the
            // socket's readiness instead (which wakes us), so they only count when ahead.
            let mut deadline = silent_until;
            let mut later = |at: tokio::time::Instant| {
                if at > tick {
                    deadline = deadline.min(at);
                }
            };
            later(link.next_ping);
            if self.held.is_some() {
                later(tokio::time::Instant::from_std(self.pacer.ready_at(now)));
            }
            let machine_timeouts = [
                self.channel.poll_timeout(),
                self.plane.as_ref().and_then(|p| p.poll_timeout()),
            ];
            for at in machine_timeouts.into_iter().flatten() {
                deadline = deadline.min(tokio::time::Instant::from_std(at));
            }
            if let Some(terminating) = &self.terminating {
                deadline = deadline.min(terminating.deadline);
            }
            if link.timer.deadline() != deadline || link.timer.is_elapsed() {
                link.timer.as_mut().reset(deadline);
            }
            match link.timer.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) => {
                    let now = super::driver::now();
                    self.channel.handle_timeout(now);
                    if let Some(plane) = &mut self.plane {
                        plane.handle_timeout(now);
                    }
                }
            }
        }
    }

    /// The service ended the session (`channel_closed`) and the connection is gone, but
    /// output before the close may still be waiting for a local stream (perhaps one still to
    /// be opened) to read it. Delivers it for up to `terminate_wait`, then drops the rest;
    /// returns how the session ended.
    pub(super) async fn drain(&mut self) -> Finish {
        let deadline = tokio::time::Instant::now() + self.config.terminate_wait;
        let delivered = tokio::time::timeout_at(
            deadline,
            poll_fn(|cx| {
                self.context.driver.register(cx.waker());
                let now = super::driver::now();
                if let Some(finish) = self.pump(now) {
                    return Poll::Ready(finish);
                }
                self.take_commands(cx, now);
                if let Some(finish) = self.pump(now) {
                    return Poll::Ready(finish);
                }
                match self.terminating.take() {
                    // Nothing to send a flag on, and nothing to wait for: it is over.
                    Some(terminating) => Poll::Ready(Finish::Terminated {
                        end: terminating.end,
                        confirmed: true,
                    }),
                    None => Poll::Pending,
                }
            }),
        )
        .await;
        if let Ok(finish) = delivered {
            return finish;
        }
        while let Some(event) = self.channel.poll_event() {
            if let Event::Closed(reason) = event {
                return match self.terminating.take() {
                    Some(terminating) => Finish::Terminated {
                        end: terminating.end,
                        confirmed: true,
                    },
                    None => Finish::Ended(self.end_for(reason)),
                };
            }
        }
        unreachable!("a closed channel always queues its Closed event")
    }

    fn take_commands(&mut self, cx: &mut Context<'_>, now: Instant) {
        while self.commands_open {
            match self.commands.poll_recv(cx) {
                Poll::Pending => break,
                Poll::Ready(Some(Command::OpenStream(reply))) => self.open_stream(reply),
                Poll::Ready(Some(Command::Resize(size))) => self.resize(size),
                Poll::Ready(Some(Command::Close)) => {
                    self.begin_terminate(SessionEnd::Terminated, now);
                }
                Poll::Ready(None) => {
                    self.commands_open = false;
                    self.begin_terminate(SessionEnd::Terminated, now);
                }
            }
        }
    }

    /// Hands a finished `kms:GenerateDataKey` to the channel, which answers the handshake.
    fn poll_data_key(&mut self, cx: &mut Context<'_>) {
        let Some(call) = &mut self.data_key else {
            return;
        };
        let Poll::Ready(joined) = Pin::new(call).poll(cx) else {
            return;
        };
        self.data_key = None;
        let result = match joined {
            Ok(result) => result.map_err(|error| error.to_string()),
            Err(error) => Err(format!("the KMS call did not finish: {error}")),
        };
        if let Err(reason) = &result {
            tracing::warn!(session_id = %self.session_id, %reason, "no KMS data key");
        }
        self.channel.provide_data_key(result);
    }

    fn on_frame(&mut self, frame: &[u8], now: Instant) {
        if let Err(error) = self.channel.handle_incoming(frame, now) {
            tracing::debug!(%error, "ignoring a frame");
        }
        if let Some(rtt) = self.channel.round_trip_time() {
            self.context.counters.set_rtt(rtt);
        }
    }

    /// Moves bytes and events until nothing more can move. `Some` when the session is over.
    fn pump(&mut self, now: Instant) -> Option<Finish> {
        loop {
            let mut progress = false;
            if let Some(plane) = &mut self.plane {
                progress |= plane.move_local(&mut self.channel);
                progress |= plane.deliver_pending();
                let failure = plane.take_failure();
                let input_done = plane.local_finished() && self.channel.unacknowledged() == 0;
                if let Some(error) = failure {
                    self.begin_terminate(SessionEnd::Failed { error }, now);
                } else if input_done {
                    self.begin_terminate(SessionEnd::Terminated, now);
                }
            }
            if let Some(plane) = &mut self.plane
                && plane.can_accept_output()
                && let Some(notice) = self.notice.take()
            {
                plane.deliver_output(notice);
                progress = true;
            }
            while self.plane.as_ref().is_none_or(|p| p.can_accept_output()) {
                let Some(event) = self.channel.poll_event() else {
                    break;
                };
                progress = true;
                if let Some(finish) = self.on_event(event, now) {
                    return Some(finish);
                }
            }
            if !progress {
                return None;
            }
        }
    }

    fn on_event(&mut self, event: Event, now: Instant) -> Option<Finish> {
        match event {
            Event::HandshakeComplete(handshake) => {
                if !handshake.customer_message.is_empty() {
                    tracing::info!(message = %handshake.customer_message, "message from the SSM agent");
                }
                match handshake.port_forwarding() {
                    Some(mode) => self.on_open(mode, now),
                    // A shell's handshake (KMS) names no port data plane. Its message ("This
                    // session is encrypted using AWS KMS.") is for the user at the terminal,
                    // ahead of the shell's output, as the plugin prints it.
                    None if self.purpose == Purpose::Shell => {
                        self.on_open(PortForwarding::Stream, now);
                        if !handshake.customer_message.is_empty() {
                            let notice = format!("{}\r\n", handshake.customer_message);
                            self.notice = Some(Bytes::from(notice));
                        }
                    }
                    None => self.begin_terminate(
                        SessionEnd::Failed {
                            error: "the agent started a shell session, not port forwarding".into(),
                        },
                        now,
                    ),
                }
            }
            Event::HandshakeRefused { reasons } => self.refusals.extend(reasons),
            Event::DataKeyNeeded(request) => {
                tracing::info!(session_id = %self.session_id, key_id = %request.key_id, "the session is KMS-encrypted; generating a data key");
                let api = self.api.clone();
                let context = request.encryption_context(&self.session_id, &self.target);
                self.data_key = Some(tokio::spawn(async move {
                    api.generate_data_key(&request.key_id, &context).await
                }));
                // Another turn, whose `poll_data_key` registers for the call's completion.
                self.context.driver.wake();
            }
            Event::NoHandshake if self.purpose == Purpose::Shell => {
                self.on_open(PortForwarding::Stream, now);
            }
            Event::NoHandshake => self.begin_terminate(
                SessionEnd::Failed {
                    error: "the agent started a shell session, not port forwarding".into(),
                },
                now,
            ),
            Event::Output(data) => match &mut self.plane {
                Some(plane) => plane.deliver_output(data),
                None => tracing::debug!("dropping output that arrived before the session opened"),
            },
            Event::StdErr(_) | Event::ExitCode(_) => {
                tracing::debug!("ignoring command output in a port session");
            }
            Event::ConnectToPortError => {
                if let Some(plane) = &mut self.plane {
                    plane.connect_to_port_failed();
                }
            }
            Event::Closed(reason) => {
                if let Some(terminating) = self.terminating.take() {
                    return Some(Finish::Terminated {
                        end: terminating.end,
                        confirmed: true,
                    });
                }
                return Some(Finish::Ended(self.end_for(reason)));
            }
        }
        None
    }

    fn end_for(&self, reason: CloseReason) -> SessionEnd {
        if !self.refusals.is_empty() {
            return SessionEnd::Failed {
                error: format!(
                    "the SSM agent refused the session: {}",
                    self.refusals.join("; ")
                ),
            };
        }
        match reason {
            CloseReason::ChannelClosed { output, .. } => {
                SessionEnd::ClosedByService { reason: output }
            }
            CloseReason::Unacknowledged { sequence_number } => SessionEnd::Failed {
                error: format!(
                    "the agent stopped acknowledging data (message {sequence_number} went \
                     unacknowledged for {} s)",
                    self.config.channel.ack_timeout.as_secs()
                ),
            },
            CloseReason::ProtocolViolation(error) => SessionEnd::Failed { error },
        }
    }

    /// `Some` once a termination under way is confirmed or has waited long enough.
    fn termination_done(&mut self, tick: tokio::time::Instant) -> Option<Finish> {
        let terminating = self.terminating.as_ref()?;
        let acknowledged = terminating.flag_sent && self.channel.unacknowledged() == 0;
        if !acknowledged && tick < terminating.deadline {
            return None;
        }
        let terminating = self.terminating.take()?;
        Some(Finish::Terminated {
            end: terminating.end,
            confirmed: acknowledged,
        })
    }

    /// The next frame to write: acknowledgements whenever, stream messages when the pacer
    /// allows (one waits in `held` meanwhile).
    fn next_frame(&mut self, now: Instant) -> Option<Bytes> {
        let frame = match self.held.take() {
            Some(frame) => frame,
            None => {
                let frame = self.channel.poll_transmit(now)?;
                if !is_stream_message(&frame) {
                    return Some(frame);
                }
                frame
            }
        };
        if self.pacer.try_acquire(now) {
            Some(frame)
        } else {
            self.held = Some(frame);
            None
        }
    }
}

/// Whether an outgoing frame is a sequenced stream message (`input_stream_data`; the
/// MessageType field is bytes 4..36, spec §3) rather than an acknowledgement.
fn is_stream_message(frame: &[u8]) -> bool {
    frame
        .get(4..36)
        .is_some_and(|message_type| message_type.starts_with(b"input_stream_data"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssm::proto::{ChannelConfig, DataChannel};

    #[test]
    fn only_sequenced_stream_messages_are_paced() {
        let mut agent = crate::ssm::proto::test_agent::TestAgent::shell(Duration::from_secs(1));
        agent.send_output(b"hello");
        let now = Instant::now();
        let mut channel = DataChannel::new(ChannelConfig::default(), now, 1);
        let frame = agent.poll_transmit(now).unwrap();
        channel.handle_incoming(&frame, now).unwrap();
        while channel.poll_event().is_some() {}
        let ack = channel.poll_transmit(now).unwrap();
        assert!(!is_stream_message(&ack));
        channel.send_data(b"typed").unwrap();
        let data = channel.poll_transmit(now).unwrap();
        assert!(is_stream_message(&data));
        assert!(!is_stream_message(b"short"));
    }
}
