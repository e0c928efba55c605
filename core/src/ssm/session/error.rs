//! Why a session could not be started or run, as one error a user can act on.

use std::io;
use std::time::Duration;

use super::api::ApiError;
use super::connect::ConnectError;
use super::state::SessionEnd;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// StartSession, ResumeSession or TerminateSession failed.
    #[error(transparent)]
    Api(#[from] ApiError),

    /// The data channel's WebSocket could not be opened, for a reason retrying won't fix.
    #[error(transparent)]
    Connect(#[from] ConnectError),

    /// The agent asked for something this client does not do (e.g. KMS encryption).
    #[error("the SSM agent on {target} refused the session: {}", reasons.join("; "))]
    HandshakeRefused {
        target: String,
        reasons: Vec<String>,
    },

    /// The session did not open in time; `waiting_for` says what was still missing.
    #[error(
        "the session to {target} did not open within {} s ({waiting_for}); check that the SSM \
         agent is running and can reach ssmmessages, and your network or proxy",
        after.as_secs()
    )]
    OpenTimeout {
        target: String,
        after: Duration,
        waiting_for: String,
    },

    /// The session ended (before it opened, or while stdio was running).
    #[error(transparent)]
    Ended(SessionEnd),

    /// The TerminateSession flag went unacknowledged and the TerminateSession API failed too,
    /// so the session may still be open until the service times it out.
    #[error("the session may still be open on the service side: {0}")]
    NotTerminated(ApiError),

    /// stdin or stdout failed (stdio sessions).
    #[error("the local side of the session failed: {0}")]
    Local(#[source] io::Error),
}
