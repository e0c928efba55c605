//! Native AWS Systems Manager Session Manager sessions: what the `session-manager-plugin` does,
//! without the plugin (protocol spec: `shared/protocols/ssm.md`).
//!
//! ## Layering
//! Each layer is a deterministic state machine in the quinn-proto style — bytes and instants in,
//! bytes, timers and events out; no sockets, no clock reads, no async — so that every
//! retransmission, reorder, backpressure and resume path is a plain unit test with a fake clock.
//!
//! 1. [`proto`] — the data channel. [`proto::message::AgentMessage`] is the binary envelope;
//!    [`proto::payload`], [`proto::handshake`] and [`proto::open`] are the JSON inside it and
//!    the first text frame; [`proto::channel::DataChannel`] is the reliable channel: sequence
//!    numbers, acknowledgements, retransmission, reordering, the handshake, flow control and
//!    resume. [`proto::mode::PortForwarding`] says which data plane a port session runs.
//! 2. [`mux`] — [`mux::MuxClient`], an smux v1 client that multiplexes local TCP connections
//!    over the channel's byte stream in mux port forwarding.
//! 3. [`session`] — the driver, the thin async part: StartSession/ResumeSession/
//!    TerminateSession behind [`session::SessionApi`], the WebSocket, pacing and pings, resume,
//!    and local streams ([`session::PortSession`], [`session::run_stdio`]). The sketch below
//!    is what `session::connection` does.
//! 4. [`kms`] — `kms:GenerateDataKey` for shells that the account's Session Manager
//!    preferences encrypt; the channel asks for the data key ([`proto::Event::DataKeyNeeded`])
//!    and encrypts with it ([`proto::encryption`]).
//!
//! ## Driving a session (sketch)
//! ```text
//! ws.send_text(OpenDataChannel::new(token, request_id, client_id).to_text())
//! loop {
//!     frame from ws      -> channel.handle_incoming(&frame, now)
//!     timer fired        -> channel.handle_timeout(now); mux.handle_timeout(now)
//!     channel.poll_event -> HandshakeComplete(h): h.port_forwarding() picks the data plane
//!                           Output(bytes): shell -> stdout; mux -> mux.handle_input(&bytes)
//!                           Closed(reason): tell the user, stop
//!     mux.poll_event     -> StreamData{id, data}: write to that TCP connection
//!     local TCP data     -> mux.write(id, &data)         (or channel.send_data for shells)
//!     mux.poll_output(channel.send_capacity()) -> channel.send_data(&bytes)
//!     channel.poll_transmit(now) -> ws.send_binary(frame)
//!     sleep until min(channel.poll_timeout(), mux.poll_timeout())
//!     ws lost -> ResumeSession, reconnect, send OpenDataChannel, channel.reconnected(now)
//! }
//! ```
//! Backpressure flows the whole way: a full local socket stops `poll_event` on the mux, a
//! full mux stops taking channel output, the channel then stops acknowledging the agent; in the
//! other direction `send_data` and `write` refuse what does not fit.

pub mod kms;
pub mod mux;
pub mod proto;
pub mod session;
