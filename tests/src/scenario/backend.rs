//! What answers on a simulated instance's port when a tunnel reaches it.
//!
//! An instance is only data, so each port that should answer names a real local service:
//! `sshd` (a real OpenSSH server started on first use, see `crate::sshd`), `echo` (every byte
//! sent back, for transport tests) or `tcp:HOST:PORT` (any service already listening, such as
//! an RDP server). A port with no backend refuses connections, as a port with nothing
//! listening does.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A real OpenSSH `sshd` for this instance whose authorized keys are the ones pushed with
    /// `SendSSHPublicKey` in the last 60 seconds.
    Sshd,
    /// Sends every byte back.
    Echo,
    /// Forwards to a service listening at this address.
    Tcp(SocketAddr),
}

impl FromStr for Backend {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "sshd" => Ok(Backend::Sshd),
            "echo" => Ok(Backend::Echo),
            other => other
                .strip_prefix("tcp:")
                .and_then(|address| address.parse().ok())
                .map(Backend::Tcp)
                .ok_or_else(|| {
                    format!(
                        "`{other}` is not a backend; use \"sshd\", \"echo\" or \"tcp:127.0.0.1:PORT\""
                    )
                }),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Sshd => f.write_str("sshd"),
            Backend::Echo => f.write_str("echo"),
            Backend::Tcp(address) => write!(f, "tcp:{address}"),
        }
    }
}

/// An instance's backends by port: `backends = { 22 = "sshd", 3389 = "echo" }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backends(BTreeMap<u16, Backend>);

impl Backends {
    pub fn get(&self, port: u16) -> Option<Backend> {
        self.0.get(&port).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u16, Backend)> + '_ {
        self.0.iter().map(|(port, backend)| (*port, *backend))
    }
}

impl<'de> Deserialize<'de> for Backends {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // TOML table keys are strings, so ports arrive as "22".
        let raw = BTreeMap::<String, String>::deserialize(deserializer)?;
        raw.into_iter()
            .map(|(port, backend)| {
                let port = port
                    .parse::<u16>()
                    .ok()
                    .filter(|port| *port > 0)
                    .ok_or_else(|| format!("`{port}` is not a TCP port number"))?;
                Ok((port, backend.parse()?))
            })
            .collect::<Result<_, String>>()
            .map(Backends)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        backends: Backends,
    }

    #[test]
    fn backends_parse_by_port() {
        let holder: Holder = toml::from_str(
            r#"backends = { 22 = "sshd", 3389 = "echo", 80 = "tcp:127.0.0.1:8080" }"#,
        )
        .expect("parses");
        assert_eq!(holder.backends.get(22), Some(Backend::Sshd));
        assert_eq!(holder.backends.get(3389), Some(Backend::Echo));
        assert_eq!(
            holder.backends.get(80),
            Some(Backend::Tcp("127.0.0.1:8080".parse().expect("address")))
        );
        assert_eq!(holder.backends.get(443), None);
    }

    #[test]
    fn a_bad_port_or_backend_is_named() {
        let error = toml::from_str::<Holder>(r#"backends = { ssh = "sshd" }"#)
            .err()
            .expect("refused")
            .to_string();
        assert!(error.contains("`ssh` is not a TCP port number"), "{error}");
        let error = toml::from_str::<Holder>(r#"backends = { 22 = "telnetd" }"#)
            .err()
            .expect("refused")
            .to_string();
        assert!(error.contains("`telnetd` is not a backend"), "{error}");
    }
}
