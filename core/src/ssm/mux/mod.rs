//! Mux port forwarding: an xtaci/smux **protocol v1** client (spec §7.3), sans IO.
//!
//! In mux mode the data channel is just a reliable, ordered byte pipe; the agent runs an
//! smux 1.5.x server on its end and dials the destination once per stream. Each local TCP
//! connection becomes one stream: [`MuxClient::open_stream`] (SYN), [`MuxClient::write`] (PSH
//! frames of at most 32 KiB), [`MuxClient::close`] (FIN — a full close, v1 has no half-close).
//! Frame boundaries and data-channel message boundaries are unrelated: input may be split
//! anywhere, and output is handed out in whatever sizes the channel can take.
//!
//! ## Why not an existing crate
//! `async_smux` 0.4 and `smux` 0.2 interoperate with Go smux, but both are async and own the
//! transport (they want an `AsyncRead + AsyncWrite` and spawn or poll their own tasks). Here the
//! transport is our own [`DataChannel`](crate::ssm::proto::channel::DataChannel), itself a state
//! machine, and the whole stack must be drivable with a fake clock in plain unit tests. smux v1
//! is four commands and an 8-byte header, so a small state machine is simpler than adapting an
//! async one through in-memory pipes.
//!
//! ## Backpressure without per-stream windows
//! v1 has no flow control of its own (UPD is v2), so memory is bounded the way smux bounds it,
//! session-wide:
//! - **Receiving.** Stream data handed out as [`MuxEvent::StreamData`] but not yet taken counts
//!   against [`MuxConfig::max_receive_buffer`]. At the limit, input is no longer parsed;
//!   unparsed input is held only up to one maximal frame (8 + 65535 bytes), after which
//!   [`MuxClient::handle_input`] takes fewer bytes than offered. The driver then stops taking
//!   data-channel events, whose receive buffer fills, so the channel stops acknowledging and the
//!   agent — which has no window either — keeps retransmitting instead of getting ahead. The
//!   overshoot is at most one frame, as in smux. As in smux, one slow stream stalls all
//!   streams: a driver should keep reading its local sockets' data into bounded per-connection
//!   queues and stop taking mux events only when one of them is full.
//! - **Sending.** Queued output counts against [`MuxConfig::max_send_buffer`]; `write` takes
//!   only what fits and returns [`WriteError::Full`] when nothing does, so the driver stops
//!   reading that local socket. `poll_output(max)` lets the driver move exactly what the data
//!   channel's `send_capacity()` allows.
//!
//! ## Keepalive
//! Agents up to 3.1.1511.0 run smux keepalive (NOP every 10 s, session closed after 30 s
//! without any frame); newer ones, given our client version, run none — and then neither must
//! we, because NOPs count as activity and would defeat the service's idle timeout.
//! [`MuxConfig::for_agent`] takes that decision from
//! [`PortForwarding::Mux`](crate::ssm::proto::mode::PortForwarding::Mux).

mod client;
mod frame;

#[cfg(test)]
mod chunked_link_tests;
#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
pub(crate) mod test_server;

pub use client::{
    Keepalive, MuxClient, MuxCloseReason, MuxConfig, MuxEvent, OpenError, StreamId, WriteError,
};
pub use frame::FrameError;
