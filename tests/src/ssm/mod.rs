//! AWS Systems Manager Session Manager: the control plane (`api`, `describe`) and the data
//! channel endpoint with the SSM Agent behind it (`data_channel`, `agent`), specified by
//! `shared/protocols/ssm.md` (section numbers in the docs below refer to it).
//!
//! A client calls StartSession (JSON 1.1 over the control-plane port, SigV4 service `ssm`) and
//! gets a session id, a token and a StreamUrl on the simulator's data-channel port
//! (`wss://127.0.0.1:PORT/v1/data-channel/<id>?…`, same CA as everything else). It opens the
//! WebSocket, authenticates with the token in its first text frame, and then talks to the
//! session's agent: handshake, sequenced and acknowledged messages, smux or basic port
//! forwarding to the instance's backends (`sshd`, `echo`, `tcp:…`), or a shell on a
//! pseudo-terminal. When the WebSocket drops, the session lives on; ResumeSession gives a new
//! token and the client continues where it was.
//!
//! ## An independent oracle
//! Everything here is written from the spec, not from the product: the message codec
//! (`wire`), sequencing, acknowledgements and retransmission (`channel`), the handshake and
//! the agent's version rules (`handshake`), the smux v1 server (`smux`, `agent`) and basic
//! mode. The product's `bastionless_core::ssm` is used only by the tests, as the client under
//! test. So a passing test means two implementations of the spec agree, not that one agrees
//! with itself; where the spec pins bytes (its §3.1 test vectors) both are held to them.
//!
//! Files, one idea each: `api` (operations, validation, errors), `describe`
//! (`DescribeInstanceInformation`), `documents` (session documents and parameters),
//! `sessions` (the session registry and tokens), `data_channel` (the WebSocket endpoint),
//! `agent` (one session's agent: lifecycle, plugins), `channel` (reliability, sans I/O),
//! `handshake`, `smux`, `wire`, `target` (what the agent connects to), `shell` (the pty).

mod agent;
pub mod api;
mod channel;
pub mod data_channel;
mod describe;
mod documents;
mod handshake;
pub mod link_faults;
mod sessions;
mod shell;
mod smux;
mod target;
mod wire;

pub use sessions::{Preferences, SessionManager, SessionState};
