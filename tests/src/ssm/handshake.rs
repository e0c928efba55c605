//! The agent's half of the session handshake (spec §6) and the version rules by which it picks
//! a port session's data plane (spec §7.1, agent side).
//!
//! Port sessions always start with a handshake: the agent sends a HandshakeRequest with its
//! version and a `SessionType` action carrying the document's properties, waits up to 15 s for
//! the client's HandshakeResponse, cancels the session if any processed action is not a
//! success, and otherwise answers HandshakeComplete. The client's `ClientVersion` then decides,
//! together with what this agent version supports, between smux and basic forwarding and
//! whether smux keepalive runs. Shell sessions have a handshake only when the Session Manager
//! preferences name a KMS key (§6.3): then the request also carries a `KMSEncryption` action,
//! the agent decrypts the client's data key with `kms:Decrypt`, proves both sides hold it with
//! an encryption challenge, and encrypts the session with [`SessionCipher`].

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use aes_gcm::aead::{Aead as _, KeyInit as _};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use serde_json::{Value, json};

/// EncChallengeRequest (agent → client) and EncChallengeResponse (client → agent).
pub const ENC_CHALLENGE_REQUEST: u32 = 8;
pub const ENC_CHALLENGE_RESPONSE: u32 = 9;
/// The payload types the agent encrypts (Output, StdErr, ExitCode); the client encrypts only
/// Output.
pub const ENCRYPTED_FROM_AGENT: [u32; 3] = [1, 11, 12];

/// The customer message of a KMS-encrypted session's HandshakeComplete.
pub const ENCRYPTED_NOTICE: &str = "This session is encrypted using AWS KMS.";

/// The agent's reason when the client never answers the encryption challenge.
pub const CHALLENGE_TIMED_OUT: &str = "Timed out waiting for encryption challenge.";

/// The encryption context keys of the session's data key.
const CONTEXT_SESSION_ID: &str = "aws:ssm:SessionId";
const CONTEXT_TARGET_ID: &str = "aws:ssm:TargetId";
const CONTEXT_RANDOM_CHALLENGE: &str = "aws:ssm:RandomChallenge";

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
    complete_with_message(took, "")
}

/// HandshakeComplete with a customer message ([`ENCRYPTED_NOTICE`] for KMS sessions).
pub fn complete_with_message(took: Duration, customer_message: &str) -> Vec<u8> {
    let nanos = i64::try_from(took.as_nanos()).unwrap_or(i64::MAX);
    json!({"HandshakeTimeToComplete": nanos, "CustomerMessage": customer_message})
        .to_string()
        .into_bytes()
}

/// A shell's HandshakeRequest when the preferences name a KMS key: `SessionType`
/// `Standard_Stream` (properties `null`) and `KMSEncryption` with the key and the agent's
/// random challenge (16 random bytes, base64).
pub fn kms_request(agent_version: &str, key_id: &str, challenge: &str) -> Vec<u8> {
    json!({
        "AgentVersion": agent_version,
        "RequestedClientActions": [
            {
                "ActionType": "SessionType",
                "ActionParameters": {"SessionType": "Standard_Stream", "Properties": null},
            },
            {
                "ActionType": "KMSEncryption",
                "ActionParameters": {"KMSKeyId": key_id, "Challenge": challenge},
            },
        ],
    })
    .to_string()
    .into_bytes()
}

/// What the client answered to `KMSEncryption` (its processed action's `ActionResult`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsAnswer {
    /// The data key's ciphertext blob, for `kms:Decrypt`.
    pub ciphertext_key: Vec<u8>,
    /// Whether the client bound the random challenge into the data key's context.
    pub challenge_acknowledged: bool,
}

impl KmsAnswer {
    /// The encryption context the agent decrypts the data key with (`UpdateEncryptionKey`).
    pub fn encryption_context(
        &self,
        session_id: &str,
        instance_id: &str,
        challenge: &str,
    ) -> BTreeMap<String, String> {
        let mut context = BTreeMap::from([
            (CONTEXT_SESSION_ID.to_owned(), session_id.to_owned()),
            (CONTEXT_TARGET_ID.to_owned(), instance_id.to_owned()),
        ]);
        if self.challenge_acknowledged {
            context.insert(CONTEXT_RANDOM_CHALLENGE.to_owned(), challenge.to_owned());
        }
        context
    }
}

/// The successful `KMSEncryption` action of a HandshakeResponse (already checked by
/// [`parse_response`]); `Err` when the client did not process it or its result is unreadable.
pub fn kms_answer(payload: &[u8]) -> Result<KmsAnswer, String> {
    let response: Value = serde_json::from_slice(payload)
        .map_err(|error| format!("The handshake response is not valid JSON: {error}"))?;
    let action = response
        .get("ProcessedClientActions")
        .and_then(Value::as_array)
        .and_then(|actions| {
            actions
                .iter()
                .find(|a| a.get("ActionType").and_then(Value::as_str) == Some("KMSEncryption"))
        })
        .ok_or("the client did not process the KMSEncryption action")?;
    let result = action.get("ActionResult").unwrap_or(&Value::Null);
    let ciphertext_key = result
        .get("KMSCipherTextKey")
        .and_then(Value::as_str)
        .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
        .ok_or("KMSEncryption's ActionResult has no base64 KMSCipherTextKey")?;
    Ok(KmsAnswer {
        ciphertext_key,
        challenge_acknowledged: result
            .get("ChallengeAcknowledgement")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// The EncChallengeRequest/-Response payload: `{"Challenge": base64(nonce ‖ ct ‖ tag)}`.
pub fn challenge_payload(sealed: &[u8]) -> Vec<u8> {
    json!({"Challenge": base64::engine::general_purpose::STANDARD.encode(sealed)})
        .to_string()
        .into_bytes()
}

/// The sealed bytes of an EncChallengeResponse.
pub fn parse_challenge(payload: &[u8]) -> Result<Vec<u8>, String> {
    let value: Value = serde_json::from_slice(payload).map_err(|error| {
        format!("Unmarshalling of EncryptionChallengeResponse message failed, {error}")
    })?;
    value
        .get("Challenge")
        .and_then(Value::as_str)
        .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
        .ok_or_else(|| "the EncryptionChallengeResponse has no base64 Challenge".to_owned())
}

/// The agent's AES-256-GCM session cipher (`blockcipher.go`): it encrypts with the data key's
/// first half and decrypts with the second, with a 96-bit counter nonce that starts at a
/// random value (NIST SP 800-38D's deterministic construction), no associated data, and the
/// wire format `nonce ‖ ciphertext ‖ tag`.
pub struct SessionCipher {
    encrypt: Aes256Gcm,
    decrypt: Aes256Gcm,
    nonce: Mutex<u128>,
}

impl SessionCipher {
    /// From the 64-byte plaintext data key; `Err` for any other length.
    pub fn new(data_key: &[u8]) -> Result<SessionCipher, String> {
        if data_key.len() != 64 {
            return Err(format!("the data key is {} bytes, not 64", data_key.len()));
        }
        let cipher = |half: &[u8]| Aes256Gcm::new_from_slice(half).map_err(|e| e.to_string());
        Ok(SessionCipher {
            encrypt: cipher(&data_key[..32])?,
            decrypt: cipher(&data_key[32..])?,
            nonce: Mutex::new(u128::from_le_bytes(rand::random::<[u8; 16]>()) >> 32),
        })
    }

    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        let nonce = {
            let mut counter = self.nonce.lock().unwrap_or_else(|e| e.into_inner());
            let current = *counter;
            *counter = (current + 1) & ((1u128 << 96) - 1);
            current.to_le_bytes()
        };
        let nonce = Nonce::from_slice(&nonce[..12]);
        let sealed = self
            .encrypt
            .encrypt(nonce, plaintext)
            .expect("AES-GCM encrypts any message the agent sends");
        let mut framed = nonce.to_vec();
        framed.extend(sealed);
        framed
    }

    pub fn decrypt(&self, framed: &[u8]) -> Result<Vec<u8>, String> {
        if framed.len() < 12 + 16 {
            return Err("Error decrypting encrypted text, message too short".to_owned());
        }
        let (nonce, sealed) = framed.split_at(12);
        self.decrypt
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| {
                "Error decrypting encrypted text, cipher: message authentication failed".to_owned()
            })
    }
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
    fn a_kms_request_names_the_key_and_the_challenge_for_a_shell() {
        let request: Value =
            serde_json::from_slice(&kms_request("3.3.1142.0", "alias/k", "q83v")).expect("JSON");
        let actions = &request["RequestedClientActions"];
        assert_eq!(
            actions[0]["ActionParameters"]["SessionType"],
            "Standard_Stream"
        );
        assert_eq!(actions[0]["ActionParameters"]["Properties"], Value::Null);
        assert_eq!(actions[1]["ActionType"], "KMSEncryption");
        assert_eq!(actions[1]["ActionParameters"]["KMSKeyId"], "alias/k");
        assert_eq!(actions[1]["ActionParameters"]["Challenge"], "q83v");
    }

    #[test]
    fn the_kms_answer_carries_the_blob_and_whether_the_challenge_is_bound() {
        let response = br#"{"ClientVersion":"1.2.650.0","ProcessedClientActions":[{"ActionType":"SessionType","ActionStatus":1},{"ActionType":"KMSEncryption","ActionStatus":1,"ActionResult":{"KMSCipherTextKey":"YmxvYg==","KMSCipherTextHash":null,"ChallengeAcknowledgement":true},"Error":""}],"Errors":null}"#;
        let answer = kms_answer(response).expect("answered");
        assert_eq!(answer.ciphertext_key, b"blob");
        let context = answer.encryption_context("s-1", "i-1", "q83v");
        assert_eq!(context["aws:ssm:RandomChallenge"], "q83v");
        let plugin = br#"{"ProcessedClientActions":[{"ActionType":"KMSEncryption","ActionStatus":1,"ActionResult":{"KMSCipherTextKey":"YmxvYg=="}}]}"#;
        assert_eq!(
            kms_answer(plugin)
                .unwrap()
                .encryption_context("s", "i", "c")
                .len(),
            2
        );
        let without =
            br#"{"ProcessedClientActions":[{"ActionType":"SessionType","ActionStatus":1}]}"#;
        assert!(kms_answer(without).is_err());
    }

    #[test]
    fn the_session_cipher_counts_nonces_and_rejects_altered_messages() {
        let key: Vec<u8> = (0..64).collect();
        let agent = SessionCipher::new(&key).unwrap();
        let mut swapped = key[32..].to_vec();
        swapped.extend_from_slice(&key[..32]);
        let client = SessionCipher::new(&swapped).unwrap();
        let first = agent.encrypt(b"one");
        let second = agent.encrypt(b"two");
        let counter = |framed: &[u8]| {
            let mut bytes = [0u8; 16];
            bytes[..12].copy_from_slice(&framed[..12]);
            u128::from_le_bytes(bytes)
        };
        assert_eq!(counter(&second), (counter(&first) + 1) % (1 << 96));
        assert_eq!(client.decrypt(&first).unwrap(), b"one");
        let mut altered = second.clone();
        altered[20] ^= 4;
        assert!(client.decrypt(&altered).is_err());
        assert!(SessionCipher::new(&key[..32]).is_err());
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
