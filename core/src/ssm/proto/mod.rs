//! The SSM data-channel protocol, sans IO: the binary message codec, the JSON payloads, and the
//! reliable channel state machine built on them.
//!
//! Files, one idea each: [`message`] (the binary envelope), [`payload`] (acknowledgements,
//! `channel_closed`, flags, sizes), [`handshake`], [`encryption`] (KMS session encryption),
//! [`open`] (the first text frame), [`mode`] (which port-forwarding data plane to run), and
//! [`channel`] (the state machine) with [`event`] (what it reports) and its private parts
//! `send` (outgoing queue), `reorder` (incoming order) and `rto` (timeouts).

pub mod channel;
pub mod encryption;
pub mod event;
pub mod handshake;
pub mod message;
pub mod mode;
pub mod open;
pub mod payload;
mod reorder;
mod rto;
mod send;

pub use channel::{ChannelConfig, DataChannel, SendError};
pub use encryption::{DataKey, KmsEncryptionRequest};
pub use event::{CloseReason, Event, Handshake};
pub use handshake::{CLIENT_VERSION, SessionType};
pub use message::{AgentMessage, DecodeError};
pub use mode::PortForwarding;
pub use open::OpenDataChannel;
pub use payload::{ClientFlag, TerminalSize};

#[cfg(test)]
mod channel_tests;
#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod lossy_link_tests;
#[cfg(test)]
pub(crate) mod test_agent;
