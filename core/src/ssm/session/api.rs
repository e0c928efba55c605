//! The control plane a session needs (spec §1): StartSession, ResumeSession, TerminateSession.
//!
//! It is a trait so that the driver can be tested against a fake on loopback: the real
//! implementation, [`SsmSessionApi`](super::SsmSessionApi), is a thin layer over `aws-sdk-ssm`.
//! The errors are typed here, once, with the advice a user needs, because they end up verbatim
//! in a toast or on the CLI's stderr; [`ApiError::is_retryable`] is what the resume loop asks.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use super::url::StreamUrl;
use crate::ssm::kms::KmsError;
use crate::ssm::proto::DataKey;

/// What to start: one of the AWS-owned documents (spec §1.1 table), or a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionDocument {
    /// `AWS-StartPortForwardingSession`: a port on the instance itself.
    PortForwarding { port: u16 },
    /// `AWS-StartPortForwardingSessionToRemoteHost`: a host the instance can reach.
    PortForwardingToRemoteHost { host: String, port: u16 },
    /// `AWS-StartSSHSession`: one stdin/stdout byte stream to the port (sshd), never mux.
    Ssh { port: u16 },
    /// No document: the account's default shell document.
    Shell,
}

impl SessionDocument {
    /// The `DocumentName` to send, `None` for the default shell.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            SessionDocument::PortForwarding { .. } => Some("AWS-StartPortForwardingSession"),
            SessionDocument::PortForwardingToRemoteHost { .. } => {
                Some("AWS-StartPortForwardingSessionToRemoteHost")
            }
            SessionDocument::Ssh { .. } => Some("AWS-StartSSHSession"),
            SessionDocument::Shell => None,
        }
    }

    /// The `Parameters` (each value is a one-element list on the wire). `localPortNumber` is
    /// only informational for the agent; "0" is the documents' own default ("any").
    pub fn parameters(&self) -> Vec<(&'static str, String)> {
        match self {
            SessionDocument::PortForwarding { port } => vec![
                ("portNumber", port.to_string()),
                ("localPortNumber", "0".to_owned()),
            ],
            SessionDocument::PortForwardingToRemoteHost { host, port } => vec![
                ("host", host.clone()),
                ("portNumber", port.to_string()),
                ("localPortNumber", "0".to_owned()),
            ],
            SessionDocument::Ssh { port } => vec![("portNumber", port.to_string())],
            SessionDocument::Shell => Vec::new(),
        }
    }
}

/// A StartSession request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartSessionRequest {
    /// `i-…`, `mi-…`, or `ecs:<cluster>_<task>_<runtime id>`.
    pub target: String,
    pub document: SessionDocument,
}

/// A session token from StartSession or ResumeSession: it authenticates the data channel, so
/// it is a secret. `Debug` hides it and it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    pub fn new(token: impl Into<String>) -> Self {
        SessionToken(token.into())
    }

    /// The token text, for the OpenDataChannel frame and nothing else.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// What StartSession returns.
#[derive(Debug, Clone)]
pub struct StartedSession {
    pub session_id: String,
    pub token: SessionToken,
    pub stream_url: StreamUrl,
}

/// The three control-plane calls. Implementations must be cheap to share (`Arc`).
pub trait SessionApi: Send + Sync + 'static {
    /// `ssm:StartSession`.
    fn start_session(
        &self,
        request: &StartSessionRequest,
    ) -> impl Future<Output = Result<StartedSession, ApiError>> + Send;

    /// `ssm:ResumeSession`: a fresh token for reconnecting, or `None` when the service returned
    /// none — the session is over (it timed out or was terminated).
    fn resume_session(
        &self,
        session_id: &str,
    ) -> impl Future<Output = Result<Option<SessionToken>, ApiError>> + Send;

    /// `ssm:TerminateSession`.
    fn terminate_session(
        &self,
        session_id: &str,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;

    /// `kms:GenerateDataKey` for a shell whose Session Manager preferences require KMS
    /// encryption (spec §6.3): a 64-byte data key under `key_id`, bound to `context`. It is
    /// here, with the Systems Manager calls, because it needs the same profile and region.
    fn generate_data_key(
        &self,
        key_id: &str,
        context: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<DataKey, KmsError>> + Send;
}

/// Why a control-plane call failed, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error(
        "the SSM agent on {target} is not connected to Systems Manager (TargetNotConnected): \
         check that the instance is running, that the SSM agent is installed and shows as \
         online in Fleet Manager, and that the instance can reach the ssm and ssmmessages \
         endpoints (VPC endpoints or a NAT)"
    )]
    TargetNotConnected { target: String },

    #[error(
        "access denied calling ssm:{action}: {message}; the profile's IAM policy must allow \
         ssm:{action} on the target instance and the session document (and \
         ssm:ResumeSession / ssm:TerminateSession on its own sessions)"
    )]
    AccessDenied {
        action: &'static str,
        message: String,
    },

    #[error(
        "the Session Manager document {document} cannot be used (InvalidDocument): {message}; \
         check that it exists in this region and that the profile may use it"
    )]
    InvalidDocument { document: String, message: String },

    #[error("Session Manager no longer knows session {session_id}; it has ended")]
    SessionNotFound { session_id: String },

    #[error(
        "the AWS credentials were refused calling ssm:{action} ({message}); refresh them (for \
         SSO profiles, sign in again) and retry"
    )]
    Credentials {
        action: &'static str,
        message: String,
    },

    #[error(
        "the AWS credentials had expired when ssm:{action} was called ({message}); they are \
         renewed by themselves, so if this persists check that this computer's clock is right \
         (for SSO profiles, sign in again)"
    )]
    CredentialsExpired {
        action: &'static str,
        message: String,
    },

    #[error("Systems Manager is throttling ssm:{action}: {message}; retry in a moment")]
    Throttled {
        action: &'static str,
        message: String,
    },

    #[error("Systems Manager had an internal error in ssm:{action}: {message}; retry in a moment")]
    Internal {
        action: &'static str,
        message: String,
    },

    #[error(
        "cannot reach Systems Manager for ssm:{action}: {detail}; check your network, VPN or \
         proxy"
    )]
    Unreachable {
        action: &'static str,
        detail: String,
    },

    #[error("ssm:{action} returned an unusable answer: {reason}")]
    BadResponse {
        action: &'static str,
        reason: String,
    },

    #[error("ssm:{action} failed: {detail}")]
    Other {
        action: &'static str,
        detail: String,
    },
}

impl ApiError {
    /// Whether calling again later may succeed (network trouble, throttling, 5xx, expired
    /// credentials).
    ///
    /// Expired credentials are renewed by the SDK's identity cache once *this computer's* clock
    /// says they have expired; a clock a little behind AWS's means a few refusals first, and
    /// the resume loop's retries ride them out instead of ending a session over them.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ApiError::Throttled { .. }
                | ApiError::Internal { .. }
                | ApiError::Unreachable { .. }
                | ApiError::CredentialsExpired { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_send_the_parameters_the_aws_documents_define() {
        assert_eq!(
            SessionDocument::PortForwarding { port: 5432 }.parameters(),
            vec![
                ("portNumber", "5432".to_owned()),
                ("localPortNumber", "0".to_owned())
            ]
        );
        let remote = SessionDocument::PortForwardingToRemoteHost {
            host: "db.internal".into(),
            port: 5432,
        };
        assert_eq!(
            remote.name(),
            Some("AWS-StartPortForwardingSessionToRemoteHost")
        );
        assert_eq!(remote.parameters()[0], ("host", "db.internal".to_owned()));
        assert_eq!(
            SessionDocument::Ssh { port: 22 }.parameters(),
            vec![("portNumber", "22".to_owned())]
        );
        assert_eq!(SessionDocument::Shell.name(), None);
        assert!(SessionDocument::Shell.parameters().is_empty());
    }

    #[test]
    fn tokens_never_show_in_debug_output() {
        let token = SessionToken::new("AAEAAdsecret");
        assert!(!format!("{token:?}").contains("secret"));
        assert_eq!(token.expose_secret(), "AAEAAdsecret");
    }

    #[test]
    fn only_transient_failures_are_retryable() {
        let transient = ApiError::Unreachable {
            action: "ResumeSession",
            detail: "timeout".into(),
        };
        let final_ = ApiError::AccessDenied {
            action: "ResumeSession",
            message: "no".into(),
        };
        assert!(transient.is_retryable());
        assert!(!final_.is_retryable());
        assert!(final_.to_string().contains("ssm:ResumeSession"));
    }
}
