//! Everything that can go wrong while opening or running an EIC tunnel, as one typed error.
//!
//! Each variant says what happened and what the user can do about it, because these messages end
//! up verbatim in a toast or on the CLI's stderr. None of them ever contains the presigned URL, a
//! session token, or proxy credentials: variants carry host names, paths and status codes only,
//! and text that comes from the server is scrubbed of presign parameters before it is kept.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use tokio_tungstenite::tungstenite;

/// Why an EIC tunnel could not be opened, or why it ended badly.
#[derive(Debug, thiserror::Error)]
pub enum EicError {
    /// The endpoint DNS name (or test URL) is not something we can connect to.
    #[error(
        "invalid EC2 Instance Connect endpoint address {address:?}: {reason}; expected the \
         endpoint's DNS name, optionally with :port"
    )]
    InvalidEndpoint { address: String, reason: String },

    /// `ws://` was asked for a host that is not loopback.
    #[error(
        "refusing an unencrypted ws:// connection to {host}: plain WebSocket is allowed only to \
         loopback addresses (127.0.0.0/8, ::1, localhost); use wss:// or the endpoint's DNS name"
    )]
    PlainTextRefused { host: String },

    /// `maxTunnelDuration` outside what the service accepts.
    #[error("invalid maximum tunnel duration {seconds} s: it must be between 1 and 3600 seconds")]
    InvalidMaxTunnelDuration { seconds: u64 },

    /// The credentials expired before the URL was signed.
    #[error(
        "the AWS credentials expired before the tunnel could be signed; refresh them (for SSO \
         profiles, sign in again) and retry"
    )]
    CredentialsExpired,

    /// aws-sigv4 refused the request (should not happen with validated inputs).
    #[error("could not sign the openTunnel request: {reason}")]
    Signing { reason: String },

    /// `HTTPS_PROXY`/`https_proxy` (or an explicit proxy setting) does not parse.
    #[error(
        "the proxy setting from {origin} is not usable: {reason}; expected \
         http://[user:password@]host[:port]"
    )]
    InvalidProxy { origin: String, reason: String },

    /// A CA bundle file could not be read.
    #[error(
        "cannot read the CA bundle {path}: {source}; check AWS_CA_BUNDLE or the profile's \
         ca_bundle setting"
    )]
    CaBundleUnreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A CA bundle file was read but holds no usable certificates.
    #[error(
        "the CA bundle {path} is not usable: {reason}; it must contain PEM \"CERTIFICATE\" \
         blocks (check AWS_CA_BUNDLE or the profile's ca_bundle setting)"
    )]
    CaBundleInvalid { path: PathBuf, reason: String },

    /// Neither the OS nor any bundle provided a trust anchor.
    #[error(
        "no trusted root certificates were found in the operating system store; install the \
         OS CA certificates or set AWS_CA_BUNDLE to a PEM bundle"
    )]
    NoTrustRoots,

    /// DNS resolution of the endpoint or the proxy failed.
    #[error("cannot resolve {host}: {source}; check the name, your DNS and your VPN")]
    Resolve {
        host: String,
        #[source]
        source: io::Error,
    },

    /// TCP connection to the endpoint or proxy failed.
    #[error("cannot connect to {target}: {source}; check your network, VPN and firewall")]
    Connect {
        target: String,
        #[source]
        source: io::Error,
    },

    /// TCP connect (and the proxy CONNECT exchange) took longer than the connect timeout.
    #[error(
        "timed out after {} s connecting to {target}; check your network, VPN or proxy",
        after.as_secs_f32()
    )]
    ConnectTimeout { target: String, after: Duration },

    /// The HTTP proxy answered the CONNECT request with a non-2xx status.
    #[error("the proxy {proxy} refused to open a tunnel to {target}: HTTP {status} {reason}{}",
        if *status == 407 { "; check the user name and password in HTTPS_PROXY" } else { "" })]
    ProxyRejected {
        proxy: String,
        target: String,
        status: u16,
        reason: String,
    },

    /// The HTTP proxy spoke something that is not HTTP/1.x.
    #[error("the proxy {proxy} sent an invalid reply to CONNECT: {reason}")]
    ProxyProtocol { proxy: String, reason: String },

    /// The server's certificate did not verify against the OS roots plus the extra bundles.
    #[error(
        "the TLS certificate of {host} is not trusted: {reason}; if a TLS-inspecting proxy or \
         firewall sits in between, set AWS_CA_BUNDLE (or the profile's ca_bundle) to its CA"
    )]
    Certificate { host: String, reason: String },

    /// Any other TLS failure.
    #[error("the TLS handshake with {host} failed: {source}")]
    Tls {
        host: String,
        #[source]
        source: io::Error,
    },

    /// TLS plus the WebSocket upgrade took longer than the handshake timeout.
    #[error(
        "timed out after {} s waiting for {host} to complete the TLS/WebSocket handshake; retry, \
         and check any proxy or firewall in between",
        after.as_secs_f32()
    )]
    HandshakeTimeout { host: String, after: Duration },

    /// The endpoint answered the upgrade request with an HTTP error (status before 101).
    #[error("the endpoint refused to open the tunnel: {0}")]
    UpgradeRejected(UpgradeRejection),

    /// The WebSocket handshake failed for a reason other than an HTTP error status.
    #[error("the WebSocket handshake with {host} failed: {reason}")]
    Handshake { host: String, reason: String },

    /// The server closed the tunnel with a close code other than 1000.
    #[error(
        "Websocket Closure Reason: {reason} (close code {code}){}",
        close_hint(reason)
    )]
    ClosedByServer { code: u16, reason: String },

    /// The server sent a text frame; EIC tunnels only carry binary frames.
    #[error(
        "the endpoint sent a text frame, but tunnels carry only binary data; the tunnel was \
         closed. Retry, and report this if it persists"
    )]
    UnexpectedTextFrame,

    /// The WebSocket connection broke while the tunnel was running.
    #[error("the tunnel's connection to the endpoint failed: {source}; open the tunnel again")]
    TunnelLost {
        #[source]
        source: tungstenite::Error,
    },

    /// Reading from or writing to the local side (TCP client, stdin/stdout) failed.
    #[error("the local side of the tunnel failed: {source}")]
    Local {
        #[source]
        source: io::Error,
    },
}

fn close_hint(reason: &str) -> &'static str {
    if reason.contains("Unable to connect to target") {
        ". The endpoint could not reach the instance: check that the instance's security group \
         admits the endpoint (or the VPC CIDR), that the endpoint's security group allows egress \
         to the port, and that the service (sshd/RDP) is running"
    } else {
        ""
    }
}

/// An HTTP error answer to the WebSocket upgrade, as the EIC service sends it:
/// status, then `{"ErrorCode":"…","Message":"…"}` and an `x-amzn-requestid` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRejection {
    /// HTTP status code (never 101).
    pub status: u16,
    /// `ErrorCode` from the JSON body, when the body is that JSON.
    pub error_code: Option<String>,
    /// `Message` from the JSON body, or the body as text when it is not JSON (scrubbed, bounded).
    pub message: Option<String>,
    /// The `x-amzn-requestid` response header, for AWS support.
    pub request_id: Option<String>,
}

/// Bodies longer than this are cut when kept as raw text: they are for a human to read.
const MAX_BODY_TEXT: usize = 512;

impl UpgradeRejection {
    /// Builds the rejection from tungstenite's view of the response: status, headers, and the
    /// body bytes that arrived with the headers.
    pub(crate) fn from_response(response: &tungstenite::handshake::client::Response) -> Self {
        let headers = response.headers();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let chunked =
            header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let content_length = header("content-length").and_then(|v| v.parse::<usize>().ok());
        let raw = response.body().as_deref().unwrap_or_default();
        let body = if chunked {
            dechunk(raw)
        } else {
            raw[..content_length.unwrap_or(raw.len()).min(raw.len())].to_vec()
        };
        let (error_code, message) = parse_error_body(&body);
        Self {
            status: response.status().as_u16(),
            error_code,
            message,
            request_id: header("x-amzn-requestid").map(|id| scrub(&id)),
        }
    }

    /// What the user should check, by status class. EIC does not document its statuses; these
    /// follow the general AWS meaning of each code.
    pub fn hint(&self) -> &'static str {
        match self.status {
            400 => "check the endpoint ID, the target IP and the remote port",
            401 | 403 => {
                "check that the profile may call ec2-instance-connect:OpenTunnel on this \
                 endpoint (IAM conditions on remotePort, privateIpAddress and \
                 maxTunnelDuration), that its credentials are current, and that the system \
                 clock is right"
            }
            404 => "check the endpoint DNS name and the region",
            429 => {
                "the endpoint is throttling or at its limit of 20 concurrent tunnels; close \
                 some tunnels or retry later"
            }
            500..=599 => "the service had an internal error; retry in a moment",
            _ => "retry, and check the endpoint and the profile",
        }
    }
}

impl fmt::Display for UpgradeRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(code) = &self.error_code {
            write!(f, " {code}")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request ID {id})")?;
        }
        write!(f, ". {}", self.hint())
    }
}

/// Splits an error body into `(ErrorCode, Message)`. A JSON object with either field gives
/// those fields; anything else is kept as (scrubbed, bounded) raw text in the message.
pub(crate) fn parse_error_body(body: &[u8]) -> (Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return (None, None);
    }
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) {
        let field = |name: &str| {
            map.get(name)
                .and_then(|v| v.as_str())
                .map(|s| bounded(&scrub(s)))
                .filter(|s| !s.is_empty())
        };
        let (code, message) = (field("ErrorCode"), field("Message"));
        if code.is_some() || message.is_some() {
            return (code, message);
        }
    }
    (None, Some(bounded(&scrub(text))))
}

/// Removes the body of an HTTP/1.1 chunked transfer encoding, leniently: stops at the first
/// malformed or truncated chunk and keeps what was decoded so far.
fn dechunk(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = raw;
    while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            break;
        };
        rest = &rest[line_end + 2..];
        if size == 0 {
            break;
        }
        let take = size.min(rest.len());
        out.extend_from_slice(&rest[..take]);
        if take < size || rest.len() < size + 2 {
            break;
        }
        rest = &rest[size + 2..];
    }
    out
}

/// Presign parameters whose values must never be kept: a server or proxy that echoes the request
/// line would otherwise put the signature or session token into an error message.
const SECRET_PARAMS: [&str; 3] = [
    "X-Amz-Signature=",
    "X-Amz-Security-Token=",
    "X-Amz-Credential=",
];

/// Replaces the values of presign parameters with `<redacted>` and control characters with
/// spaces.
pub(crate) fn scrub(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    for param in SECRET_PARAMS {
        let mut search_from = 0;
        while let Some(found) = find_ignore_ascii_case(&out[search_from..], param) {
            let value_start = search_from + found + param.len();
            let value_len = out[value_start..]
                .find(|c: char| c == '&' || c == '"' || c == '\'' || c.is_whitespace())
                .unwrap_or(out.len() - value_start);
            out.replace_range(value_start..value_start + value_len, "<redacted>");
            search_from = value_start + "<redacted>".len();
        }
    }
    out
}

fn find_ignore_ascii_case(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn bounded(text: &str) -> String {
    if text.chars().count() <= MAX_BODY_TEXT {
        return text.to_owned();
    }
    let cut: String = text.chars().take(MAX_BODY_TEXT).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::http;

    fn response(
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> tungstenite::handshake::client::Response {
        let mut builder = http::Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Some(body.to_vec())).unwrap()
    }

    #[test]
    fn json_error_body_gives_code_message_and_request_id() {
        let rejection = UpgradeRejection::from_response(&response(
            400,
            &[("x-amzn-RequestId", "5d0b7a1e-1111-2222-3333-444455556666")],
            br#"{"ErrorCode":"InvalidParameter","Message":"The specified RemotePort is not valid. Specify either 22 or 3389 as the RemotePort and retry your request."}"#,
        ));
        assert_eq!(rejection.status, 400);
        assert_eq!(rejection.error_code.as_deref(), Some("InvalidParameter"));
        assert_eq!(
            rejection.message.as_deref(),
            Some(
                "The specified RemotePort is not valid. Specify either 22 or 3389 as the RemotePort and retry your request."
            )
        );
        assert_eq!(
            rejection.request_id.as_deref(),
            Some("5d0b7a1e-1111-2222-3333-444455556666")
        );
        let shown = rejection.to_string();
        assert!(
            shown.starts_with("HTTP 400 InvalidParameter: The specified RemotePort"),
            "{shown}"
        );
        assert!(
            shown.contains("(request ID 5d0b7a1e-1111-2222-3333-444455556666)"),
            "{shown}"
        );
    }

    #[test]
    fn non_json_body_is_kept_as_text() {
        let rejection =
            UpgradeRejection::from_response(&response(401, &[], b"Failed to connect\n"));
        assert_eq!(rejection.error_code, None);
        assert_eq!(rejection.message.as_deref(), Some("Failed to connect"));
        assert_eq!(rejection.request_id, None);
        assert!(
            rejection
                .to_string()
                .contains("ec2-instance-connect:OpenTunnel")
        );
    }

    #[test]
    fn json_without_the_known_fields_is_kept_as_text() {
        let (code, message) = parse_error_body(br#"{"error":"nope"}"#);
        assert_eq!(code, None);
        assert_eq!(message.as_deref(), Some(r#"{"error":"nope"}"#));
    }

    #[test]
    fn empty_body_gives_neither_code_nor_message() {
        let rejection = UpgradeRejection::from_response(&response(500, &[], b""));
        assert_eq!(
            (
                rejection.error_code.as_deref(),
                rejection.message.as_deref()
            ),
            (None, None)
        );
        assert_eq!(
            rejection.to_string(),
            "HTTP 500. the service had an internal error; retry in a moment"
        );
    }

    #[test]
    fn chunked_body_is_decoded_before_parsing() {
        let body = b"1a\r\n{\"ErrorCode\":\"Throttling\",\r\n16\r\n\"Message\":\"slow down\"}\r\n0\r\n\r\n";
        let rejection = UpgradeRejection::from_response(&response(
            429,
            &[("Transfer-Encoding", "chunked")],
            body,
        ));
        assert_eq!(rejection.error_code.as_deref(), Some("Throttling"));
        assert_eq!(rejection.message.as_deref(), Some("slow down"));
    }

    #[test]
    fn content_length_cuts_trailing_bytes() {
        let rejection = UpgradeRejection::from_response(&response(
            403,
            &[("Content-Length", "6")],
            b"denied GARBAGE",
        ));
        assert_eq!(rejection.message.as_deref(), Some("denied"));
    }

    #[test]
    fn echoed_presign_secrets_are_redacted() {
        let echoed = "bad request GET /openTunnel?X-Amz-Credential=AKIA%2F2020&X-Amz-Security-Token=tok%2Fen&X-Amz-Signature=abc123 HTTP/1.1";
        let (_, message) = parse_error_body(echoed.as_bytes());
        let message = message.unwrap();
        assert!(!message.contains("tok%2Fen"), "{message}");
        assert!(!message.contains("abc123"), "{message}");
        assert!(!message.contains("AKIA"), "{message}");
        assert_eq!(
            message,
            "bad request GET /openTunnel?X-Amz-Credential=<redacted>&X-Amz-Security-Token=<redacted>&X-Amz-Signature=<redacted> HTTP/1.1"
        );
    }

    #[test]
    fn long_text_bodies_are_bounded() {
        let (_, message) = parse_error_body("x".repeat(5000).as_bytes());
        assert_eq!(message.unwrap().chars().count(), MAX_BODY_TEXT + 1);
    }

    #[test]
    fn closure_reason_unable_to_connect_explains_security_groups() {
        let err = EicError::ClosedByServer {
            code: 1011,
            reason: "Unable to connect to target".into(),
        };
        let shown = err.to_string();
        assert!(shown.starts_with(
            "Websocket Closure Reason: Unable to connect to target (close code 1011)"
        ));
        assert!(shown.contains("security group"));
    }
}
