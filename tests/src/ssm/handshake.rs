//! The agent's half of the session handshake (spec §6) and the version rules by which it picks
//! a port session's data plane (spec §7.1, agent side).
//!
//! Port sessions always start with a handshake: the agent sends a HandshakeRequest with its
//! version and a `SessionType` action carrying the document's properties, waits up to 15 s for
//! the client's HandshakeResponse, cancels the session if any processed action is not a
//! success, and otherwise answers HandshakeComplete. The client's `ClientVersion` then decides,
//! together with what this agent version supports, between smux and basic forwarding and
//! whether smux keepalive runs. Shell sessions have no handshake (no KMS here).

use std::cmp::Ordering;
use std::time::Duration;

use serde_json::{Value, json};

/// How long the agent waits for the HandshakeResponse ("Handshake timed out").
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// The agent's reason when the client does not answer in time (spec §6.1).
pub const TIMED_OUT: &str = "Handshake timed out. Please ensure that you have the latest version of the session manager plugin.";

/// The HandshakeRequest payload (§4.3): the agent's version and one `SessionType` action.
pub fn request(agent_version: &str, session_type: &str, properties: &Value) -> Vec<u8> {
    json!({
        "AgentVersion": agent_version,
        "RequestedClientActions": [{
            "ActionType": "SessionType",
            "ActionParameters": {"SessionType": session_type, "Properties": properties},
        }],
    })
    .to_string()
    .into_bytes()
}

/// The HandshakeComplete payload: the time the handshake took, in nanoseconds (Go
/// `time.Duration`), and no customer message (that is for KMS sessions).
pub fn complete(took: Duration) -> Vec<u8> {
    let nanos = i64::try_from(took.as_nanos()).unwrap_or(i64::MAX);
    json!({"HandshakeTimeToComplete": nanos, "CustomerMessage": ""})
        .to_string()
        .into_bytes()
}

/// What the client answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub client_version: String,
}

/// Reads a HandshakeResponse. `Err` is the reason to cancel the session: unreadable JSON, or a
/// processed action whose `ActionStatus` is not 1 (Success).
pub fn parse_response(payload: &[u8]) -> Result<Response, String> {
    let response: Value = serde_json::from_slice(payload)
        .map_err(|error| format!("The handshake response is not valid JSON: {error}"))?;
    let client_version = response
        .get("ClientVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let actions = response
        .get("ProcessedClientActions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let failures: Vec<String> = actions
        .iter()
        .filter(|action| action.get("ActionStatus").and_then(Value::as_i64) != Some(1))
        .map(|action| {
            let kind = action
                .get("ActionType")
                .and_then(Value::as_str)
                .unwrap_or("an action");
            match action.get("Error").and_then(Value::as_str) {
                Some(error) if !error.is_empty() => format!("{kind}: {error}"),
                _ => format!("{kind} was not processed successfully"),
            }
        })
        .collect();
    if failures.is_empty() {
        Ok(Response { client_version })
    } else {
        Err(format!(
            "The client failed the session handshake: {}",
            failures.join("; ")
        ))
    }
}

/// The data plane of a `LocalPortForwarding` port session, as the agent decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortMode {
    /// An smux v1 server; `keepalive` says whether it sends NOPs and times out without frames.
    Mux { keepalive: bool },
    /// One destination connection at a time.
    Basic,
}

/// §7.1: mux when the client is at least `1.1.70` — and the agent has smux at all (newer than
/// `3.0.196.0`); keepalive off when the client is newer than `1.2.331.0` and the agent newer
/// than `3.1.1511.0` (older smux agents run keepalive regardless).
pub fn port_mode(agent_version: &str, client_version: &str) -> PortMode {
    let agent_has_mux = compare(agent_version, "3.0.196.0") == Ordering::Greater;
    if !agent_has_mux || compare(client_version, "1.1.70") == Ordering::Less {
        return PortMode::Basic;
    }
    let keepalive_off = compare(agent_version, "3.1.1511.0") == Ordering::Greater
        && compare(client_version, "1.2.331.0") == Ordering::Greater;
    PortMode::Mux {
        keepalive: !keepalive_off,
    }
}

/// Whether an agent of this version understands the TerminateSession flag (agents up to
/// `2.3.722.0` do not; their clients must call the TerminateSession API, §7.1).
pub fn understands_terminate_flag(agent_version: &str) -> bool {
    compare(agent_version, "2.3.722.0") == Ordering::Greater
}

/// The agent's `versionutil.Compare` for dotted versions: component by component, numerically
/// where both components are numbers, otherwise as text; a missing component counts as `0`.
pub fn compare(a: &str, b: &str) -> Ordering {
    let mut left = a.trim().split('.');
    let mut right = b.trim().split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (l, r) => {
                let (l, r) = (l.unwrap_or("0"), r.unwrap_or("0"));
                let order = match (l.parse::<u64>(), r.parse::<u64>()) {
                    (Ok(l), Ok(r)) => l.cmp(&r),
                    _ => l.cmp(r),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_carries_the_version_and_the_documents_properties() {
        let properties = json!({"portNumber": "22"});
        let request: Value =
            serde_json::from_slice(&request("3.3.1142.0", "Port", &properties)).expect("JSON");
        assert_eq!(request["AgentVersion"], "3.3.1142.0");
        let action = &request["RequestedClientActions"][0];
        assert_eq!(action["ActionType"], "SessionType");
        assert_eq!(action["ActionParameters"]["SessionType"], "Port");
        assert_eq!(action["ActionParameters"]["Properties"], properties);
    }

    #[test]
    fn a_response_with_a_failed_or_unsupported_action_cancels() {
        let ok = br#"{"ClientVersion":"1.2.650.0","ProcessedClientActions":[{"ActionType":"SessionType","ActionStatus":1,"ActionResult":null,"Error":""}],"Errors":null}"#;
        assert_eq!(
            parse_response(ok),
            Ok(Response {
                client_version: "1.2.650.0".into()
            })
        );
        let failed = br#"{"ClientVersion":"1.2.650.0","ProcessedClientActions":[{"ActionType":"SessionType","ActionStatus":2,"Error":"Unknown session type Port"}]}"#;
        let reason = parse_response(failed).expect_err("cancelled");
        assert!(
            reason.contains("SessionType: Unknown session type Port"),
            "{reason}"
        );
        let plugin_bug = br#"{"ClientVersion":"1.2.0.0","ProcessedClientActions":[{"ActionType":"X","ActionResult":3,"ActionStatus":0}]}"#;
        assert!(parse_response(plugin_bug).is_err());
        assert!(parse_response(b"not json").is_err());
    }

    #[test]
    fn versions_compare_component_by_component() {
        assert_eq!(compare("1.2.650.0", "1.1.70"), Ordering::Greater);
        assert_eq!(compare("1.1.70", "1.1.70.0"), Ordering::Equal);
        assert_eq!(compare("0.0.1", "1.1.70"), Ordering::Less);
        assert_eq!(compare("3.0.196.0", "3.0.196.0"), Ordering::Equal);
        assert_eq!(compare("3.1.1511.0", "3.1.999.0"), Ordering::Greater);
    }

    #[test]
    fn the_agent_picks_its_data_plane_from_both_versions() {
        assert_eq!(
            port_mode("3.3.1142.0", "1.2.650.0"),
            PortMode::Mux { keepalive: false }
        );
        // A plugin built from source reports 1.2.0.0: keepalive stays on (spec §7.1).
        assert_eq!(
            port_mode("3.3.1142.0", "1.2.0.0"),
            PortMode::Mux { keepalive: true }
        );
        assert_eq!(
            port_mode("3.1.1511.0", "1.2.650.0"),
            PortMode::Mux { keepalive: true }
        );
        assert_eq!(port_mode("3.3.1142.0", "0.0.1"), PortMode::Basic);
        assert_eq!(port_mode("3.0.196.0", "1.2.650.0"), PortMode::Basic);
        assert!(understands_terminate_flag("3.0.196.0"));
        assert!(!understands_terminate_flag("2.3.722.0"));
    }
}
