//! The presigned `openTunnel` URL (spec `eic.md` §1).
//!
//! EIC has no API call to open a tunnel: the WebSocket URL itself is a SigV4 query-string
//! presigned `GET /openTunnel`, exactly what botocore's `SigV4QueryAuth` produces for the AWS
//! CLI. We sign with `aws-sigv4`, configured so that the official vector A and the derived
//! vectors B and C (session token, IPv6 + duration) come out byte for byte; the tests below pin
//! that. A URL is valid for 60 seconds and only for one connection, so one is signed right before
//! every WebSocket connect.
//!
//! The URL is a bearer secret (signature, and the session token when there is one), so
//! [`OpenTunnelUrl`] has a redacting `Debug`, no `Display`, and its text is reachable only through
//! [`OpenTunnelUrl::expose_secret`].

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::{EicError, EndpointAddress};

/// SigV4 signing name of EC2 Instance Connect (the service model's `endpointPrefix`).
const SIGNING_NAME: &str = "ec2-instance-connect";
/// `X-Amz-Expires` the CLI uses.
const EXPIRES_IN: Duration = Duration::from_secs(60);

/// RFC 3986 unreserved characters stay, everything else is percent-encoded (botocore's
/// `percent_encode_sequence`, `safe='-_.~'`).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `maxTunnelDuration` in seconds, 1..=3600 (the server's default and maximum is 3600).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MaxTunnelDuration(u16);

impl MaxTunnelDuration {
    /// The longest tunnel the service allows.
    pub const MAX: MaxTunnelDuration = MaxTunnelDuration(3600);

    /// Checks the range the CLI and the service accept (inclusive).
    pub fn from_secs(seconds: u64) -> Result<Self, EicError> {
        match u16::try_from(seconds) {
            Ok(s @ 1..=3600) => Ok(Self(s)),
            _ => Err(EicError::InvalidMaxTunnelDuration { seconds }),
        }
    }

    /// The duration in seconds.
    pub fn as_secs(self) -> u64 {
        u64::from(self.0)
    }
}

/// What to open a tunnel to, and through which endpoint. Everything the URL is built from,
/// except credentials and the clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelRequest {
    /// The endpoint's `DnsName` (or `FipsDnsName`), parsed.
    pub endpoint: EndpointAddress,
    /// The endpoint's `InstanceConnectEndpointId` (`eice-…`).
    pub endpoint_id: String,
    /// The instance's private IPv4 (or IPv6) address.
    pub private_ip: IpAddr,
    /// The port on the instance (22 for SSH, 3389 for RDP).
    pub remote_port: u16,
    /// Sent only when set; needed when an IAM policy caps it below 3600.
    pub max_tunnel_duration: Option<MaxTunnelDuration>,
    /// The signing region (the profile's region, not derived from the DNS name).
    pub region: String,
}

/// A presigned `wss://…/openTunnel?…` URL, valid for 60 seconds. Secret: never log it.
#[derive(Clone)]
pub struct OpenTunnelUrl {
    url: String,
    endpoint: EndpointAddress,
}

impl OpenTunnelUrl {
    /// Presigns `openTunnel` for `request` with `credentials` at `now` (spec §1.5): query-string
    /// SigV4, service `ec2-instance-connect`, `X-Amz-Expires=60`, only `host` signed, payload hash
    /// of the empty body. Operation parameters come first in the CLI's order, then the auth
    /// parameters in botocore's order (signature last).
    pub fn presign(
        request: &TunnelRequest,
        credentials: &Credentials,
        now: SystemTime,
    ) -> Result<Self, EicError> {
        if request.region.trim().is_empty() {
            return Err(EicError::Signing {
                reason: "no region is set; set a region for the profile (or AWS_REGION)".into(),
            });
        }
        if credentials.expiry().is_some_and(|expiry| expiry <= now) {
            return Err(EicError::CredentialsExpired);
        }
        let endpoint = &request.endpoint;
        let mut url = format!(
            "{}://{}/openTunnel?instanceConnectEndpointId={}&remotePort={}&privateIpAddress={}",
            endpoint.scheme(),
            endpoint.authority(),
            encode(&request.endpoint_id),
            request.remote_port,
            encode(&request.private_ip.to_string()),
        );
        if let Some(duration) = request.max_tunnel_duration {
            url.push_str(&format!("&maxTunnelDuration={}", duration.as_secs()));
        }

        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(EXPIRES_IN);
        let identity = credentials.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&request.region)
            .name(SIGNING_NAME)
            .time(now)
            .settings(settings)
            .build()
            .map_err(|e| EicError::Signing {
                reason: e.to_string(),
            })?
            .into();
        // No headers: aws-sigv4 takes `host` from the URL authority, which is exactly the Host
        // header tungstenite will send. Anything else signed would have to be sent byte for byte.
        let signable =
            SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::Bytes(&[]))
                .map_err(|e| EicError::Signing {
                    reason: e.to_string(),
                })?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| EicError::Signing {
                reason: e.to_string(),
            })?
            .into_parts();
        let (_headers, query) = instructions.into_parts();

        // aws-sigv4 puts X-Amz-Security-Token after X-Amz-Signature; botocore puts the signature
        // last. The server does not care, but the CLI's order keeps the vectors byte-identical.
        let (signature, auth): (Vec<_>, Vec<_>) = query
            .iter()
            .partition(|(name, _)| *name == "X-Amz-Signature");
        for (name, value) in auth.into_iter().chain(signature) {
            url.push('&');
            url.push_str(name);
            url.push('=');
            url.push_str(&encode(value));
        }
        Ok(Self {
            url,
            endpoint: endpoint.clone(),
        })
    }

    /// The full URL, to hand to the WebSocket handshake and nowhere else.
    pub fn expose_secret(&self) -> &str {
        &self.url
    }

    /// The endpoint this URL was signed for.
    pub fn endpoint(&self) -> &EndpointAddress {
        &self.endpoint
    }
}

impl fmt::Debug for OpenTunnelUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OpenTunnelUrl({}/openTunnel?<presigned, redacted>)",
            self.endpoint
        )
    }
}

fn encode(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    const HOST: &str = "eice-123.ec2-instance-connect-endpoint.us-west-2.amazonaws.com";

    /// 2020-01-01T01:01:01Z, the clock of the aws-cli functional test.
    fn vector_clock() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_577_840_461)
    }

    fn vector_request(ip: &str, duration: Option<u64>) -> TunnelRequest {
        TunnelRequest {
            endpoint: EndpointAddress::parse(HOST).unwrap(),
            endpoint_id: "eice-123".into(),
            private_ip: ip.parse().unwrap(),
            remote_port: 22,
            max_tunnel_duration: duration.map(|d| MaxTunnelDuration::from_secs(d).unwrap()),
            region: "us-west-2".into(),
        }
    }

    fn keys(token: Option<&str>) -> Credentials {
        Credentials::new(
            "access_key",
            "secret_key",
            token.map(str::to_owned),
            None,
            "test",
        )
    }

    #[test]
    fn vector_a_matches_the_aws_cli_functional_test_exactly() {
        let url = OpenTunnelUrl::presign(
            &vector_request("10.0.0.0", Some(1)),
            &keys(None),
            vector_clock(),
        )
        .unwrap();
        assert_eq!(
            url.expose_secret(),
            "wss://eice-123.ec2-instance-connect-endpoint.us-west-2.amazonaws.com/openTunnel?instanceConnectEndpointId=eice-123&remotePort=22&privateIpAddress=10.0.0.0&maxTunnelDuration=1&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=access_key%2F20200101%2Fus-west-2%2Fec2-instance-connect%2Faws4_request&X-Amz-Date=20200101T010101Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=3a56740422a5b9aebd22d860b7a30c729e459a6f71a83bc0de3a2b44b7353f28"
        );
    }

    #[test]
    fn vector_b_signs_and_encodes_the_session_token() {
        let url = OpenTunnelUrl::presign(
            &vector_request("10.0.0.0", None),
            &keys(Some("session_token/with+special=chars")),
            vector_clock(),
        )
        .unwrap();
        assert_eq!(
            url.expose_secret(),
            "wss://eice-123.ec2-instance-connect-endpoint.us-west-2.amazonaws.com/openTunnel?instanceConnectEndpointId=eice-123&remotePort=22&privateIpAddress=10.0.0.0&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=access_key%2F20200101%2Fus-west-2%2Fec2-instance-connect%2Faws4_request&X-Amz-Date=20200101T010101Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Security-Token=session_token%2Fwith%2Bspecial%3Dchars&X-Amz-Signature=7bf48ae7e0848b8235b5d4a6bf2dca39ba67ed13c3b4ef1e0713f99e6636f276"
        );
    }

    #[test]
    fn vector_c_encodes_ipv6_colons_and_sends_the_duration() {
        let url = OpenTunnelUrl::presign(
            &vector_request("2600:1f10:4f8e:db01:73f5:6b9d:c0da:1c27", Some(3600)),
            &keys(None),
            vector_clock(),
        )
        .unwrap();
        assert_eq!(
            url.expose_secret(),
            "wss://eice-123.ec2-instance-connect-endpoint.us-west-2.amazonaws.com/openTunnel?instanceConnectEndpointId=eice-123&remotePort=22&privateIpAddress=2600%3A1f10%3A4f8e%3Adb01%3A73f5%3A6b9d%3Ac0da%3A1c27&maxTunnelDuration=3600&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=access_key%2F20200101%2Fus-west-2%2Fec2-instance-connect%2Faws4_request&X-Amz-Date=20200101T010101Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=a1a65c05f2350d305c1263c106d6d4e502a017cf23f521748fb79f619715c634"
        );
    }

    #[test]
    fn a_non_default_port_is_part_of_the_signed_host() {
        let mut request = vector_request("10.0.0.0", Some(1));
        let plain = OpenTunnelUrl::presign(&request, &keys(None), vector_clock()).unwrap();
        request.endpoint = EndpointAddress::parse(&format!("{HOST}:8443")).unwrap();
        let with_port = OpenTunnelUrl::presign(&request, &keys(None), vector_clock()).unwrap();
        assert!(
            with_port
                .expose_secret()
                .starts_with(&format!("wss://{HOST}:8443/openTunnel?"))
        );
        let signature = |u: &OpenTunnelUrl| {
            u.expose_secret()
                .rsplit_once("X-Amz-Signature=")
                .unwrap()
                .1
                .to_owned()
        };
        assert_ne!(
            signature(&plain),
            signature(&with_port),
            "host:port must be signed, not host"
        );
    }

    #[test]
    fn debug_never_shows_the_signature_or_token() {
        let url = OpenTunnelUrl::presign(
            &vector_request("10.0.0.0", None),
            &keys(Some("session_token/with+special=chars")),
            vector_clock(),
        )
        .unwrap();
        let shown = format!("{url:?}");
        assert!(!shown.contains("7bf48ae7"), "{shown}");
        assert!(!shown.contains("session_token"), "{shown}");
        assert!(!shown.contains("X-Amz"), "{shown}");
        assert!(shown.contains(HOST));
    }

    #[test]
    fn expired_credentials_are_refused_before_signing() {
        let expired = Credentials::new(
            "a",
            "b",
            None,
            Some(vector_clock() - Duration::from_secs(1)),
            "test",
        );
        assert!(matches!(
            OpenTunnelUrl::presign(&vector_request("10.0.0.0", None), &expired, vector_clock()),
            Err(EicError::CredentialsExpired)
        ));
    }

    #[test]
    fn an_empty_region_is_refused_with_a_hint() {
        let mut request = vector_request("10.0.0.0", None);
        request.region = " ".into();
        let err = OpenTunnelUrl::presign(&request, &keys(None), vector_clock()).unwrap_err();
        assert!(
            matches!(&err, EicError::Signing { reason } if reason.contains("region")),
            "{err}"
        );
    }

    #[test]
    fn max_tunnel_duration_range_is_inclusive_1_to_3600() {
        assert_eq!(MaxTunnelDuration::from_secs(1).unwrap().as_secs(), 1);
        assert_eq!(
            MaxTunnelDuration::from_secs(3600).unwrap(),
            MaxTunnelDuration::MAX
        );
        for bad in [0, 3601, 70_000, u64::MAX] {
            assert!(matches!(
                MaxTunnelDuration::from_secs(bad),
                Err(EicError::InvalidMaxTunnelDuration { seconds }) if seconds == bad
            ));
        }
    }
}
