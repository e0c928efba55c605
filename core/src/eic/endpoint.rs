//! Where an EIC tunnel connects: the endpoint's host, port and whether TLS is used.
//!
//! Real endpoints are `wss://<DnsName>:443`. The simulator and tests listen on loopback ports,
//! sometimes without TLS. Putting that choice in one validated type means the rest of the module
//! cannot build a plain-text connection to anything but loopback, and the host that is signed
//! into the presigned URL is, by construction, the same `Host` header the WebSocket handshake
//! sends (both are [`EndpointAddress::authority`]).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use super::EicError;

/// A validated EC2 Instance Connect endpoint address.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EndpointAddress {
    host: String,
    port: u16,
    tls: bool,
}

impl EndpointAddress {
    /// Parses an endpoint address. Accepted forms:
    ///
    /// - `DnsName` as returned by `DescribeInstanceConnectEndpoints` (wss, port 443);
    /// - `host:port` or `[v6]:port` (wss on that port, for test servers);
    /// - `wss://host[:port][/]`;
    /// - `ws://host[:port][/]`, only when `host` is loopback (127.0.0.0/8, `::1`, `localhost`).
    pub fn parse(address: &str) -> Result<Self, EicError> {
        let invalid = |reason: &str| EicError::InvalidEndpoint {
            address: address.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = address.trim();
        let (tls, rest) = if let Some(rest) = strip_prefix_ignore_case(trimmed, "wss://") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(trimmed, "ws://") {
            (false, rest)
        } else if trimmed.contains("://") {
            return Err(invalid("only wss:// (or ws:// to loopback) is supported"));
        } else {
            (true, trimmed)
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = split_host_port(rest).map_err(invalid)?;
        let port = port.unwrap_or(default_port);
        if port == 0 {
            return Err(invalid("port 0 is not a valid port"));
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return Err(invalid("the host name is empty"));
        }
        if host.parse::<IpAddr>().is_err() && !is_dns_name(&host) {
            return Err(invalid(
                "the host may contain only letters, digits, '.' and '-'",
            ));
        }
        if !tls && !is_loopback_host(&host) {
            return Err(EicError::PlainTextRefused { host });
        }
        Ok(Self { host, port, tls })
    }

    /// The host name or IP literal (IPv6 without brackets): what TLS uses for SNI and
    /// certificate checks, and what DNS resolves.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the connection uses TLS (`wss`). Always true unless the host is loopback.
    pub fn uses_tls(&self) -> bool {
        self.tls
    }

    /// The URL scheme, `wss` or `ws`.
    pub fn scheme(&self) -> &'static str {
        if self.tls { "wss" } else { "ws" }
    }

    /// `host` or `host:port` (IPv6 bracketed), with the port only when it is not the scheme's
    /// default. This is both the URL authority and the `Host` header, so the signed `host` and
    /// the sent `Host` agree (aws-sigv4 keeps a non-default port; tungstenite sends the URL
    /// authority verbatim).
    pub fn authority(&self) -> String {
        let host = host_for_authority(&self.host);
        let default_port = if self.tls { 443 } else { 80 };
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// `host:port` always with the port: the target of a proxy `CONNECT`.
    pub(crate) fn host_port(&self) -> String {
        format!("{}:{}", host_for_authority(&self.host), self.port)
    }
}

impl FromStr for EndpointAddress {
    type Err = EicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for EndpointAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme(), self.authority())
    }
}

impl fmt::Display for EndpointAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme(), self.authority())
    }
}

/// True for `localhost`, 127.0.0.0/8 and `::1` (also `::ffff:127.x.y.z`).
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => {
            v6 == Ipv6Addr::LOCALHOST || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`. A bare IPv6 literal without brackets is
/// accepted as a host without port.
pub(crate) fn split_host_port(text: &str) -> Result<(&str, Option<u16>), &'static str> {
    if let Some(after_bracket) = text.strip_prefix('[') {
        let Some((host, rest)) = after_bracket.split_once(']') else {
            return Err("an IPv6 address opened with '[' is not closed with ']'");
        };
        if host.parse::<Ipv6Addr>().is_err() {
            return Err("the bracketed host is not an IPv6 address");
        }
        return match rest {
            "" => Ok((host, None)),
            _ => match rest.strip_prefix(':') {
                Some(port) => Ok((host, Some(parse_port(port)?))),
                None => Err("unexpected text after the IPv6 address"),
            },
        };
    }
    if text.parse::<Ipv6Addr>().is_ok() {
        return Ok((text, None));
    }
    match text.rsplit_once(':') {
        Some((host, port)) => Ok((host, Some(parse_port(port)?))),
        None => Ok((text, None)),
    }
}

fn parse_port(port: &str) -> Result<u16, &'static str> {
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the port is not a number between 1 and 65535");
    }
    port.parse::<u16>()
        .map_err(|_| "the port is not a number between 1 and 65535")
}

/// DNS names as EIC reports them (`^[0-9a-zA-Z.-]+$`, the CLI's `dnsName` pattern), plus `_`
/// which some internal resolvers use.
fn is_dns_name(host: &str) -> bool {
    host.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        && !host.starts_with('.')
        && !host.contains("..")
}

fn host_for_authority(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_dns_name_means_wss_on_443_without_port_in_authority() {
        let a = EndpointAddress::parse(
            "eice-123.ec2-instance-connect-endpoint.us-west-2.amazonaws.com",
        )
        .unwrap();
        assert!(a.uses_tls());
        assert_eq!(a.port(), 443);
        assert_eq!(
            a.authority(),
            "eice-123.ec2-instance-connect-endpoint.us-west-2.amazonaws.com"
        );
        assert_eq!(
            a.host_port(),
            "eice-123.ec2-instance-connect-endpoint.us-west-2.amazonaws.com:443"
        );
    }

    #[test]
    fn explicit_default_port_is_dropped_from_the_authority() {
        let a = EndpointAddress::parse("wss://Example.COM:443/").unwrap();
        assert_eq!(a.authority(), "example.com");
        assert_eq!(a.to_string(), "wss://example.com");
    }

    #[test]
    fn non_default_port_is_kept_in_the_authority() {
        let a = EndpointAddress::parse("127.0.0.1:8443").unwrap();
        assert_eq!(
            (a.host(), a.port(), a.uses_tls()),
            ("127.0.0.1", 8443, true)
        );
        assert_eq!(a.authority(), "127.0.0.1:8443");
    }

    #[test]
    fn ipv6_hosts_are_bracketed_in_the_authority_only() {
        let a = EndpointAddress::parse("[::1]:9000").unwrap();
        assert_eq!(a.host(), "::1");
        assert_eq!(a.authority(), "[::1]:9000");
        let b = EndpointAddress::parse("::1").unwrap();
        assert_eq!(b.authority(), "[::1]");
    }

    #[test]
    fn plain_ws_is_allowed_to_loopback_only() {
        for ok in [
            "ws://127.0.0.1:8080",
            "ws://127.1.2.3:80",
            "ws://[::1]:8080",
            "ws://localhost:1",
            "ws://LOCALHOST.",
        ] {
            let a = EndpointAddress::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(!a.uses_tls(), "{ok}");
        }
        for refused in [
            "ws://10.0.0.1:8080",
            "ws://example.com",
            "ws://localhost.example.com",
            "ws://[::ffff:10.0.0.1]:1",
        ] {
            assert!(
                matches!(
                    EndpointAddress::parse(refused),
                    Err(EicError::PlainTextRefused { .. })
                ),
                "{refused}"
            );
        }
    }

    #[test]
    fn malformed_addresses_are_rejected() {
        for bad in [
            "",
            "https://example.com",
            "exa mple.com",
            "host:0",
            "host:99999",
            "host:",
            "[::1",
            "user@host",
            "host/path",
            "a..b",
        ] {
            assert!(
                matches!(
                    EndpointAddress::parse(bad),
                    Err(EicError::InvalidEndpoint { .. })
                ),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback_host("127.0.0.1"));
        assert!(is_loopback_host("127.255.0.9"));
        assert!(is_loopback_host("::1"));
        assert!(is_loopback_host("[::1]"));
        assert!(is_loopback_host("::ffff:127.0.0.1"));
        assert!(is_loopback_host("localhost"));
        assert!(!is_loopback_host("128.0.0.1"));
        assert!(!is_loopback_host("::2"));
        assert!(!is_loopback_host("mylocalhost"));
    }
}
