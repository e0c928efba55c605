//! HTTP CONNECT proxies for the EIC WebSocket, and the `NO_PROXY` rules that bypass them.
//!
//! tokio-tungstenite has no proxy support, and corporate networks that reach AWS only through a
//! proxy are exactly where a bastion-less tool is wanted, so the CONNECT exchange is written here:
//! one request, one status line, then the socket is ours and TLS starts on it. Only `http://`
//! proxies are supported (TLS to the proxy itself would need a second TLS layer; no user asked).
//!
//! The environment is read in one place, [`ProxySettings::from_env`]; everything else takes a
//! [`ProxySettings`] value, so tests never touch process state.
//!
//! `NO_PROXY` follows the common (Go `httpproxy`/curl) convention rather than the AWS CLI's
//! substring test: entries are separated by commas or spaces; `*` bypasses everything;
//! `example.com` matches that host and its subdomains; `.example.com` and `*.example.com` match
//! subdomains only; IPs and CIDR blocks match IP-literal hosts; any entry may carry `:port` to
//! apply to that port only. Names are compared case-insensitively, without a trailing dot, and
//! never resolved.

use std::fmt;
use std::net::IpAddr;

use base64::Engine;
use percent_encoding::percent_decode_str;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::EicError;
use super::endpoint::{EndpointAddress, split_host_port};

/// Longest proxy reply header we accept before giving up on the proxy.
const MAX_REPLY_HEAD: usize = 16 * 1024;

/// Which proxy (if any) to use, and which hosts bypass it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxySettings {
    proxy: Option<ProxyUrl>,
    no_proxy: NoProxy,
}

impl ProxySettings {
    /// No proxy at all.
    pub fn direct() -> Self {
        Self::default()
    }

    /// Reads `https_proxy`/`HTTPS_PROXY` and `no_proxy`/`NO_PROXY` (lower case wins when both are
    /// set, as in curl; empty values count as unset). The tunnel is always `wss`, so the HTTPS
    /// proxy variable is the one that applies.
    pub fn from_env() -> Result<Self, EicError> {
        let var = |names: [&'static str; 2]| {
            names.into_iter().find_map(|name| {
                std::env::var(name)
                    .ok()
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (name, v))
            })
        };
        let proxy = var(["https_proxy", "HTTPS_PROXY"]);
        let no_proxy = var(["no_proxy", "NO_PROXY"]);
        match proxy {
            Some((name, value)) => Self::new(
                Some((name, &value)),
                no_proxy.as_ref().map(|(_, v)| v.as_str()),
            ),
            None => Ok(Self::direct()),
        }
    }

    /// Builds settings from explicit values. `proxy` is `(origin, url)`, where `origin` names the
    /// setting in error messages (the URL itself may hold a password and is never echoed).
    pub fn new(proxy: Option<(&str, &str)>, no_proxy: Option<&str>) -> Result<Self, EicError> {
        let proxy = proxy
            .map(|(origin, url)| ProxyUrl::parse(origin, url))
            .transpose()?;
        Ok(Self {
            proxy,
            no_proxy: NoProxy::parse(no_proxy.unwrap_or_default()),
        })
    }

    /// The proxy to use for `host:port`, or `None` to connect directly.
    pub fn proxy_for(&self, host: &str, port: u16) -> Option<&ProxyUrl> {
        self.proxy
            .as_ref()
            .filter(|_| !self.no_proxy.matches(host, port))
    }
}

impl fmt::Debug for ProxySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxySettings")
            .field("proxy", &self.proxy)
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

/// An `http://[user:password@]host[:port]` proxy. Its `Debug`/`Display` hide the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    host: String,
    port: u16,
    /// `user:password`, percent-decoded, ready for Basic auth.
    basic_auth: Option<String>,
}

impl ProxyUrl {
    /// Parses a proxy URL; a missing scheme means `http://`, a missing port means 80.
    pub fn parse(origin: &str, url: &str) -> Result<Self, EicError> {
        let invalid = |reason: &str| EicError::InvalidProxy {
            origin: origin.to_owned(),
            reason: reason.to_owned(),
        };
        let url = url.trim();
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
                return Err(invalid(
                    "https:// proxies (TLS to the proxy) are not supported; use http://",
                ));
            }
            Some(_) => return Err(invalid("only http:// proxies are supported")),
            None => url,
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let (host, port) = split_host_port(host_port).map_err(invalid)?;
        if host.is_empty() {
            return Err(invalid("the proxy host is empty"));
        }
        let basic_auth = userinfo.map(|userinfo| {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
            format!("{}:{}", decode(user), decode(password))
        });
        Ok(Self {
            host: host.trim_end_matches('.').to_ascii_lowercase(),
            port: port.unwrap_or(80),
            basic_auth,
        })
    }

    /// The proxy's host (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sends `CONNECT target` on `stream` and checks for a 2xx reply. On success the stream is a
    /// raw tunnel to `target`.
    pub(crate) async fn connect_through(
        &self,
        stream: &mut TcpStream,
        target: &EndpointAddress,
    ) -> Result<(), EicError> {
        let target = target.host_port();
        let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        if let Some(credentials) = &self.basic_auth {
            let token = base64::engine::general_purpose::STANDARD.encode(credentials);
            request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
        }
        request.push_str(&format!(
            "User-Agent: {}\r\n\r\n",
            super::transport::USER_AGENT
        ));
        let proxy = self.to_string();
        let io_err = |source| EicError::Connect {
            target: format!("proxy {proxy}"),
            source,
        };
        stream.write_all(request.as_bytes()).await.map_err(io_err)?;

        let head = read_reply_head(stream).await.map_err(|e| match e {
            ReplyError::Io(source) => EicError::Connect {
                target: format!("proxy {proxy}"),
                source,
            },
            ReplyError::Protocol(reason) => EicError::ProxyProtocol {
                proxy: proxy.clone(),
                reason,
            },
        })?;
        let (status, reason) = parse_status_line(&head).ok_or_else(|| EicError::ProxyProtocol {
            proxy: proxy.clone(),
            reason: "the reply is not HTTP/1.x".into(),
        })?;
        if !(200..300).contains(&status) {
            return Err(EicError::ProxyRejected {
                proxy,
                target,
                status,
                reason,
            });
        }
        Ok(())
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(
            f,
            "http://{}{host}:{}",
            if self.basic_auth.is_some() {
                "<credentials>@"
            } else {
                ""
            },
            self.port
        )
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

enum ReplyError {
    Io(std::io::Error),
    Protocol(String),
}

/// Reads the reply up to and including the blank line. The proxy may not send anything after
/// it: the next bytes on a CONNECT tunnel come from the target, and both TLS and a WebSocket
/// client speak first, so a byte past the head is a broken proxy, not data to keep.
async fn read_reply_head(stream: &mut TcpStream) -> Result<String, ReplyError> {
    let mut head = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(ReplyError::Io)?;
        if n == 0 {
            return Err(ReplyError::Protocol(
                "the proxy closed the connection before replying".into(),
            ));
        }
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let status = parse_status_line(&String::from_utf8_lossy(&head)).map(|(s, _)| s);
            // Extra bytes after a refusal are its body; after a success they would be target data.
            if end + 4 != head.len() && status.is_some_and(|s| (200..300).contains(&s)) {
                return Err(ReplyError::Protocol(
                    "data arrived from the target before TLS started".into(),
                ));
            }
            head.truncate(end);
            return Ok(String::from_utf8_lossy(&head).into_owned());
        }
        if head.len() > MAX_REPLY_HEAD {
            return Err(ReplyError::Protocol(
                "the reply head is longer than 16 KiB".into(),
            ));
        }
    }
}

/// `HTTP/1.x 200 Connection established` → `(200, "Connection established")`.
fn parse_status_line(head: &str) -> Option<(u16, String)> {
    let line = head.lines().next()?;
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let status = parts
        .next()?
        .parse::<u16>()
        .ok()
        .filter(|s| (100..1000).contains(s))?;
    let reason = parts.next().unwrap_or_default().trim();
    Some((status, super::error::scrub(reason)))
}

/// Parsed `NO_PROXY`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    everything: bool,
    rules: Vec<NoProxyRule>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum NoProxyRule {
    /// `example.com` (and subdomains), or only subdomains when `subdomains_only`.
    Domain {
        name: String,
        subdomains_only: bool,
        port: Option<u16>,
    },
    /// An IP address or CIDR block.
    Net {
        addr: IpAddr,
        prefix: u8,
        port: Option<u16>,
    },
}

impl NoProxy {
    /// Parses a `NO_PROXY` value. Entries that make no sense are skipped rather than failing the
    /// whole list, as other tools do.
    pub fn parse(value: &str) -> Self {
        let mut parsed = Self::default();
        for entry in value
            .split([',', ' ', '\t', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let entry = entry.to_ascii_lowercase();
            if entry == "*" {
                parsed.everything = true;
            } else if let Some(rule) = parse_rule(&entry) {
                parsed.rules.push(rule);
            }
        }
        parsed
    }

    /// Whether `host:port` bypasses the proxy.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.everything {
            return true;
        }
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        self.rules.iter().any(|rule| match rule {
            NoProxyRule::Domain {
                name,
                subdomains_only,
                port: rule_port,
            } => {
                rule_port.is_none_or(|p| p == port)
                    && ip.is_none()
                    && (host.ends_with(&format!(".{name}")) || (!subdomains_only && host == *name))
            }
            NoProxyRule::Net {
                addr,
                prefix,
                port: rule_port,
            } => {
                rule_port.is_none_or(|p| p == port)
                    && ip.is_some_and(|ip| in_net(ip, *addr, *prefix))
            }
        })
    }
}

impl fmt::Debug for NoProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoProxy")
            .field("everything", &self.everything)
            .field("rules", &self.rules)
            .finish()
    }
}

fn parse_rule(entry: &str) -> Option<NoProxyRule> {
    if let Some((addr, prefix)) = entry.split_once('/') {
        let addr = addr
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok()?;
        let prefix = prefix.parse::<u8>().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        return (prefix <= max).then_some(NoProxyRule::Net {
            addr,
            prefix,
            port: None,
        });
    }
    let (host, port) = split_host_port(entry).ok()?;
    if let Ok(addr) = host.parse::<IpAddr>() {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        return Some(NoProxyRule::Net { addr, prefix, port });
    }
    let (name, subdomains_only) = match host.strip_prefix("*.").or_else(|| host.strip_prefix('.')) {
        Some(rest) => (rest, true),
        None => (host, false),
    };
    let name = name.trim_end_matches('.');
    (!name.is_empty() && !name.contains('*')).then(|| NoProxyRule::Domain {
        name: name.to_owned(),
        subdomains_only,
        port,
    })
}

fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bypass(no_proxy: &str, host: &str, port: u16) -> bool {
        NoProxy::parse(no_proxy).matches(host, port)
    }

    #[test]
    fn domain_matches_itself_and_subdomains_on_label_boundaries() {
        let list = "amazonaws.com";
        assert!(bypass(list, "amazonaws.com", 443));
        assert!(bypass(
            list,
            "eice-1.ec2-instance-connect-endpoint.us-east-1.amazonaws.com",
            443
        ));
        assert!(bypass(list, "EICE-1.AmazonAWS.com.", 443));
        assert!(
            !bypass(list, "notamazonaws.com", 443),
            "suffix must start at a dot"
        );
        assert!(!bypass(list, "amazonaws.com.evil.net", 443));
    }

    #[test]
    fn leading_dot_or_star_dot_means_subdomains_only() {
        for list in [".example.com", "*.example.com"] {
            assert!(bypass(list, "a.example.com", 443), "{list}");
            assert!(bypass(list, "b.a.example.com", 443), "{list}");
            assert!(!bypass(list, "example.com", 443), "{list}");
            assert!(!bypass(list, "badexample.com", 443), "{list}");
        }
    }

    #[test]
    fn star_bypasses_everything() {
        assert!(bypass("*", "anything.example", 1));
        assert!(bypass("foo.com, *", "10.1.2.3", 443));
    }

    #[test]
    fn ip_and_cidr_entries_match_ip_literals_only() {
        let list = "10.0.0.0/8, 192.168.1.7, ::1, [fd00::]/8";
        assert!(bypass(list, "10.200.3.4", 443));
        assert!(bypass(list, "192.168.1.7", 443));
        assert!(!bypass(list, "192.168.1.8", 443));
        assert!(bypass(list, "::1", 443));
        assert!(bypass(list, "[::1]", 443));
        assert!(bypass(list, "fd12:3456::1", 443));
        assert!(
            bypass(list, "::ffff:10.9.9.9", 443),
            "IPv4-mapped addresses match IPv4 rules"
        );
        assert!(!bypass(list, "11.0.0.1", 443));
        assert!(
            !bypass("10.0.0.1", "ten.example.com", 443),
            "names are never resolved"
        );
        assert!(!bypass("example.com", "93.184.216.34", 443));
    }

    #[test]
    fn ports_restrict_an_entry() {
        assert!(bypass("example.com:8443", "example.com", 8443));
        assert!(!bypass("example.com:8443", "example.com", 443));
        assert!(bypass("127.0.0.1:9000", "127.0.0.1", 9000));
        assert!(!bypass("127.0.0.1:9000", "127.0.0.1", 9001));
        assert!(bypass("[::1]:9000", "::1", 9000));
    }

    #[test]
    fn separators_whitespace_case_and_junk() {
        let list = "  Foo.COM ,bar.org\tbaz.net,,, 300.1.1.1/99 ,*.";
        assert!(bypass(list, "foo.com", 1));
        assert!(bypass(list, "x.bar.org", 1));
        assert!(bypass(list, "baz.net", 1));
        assert!(!bypass(list, "other.io", 1));
        assert!(!bypass("", "foo.com", 1));
    }

    #[test]
    fn proxy_urls_parse_with_defaults_and_decoded_basic_auth() {
        let p = ProxyUrl::parse("HTTPS_PROXY", "http://us%40er:p%3Ass@proxy.corp:3128/").unwrap();
        assert_eq!((p.host(), p.port()), ("proxy.corp", 3128));
        assert_eq!(p.basic_auth.as_deref(), Some("us@er:p:ss"));
        let bare = ProxyUrl::parse("HTTPS_PROXY", "proxy.corp").unwrap();
        assert_eq!(
            (bare.host(), bare.port(), bare.basic_auth.clone()),
            ("proxy.corp", 80, None)
        );
        let v6 = ProxyUrl::parse("HTTPS_PROXY", "http://[::1]:8080").unwrap();
        assert_eq!((v6.host(), v6.port()), ("::1", 8080));
        assert_eq!(v6.to_string(), "http://[::1]:8080");
    }

    #[test]
    fn proxy_display_and_errors_never_show_the_password() {
        let p = ProxyUrl::parse("HTTPS_PROXY", "http://user:hunter2@proxy:3128").unwrap();
        assert_eq!(p.to_string(), "http://<credentials>@proxy:3128");
        assert!(!format!("{p:?}").contains("hunter2"));
        let settings = ProxySettings::new(
            Some(("HTTPS_PROXY", "http://user:hunter2@proxy:3128")),
            None,
        )
        .unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
        let err = ProxyUrl::parse("HTTPS_PROXY", "socks5://user:hunter2@proxy:1080").unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains("HTTPS_PROXY") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn unsupported_or_broken_proxy_urls_are_errors() {
        for bad in [
            "https://proxy:443",
            "socks5://proxy:1080",
            "http://proxy:notaport",
            "http://:3128",
            "http://[::1",
        ] {
            assert!(
                matches!(
                    ProxyUrl::parse("p", bad),
                    Err(EicError::InvalidProxy { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn settings_choose_the_proxy_unless_bypassed() {
        let settings = ProxySettings::new(
            Some(("p", "http://proxy:3128")),
            Some("internal.corp,127.0.0.1"),
        )
        .unwrap();
        assert_eq!(
            settings
                .proxy_for("eice.amazonaws.com", 443)
                .map(ProxyUrl::port),
            Some(3128)
        );
        assert!(settings.proxy_for("api.internal.corp", 443).is_none());
        assert!(settings.proxy_for("127.0.0.1", 8443).is_none());
        assert!(
            ProxySettings::direct()
                .proxy_for("eice.amazonaws.com", 443)
                .is_none()
        );
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            parse_status_line("HTTP/1.1 200 Connection established"),
            Some((200, "Connection established".into()))
        );
        assert_eq!(
            parse_status_line("HTTP/1.0 407 Proxy Authentication Required\r\nX: y"),
            Some((407, "Proxy Authentication Required".into()))
        );
        assert_eq!(
            parse_status_line("HTTP/1.1 200"),
            Some((200, String::new()))
        );
        assert_eq!(parse_status_line("SSH-2.0-OpenSSH"), None);
        assert_eq!(parse_status_line("HTTP/1.1 abc nope"), None);
    }
}
