//! The data channel's `StreamUrl` (spec §1.1, §2): where the WebSocket connects.
//!
//! The service returns it with StartSession and the driver uses it verbatim for every
//! reconnect (the plugin ignores the URL ResumeSession returns, and so do we). It is treated
//! as opaque except for the host, which is validated once here the way EIC endpoints are:
//! `wss://` anywhere, plain `ws://` only to loopback (the simulator and tests). The query may
//! carry routing data (`cell-number=…`), so `Debug` shows only scheme, host and path, and the
//! full text is reachable only through [`StreamUrl::expose_secret`].

use std::fmt;

use crate::eic::EndpointAddress;

/// A validated `wss://…/v1/data-channel/<session id>?…` URL.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamUrl {
    text: String,
    endpoint: EndpointAddress,
    /// Byte range of the path (without the query) in `text`, for `Debug`.
    path: std::ops::Range<usize>,
}

impl StreamUrl {
    /// Parses and validates a StreamUrl; the error says what is wrong without echoing it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (scheme, rest) = text
            .split_once("://")
            .ok_or("it has no scheme (expected wss://)")?;
        if !scheme.eq_ignore_ascii_case("wss") && !scheme.eq_ignore_ascii_case("ws") {
            return Err(format!("its scheme is {scheme:?}, expected wss"));
        }
        let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_len];
        if authority.contains('@') {
            return Err("it carries user information".into());
        }
        let endpoint = EndpointAddress::parse(&format!("{scheme}://{authority}"))
            .map_err(|e| e.to_string())?;
        let path_start = scheme.len() + 3 + authority_len;
        let path_end = text[path_start..]
            .find(['?', '#'])
            .map_or(text.len(), |i| path_start + i);
        Ok(StreamUrl {
            text: text.to_owned(),
            endpoint,
            path: path_start..path_end,
        })
    }

    /// Where to open the TCP/TLS connection.
    pub fn endpoint(&self) -> &EndpointAddress {
        &self.endpoint
    }

    /// The whole URL, for the WebSocket upgrade request and nothing else.
    pub fn expose_secret(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for StreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.endpoint, &self.text[self.path.clone()])?;
        if self.path.end < self.text.len() {
            f.write_str("?<redacted>")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_url_keeps_its_text_and_hides_its_query() {
        let url = StreamUrl::parse(
            "wss://ssmmessages.eu-west-1.amazonaws.com/v1/data-channel/alice-0abc?role=publish_subscribe&cell-number=AAEAAQ",
        )
        .unwrap();
        assert_eq!(url.endpoint().host(), "ssmmessages.eu-west-1.amazonaws.com");
        assert_eq!(url.endpoint().port(), 443);
        assert!(url.expose_secret().ends_with("cell-number=AAEAAQ"));
        assert_eq!(
            format!("{url:?}"),
            "wss://ssmmessages.eu-west-1.amazonaws.com/v1/data-channel/alice-0abc?<redacted>"
        );
    }

    #[test]
    fn plain_ws_is_accepted_for_loopback_only() {
        let url = StreamUrl::parse("ws://127.0.0.1:4567/v1/data-channel/s-1").unwrap();
        assert!(!url.endpoint().uses_tls());
        assert_eq!(
            format!("{url:?}"),
            "ws://127.0.0.1:4567/v1/data-channel/s-1"
        );
        let refused =
            StreamUrl::parse("ws://ssmmessages.us-east-1.amazonaws.com/v1/x").unwrap_err();
        assert!(refused.contains("loopback"), "{refused}");
    }

    #[test]
    fn other_schemes_and_user_information_are_refused() {
        for bad in [
            "https://ssmmessages.us-east-1.amazonaws.com/v1/data-channel/s",
            "ssmmessages.us-east-1.amazonaws.com/v1/data-channel/s",
            "wss://user:pw@ssmmessages.us-east-1.amazonaws.com/v1/data-channel/s",
            "wss:///v1/data-channel/s",
        ] {
            assert!(StreamUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
