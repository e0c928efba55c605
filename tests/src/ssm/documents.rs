//! The Session Manager documents the simulator knows (spec §1.1 table), their parameters, and
//! the `Properties` the agent echoes in its handshake.
//!
//! | document | parameters (defaults) | session |
//! |---|---|---|
//! | `AWS-StartPortForwardingSession` | `portNumber` ("80"), `localPortNumber` ("0") | Port, `type` LocalPortForwarding |
//! | `AWS-StartPortForwardingSessionToRemoteHost` | `host` (required), `portNumber` ("80"), `localPortNumber` ("0") | Port, `type` LocalPortForwarding |
//! | `AWS-StartSSHSession` | `portNumber` ("22") | Port, no `type`: one byte stream |
//! | none / `SSM-SessionManagerRunShell` | none | `Standard_Stream` (a shell) |
//!
//! Values arrive as lists of strings; each of these parameters takes exactly one. Ports must
//! be decimal numbers without leading zeros (1–65535; a local port may be 0, "any").

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::error::AwsError;

pub const PORT_FORWARDING: &str = "AWS-StartPortForwardingSession";
pub const PORT_FORWARDING_TO_REMOTE_HOST: &str = "AWS-StartPortForwardingSessionToRemoteHost";
pub const SSH: &str = "AWS-StartSSHSession";
/// The default shell document, used when `DocumentName` is omitted.
pub const RUN_SHELL: &str = "SSM-SessionManagerRunShell";

/// What a session does once its data channel is open.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionKind {
    /// A `Port` session to `host` (the instance itself when `None`) on `port`.
    Port {
        host: Option<String>,
        port: u16,
        /// `type` is `LocalPortForwarding`: mux or basic forwarding; otherwise (SSH) one
        /// byte stream whose end ends the session.
        local_port_forwarding: bool,
        /// What the handshake's `SessionType` action carries.
        properties: Value,
    },
    /// `Standard_Stream`: an interactive shell, no handshake.
    Shell,
}

impl SessionKind {
    /// The document a session runs and its parameters as StartSession received them.
    pub fn from_request(
        document: Option<&str>,
        parameters: &BTreeMap<String, Vec<String>>,
    ) -> Result<SessionKind, AwsError> {
        let document = document.unwrap_or(RUN_SHELL);
        let allowed: &[&str] = match document {
            PORT_FORWARDING => &["portNumber", "localPortNumber"],
            PORT_FORWARDING_TO_REMOTE_HOST => &["host", "portNumber", "localPortNumber"],
            SSH => &["portNumber"],
            RUN_SHELL => &[],
            other => {
                return Err(AwsError::bad_request(
                    "InvalidDocument",
                    format!("Document with name {other} does not exist."),
                ));
            }
        };
        let unknown: Vec<&str> = parameters
            .keys()
            .map(String::as_str)
            .filter(|name| !allowed.contains(name))
            .collect();
        if !unknown.is_empty() {
            return Err(invalid_parameters(format!(
                "Parameters [{}] are not defined in document {document}.",
                unknown.join(", ")
            )));
        }
        let value = |name: &str, default: Option<&str>| -> Result<Option<String>, AwsError> {
            match parameters.get(name).map(Vec::as_slice) {
                None | Some([]) => Ok(default.map(str::to_owned)),
                Some([one]) => Ok(Some(one.clone())),
                Some(_) => Err(invalid_parameters(format!(
                    "Parameter \"{name}\" of document {document} takes exactly one value."
                ))),
            }
        };
        match document {
            RUN_SHELL => Ok(SessionKind::Shell),
            SSH => {
                let port = value("portNumber", Some("22"))?.unwrap_or_default();
                Ok(SessionKind::Port {
                    host: None,
                    port: port_number("portNumber", &port, false)?,
                    local_port_forwarding: false,
                    properties: json!({"portNumber": port}),
                })
            }
            _ => {
                let port = value("portNumber", Some("80"))?.unwrap_or_default();
                let local = value("localPortNumber", Some("0"))?.unwrap_or_default();
                let port_number = port_number("portNumber", &port, false)?;
                port_number_or_zero(&local)?;
                if document == PORT_FORWARDING {
                    return Ok(SessionKind::Port {
                        host: None,
                        port: port_number,
                        local_port_forwarding: true,
                        properties: json!({
                            "portNumber": port,
                            "type": "LocalPortForwarding",
                            "localPortNumber": local,
                        }),
                    });
                }
                let host = value("host", None)?.ok_or_else(|| {
                    invalid_parameters(format!(
                        "Parameter \"host\" is required by document {document}."
                    ))
                })?;
                if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(invalid_parameters(format!(
                        "Parameter \"host\" value \"{host}\" is not a host name or address."
                    )));
                }
                Ok(SessionKind::Port {
                    properties: json!({
                        "host": host,
                        "localPortNumber": local,
                        "portNumber": port,
                        "type": "LocalPortForwarding",
                    }),
                    host: Some(host),
                    port: port_number,
                    local_port_forwarding: true,
                })
            }
        }
    }
}

fn invalid_parameters(message: String) -> AwsError {
    AwsError::bad_request("InvalidParameters", message)
}

/// A port parameter: 1–65535 written without leading zeros.
fn port_number(name: &str, text: &str, zero_allowed: bool) -> Result<u16, AwsError> {
    let canonical = text.bytes().all(|b| b.is_ascii_digit())
        && !text.is_empty()
        && (text == "0" || !text.starts_with('0'));
    match text.parse::<u16>() {
        Ok(port) if canonical && (port > 0 || zero_allowed) => Ok(port),
        _ => Err(invalid_parameters(format!(
            "Parameter \"{name}\" value \"{text}\" is not a valid port number."
        ))),
    }
}

fn port_number_or_zero(text: &str) -> Result<u16, AwsError> {
    port_number("localPortNumber", text, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
            .collect()
    }

    fn code(result: Result<SessionKind, AwsError>) -> &'static str {
        result.expect_err("refused").code
    }

    #[test]
    fn port_forwarding_defaults_and_properties() {
        let kind = SessionKind::from_request(Some(PORT_FORWARDING), &params(&[])).expect("valid");
        assert_eq!(
            kind,
            SessionKind::Port {
                host: None,
                port: 80,
                local_port_forwarding: true,
                properties: json!({"portNumber": "80", "type": "LocalPortForwarding", "localPortNumber": "0"}),
            }
        );
        let ssh = SessionKind::from_request(Some(SSH), &params(&[])).expect("valid");
        assert!(matches!(
            ssh,
            SessionKind::Port { port: 22, local_port_forwarding: false, ref properties, .. }
                if properties == &json!({"portNumber": "22"})
        ));
        assert_eq!(
            SessionKind::from_request(None, &params(&[])).expect("valid"),
            SessionKind::Shell
        );
    }

    #[test]
    fn remote_host_sessions_need_a_host() {
        let kind = SessionKind::from_request(
            Some(PORT_FORWARDING_TO_REMOTE_HOST),
            &params(&[("host", &["10.10.1.21"]), ("portNumber", &["22"])]),
        )
        .expect("valid");
        assert!(
            matches!(kind, SessionKind::Port { host: Some(ref h), port: 22, .. } if h == "10.10.1.21")
        );
        assert_eq!(
            code(SessionKind::from_request(
                Some(PORT_FORWARDING_TO_REMOTE_HOST),
                &params(&[("portNumber", &["22"])])
            )),
            "InvalidParameters"
        );
    }

    #[test]
    fn bad_documents_and_parameters_are_refused() {
        assert_eq!(
            code(SessionKind::from_request(
                Some("AWS-NoSuchDocument"),
                &params(&[])
            )),
            "InvalidDocument"
        );
        for bad in [
            params(&[("portNumber", &["0"])]),
            params(&[("portNumber", &["65536"])]),
            params(&[("portNumber", &["022"])]),
            params(&[("portNumber", &["ssh"])]),
            params(&[("portNumber", &["22", "23"])]),
            params(&[("localPortNumber", &["-1"])]),
            params(&[("remotePort", &["22"])]),
        ] {
            assert_eq!(
                code(SessionKind::from_request(Some(PORT_FORWARDING), &bad)),
                "InvalidParameters",
                "{bad:?}"
            );
        }
        assert_eq!(
            code(SessionKind::from_request(
                None,
                &params(&[("portNumber", &["22"])])
            )),
            "InvalidParameters"
        );
    }
}
