//! Which port-forwarding data plane to run, decided from the handshake (spec §7.1).
//!
//! Client and agent decide independently and must agree. The agent decides from our
//! [`CLIENT_VERSION`](super::handshake::CLIENT_VERSION) (which makes it choose smux with keepalive
//! off whenever it supports smux); we decide from its `AgentVersion` with the plugin's rules:
//! four numeric components, *strictly greater* comparisons, and any parse problem means "older".

use serde_json::Value;

/// An agent version of exactly four numeric components, as the plugin compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AgentVersion([u64; 4]);

impl AgentVersion {
    /// `None` unless the text is exactly four dot-separated numbers.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = [0u64; 4];
        let mut components = text.split('.');
        for part in &mut parts {
            let component = components.next()?;
            if component.is_empty() || !component.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            *part = component.parse().ok()?;
        }
        components.next().is_none().then_some(AgentVersion(parts))
    }

    fn is_newer_than(text: &str, threshold: [u64; 4]) -> bool {
        AgentVersion::parse(text).is_some_and(|version| version > AgentVersion(threshold))
    }
}

/// Agents newer than this run an smux server for `LocalPortForwarding`.
const MUX_AFTER: [u64; 4] = [3, 0, 196, 0];
/// Agents newer than this turn smux keepalive off for clients newer than 1.2.331.0 (us).
const MUX_KEEPALIVE_OFF_AFTER: [u64; 4] = [3, 1, 1511, 0];
/// Agents newer than this understand the in-band TerminateSession flag in basic mode.
const TERMINATE_FLAG_AFTER: [u64; 4] = [2, 3, 722, 0];

/// The data plane of a `Port` session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortForwarding {
    /// No `type` property (e.g. `AWS-StartSSHSession`): one byte stream, stdin/stdout style.
    Stream,
    /// One TCP connection at a time; local close is signalled with the DisconnectToPort flag.
    Basic {
        /// Whether the agent understands the TerminateSession flag; otherwise the session must
        /// be ended with the TerminateSession API.
        terminate_flag_supported: bool,
    },
    /// smux v1 over the data channel, one stream per local TCP connection.
    Mux {
        /// Whether the agent's smux server expects keepalive NOPs (and times out without them).
        smux_keepalive: bool,
    },
}

impl PortForwarding {
    /// Decides from the handshake's `AgentVersion` and the session type's `Properties`.
    pub fn choose(agent_version: &str, properties: &Value) -> Self {
        if properties.get("type").and_then(Value::as_str) != Some("LocalPortForwarding") {
            PortForwarding::Stream
        } else if AgentVersion::is_newer_than(agent_version, MUX_AFTER) {
            PortForwarding::Mux {
                smux_keepalive: !AgentVersion::is_newer_than(
                    agent_version,
                    MUX_KEEPALIVE_OFF_AFTER,
                ),
            }
        } else {
            PortForwarding::Basic {
                terminate_flag_supported: AgentVersion::is_newer_than(
                    agent_version,
                    TERMINATE_FLAG_AFTER,
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn local() -> Value {
        json!({"type": "LocalPortForwarding", "portNumber": "80"})
    }

    #[test]
    fn versions_need_exactly_four_numeric_components() {
        assert!(AgentVersion::parse("3.1.1732.0").is_some());
        for bad in [
            "3.1.1732",
            "3.1.1732.0.1",
            "3.1.x.0",
            "",
            "3..1.0",
            "3.1.-1.0",
            "3.1.+1.0",
        ] {
            assert_eq!(AgentVersion::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn modern_agents_get_mux_without_keepalive() {
        assert_eq!(
            PortForwarding::choose("3.1.1732.0", &local()),
            PortForwarding::Mux {
                smux_keepalive: false
            }
        );
    }

    #[test]
    fn agents_up_to_3_1_1511_0_get_mux_with_keepalive() {
        for version in ["3.1.1511.0", "3.0.196.1"] {
            assert_eq!(
                PortForwarding::choose(version, &local()),
                PortForwarding::Mux {
                    smux_keepalive: true
                },
                "{version}"
            );
        }
    }

    #[test]
    fn agents_up_to_3_0_196_0_get_basic_forwarding() {
        assert_eq!(
            PortForwarding::choose("3.0.196.0", &local()),
            PortForwarding::Basic {
                terminate_flag_supported: true
            }
        );
        assert_eq!(
            PortForwarding::choose("2.3.722.0", &local()),
            PortForwarding::Basic {
                terminate_flag_supported: false
            }
        );
    }

    #[test]
    fn an_unparsable_agent_version_counts_as_the_oldest() {
        assert_eq!(
            PortForwarding::choose("3.2", &local()),
            PortForwarding::Basic {
                terminate_flag_supported: false
            }
        );
    }

    #[test]
    fn sessions_without_the_local_port_forwarding_type_are_plain_streams() {
        assert_eq!(
            PortForwarding::choose("3.1.1732.0", &json!({"portNumber": "22"})),
            PortForwarding::Stream
        );
        assert_eq!(
            PortForwarding::choose("3.1.1732.0", &Value::Null),
            PortForwarding::Stream
        );
    }
}
