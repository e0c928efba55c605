//! Why a tunnel, or one of its connections, could not be opened.

use std::io;

use crate::eic::EicError;

/// A tunnel or connection failure, worded for the user.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// The local port could not be bound.
    #[error(
        "cannot listen on 127.0.0.1:{port}: {source}; choose another local port, or leave it \
         empty for any free port"
    )]
    Bind {
        port: u16,
        #[source]
        source: io::Error,
    },
    /// The profile's credentials could not be obtained.
    #[error(
        "could not get credentials for profile {profile}: {reason}; sign in again (SSO) or fix \
         the profile"
    )]
    Credentials { profile: String, reason: String },
    /// Opening or running the EIC WebSocket failed.
    #[error(transparent)]
    Eic(#[from] EicError),
    /// Starting or running the Session Manager session failed; the text says why.
    #[error("Session Manager: {0}")]
    Ssm(String),
    /// Our own per-endpoint cap is reached.
    #[error(
        "{open} connections through {endpoint_id} are already open, this app's limit per \
         endpoint (it can be raised to 20, the AWS limit shared by everyone using the endpoint); \
         close one and retry"
    )]
    EndpointBusy { endpoint_id: String, open: usize },
    /// The tunnel was closed before or while this ran.
    #[error("the tunnel was closed")]
    Closed,
    /// The tunnel could not be set up (no endpoint, no IP, …); the text says why.
    #[error("{0}")]
    Unroutable(String),
}
