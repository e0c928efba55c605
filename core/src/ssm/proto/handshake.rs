//! The session handshake (spec §6): the agent says who it is and what it needs, the client
//! answers with its version and the outcome of each requested action, the agent confirms.
//!
//! The answer matters more than it looks: the `ClientVersion` we claim decides which port
//! forwarding mode and smux keepalive setting the *agent* picks (§7.1), so it is a constant
//! ([`CLIENT_VERSION`]) chosen together with the client-side decision in
//! [`super::mode`]. A `KMSEncryption` action (shells whose Session Manager preferences name a
//! KMS key, spec §6.3) cannot be answered here: it needs a data key from KMS, so [`answer`]
//! leaves it open ([`HandshakeAnswer::kms`]) and the caller settles it with
//! [`HandshakeAnswer::kms_succeeded`] or [`HandshakeAnswer::kms_failed`] before sending.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::encryption::{DataKey, KmsEncryptionRequest};

/// The plugin version we claim. A released version (RELEASENOTES 1.2.650.0) that is newer than
/// `1.1.70` (agent uses mux) and `1.2.331.0` (agent disables smux keepalive), the same
/// combination as the current official plugin.
pub const CLIENT_VERSION: &str = "1.2.650.0";

/// The agent's opening message (PayloadType 5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandshakeRequest {
    #[serde(default)]
    pub agent_version: String,
    #[serde(default)]
    pub requested_client_actions: Vec<RequestedClientAction>,
}

/// One thing the agent asks the client to do or acknowledge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequestedClientAction {
    pub action_type: String,
    #[serde(default)]
    pub action_parameters: Value,
}

/// The parameters of a `SessionType` action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SessionTypeRequest {
    pub session_type: String,
    /// The session document's properties (`null` for shells), e.g. `{"type":"LocalPortForwarding",..}`.
    #[serde(default)]
    pub properties: Value,
}

/// The client's answer (PayloadType 6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandshakeResponse {
    pub client_version: String,
    pub processed_client_actions: Vec<ProcessedClientAction>,
    /// `null` when there are none, as Go marshals a nil slice.
    pub errors: Option<Vec<String>>,
}

/// The outcome of one requested action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessedClientAction {
    pub action_type: String,
    pub action_status: ActionStatus,
    pub action_result: Value,
    pub error: String,
}

/// `ActionStatus` as the agent reads it: anything but `Success` cancels the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "i64", from = "i64")]
pub enum ActionStatus {
    Success,
    Failed,
    Unsupported,
    Other(i64),
}

impl From<ActionStatus> for i64 {
    fn from(status: ActionStatus) -> i64 {
        match status {
            ActionStatus::Success => 1,
            ActionStatus::Failed => 2,
            ActionStatus::Unsupported => 3,
            ActionStatus::Other(code) => code,
        }
    }
}

impl From<i64> for ActionStatus {
    fn from(code: i64) -> Self {
        match code {
            1 => ActionStatus::Success,
            2 => ActionStatus::Failed,
            3 => ActionStatus::Unsupported,
            other => ActionStatus::Other(other),
        }
    }
}

/// The agent's closing message (PayloadType 7).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HandshakeComplete {
    /// Go `time.Duration`: nanoseconds.
    pub handshake_time_to_complete: i64,
    /// Shown to the user when non-empty.
    pub customer_message: String,
}

/// How the client treats the session, from the agent's `SessionType` (spec §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionType {
    /// `Standard_Stream`, `InteractiveCommands`, `NonInteractiveCommands`: a terminal.
    Shell,
    /// `Port`: forwarding, decided further by the properties (see [`super::mode`]).
    Port,
}

/// What the client decided while answering a handshake request.
#[derive(Debug, Clone, PartialEq)]
pub struct HandshakeAnswer {
    pub response: HandshakeResponse,
    /// The accepted session type and its properties, if a `SessionType` action was accepted.
    pub session: Option<(SessionType, Value)>,
    /// Human-readable reasons for every action that was not a success; the agent will cancel.
    pub refusals: Vec<String>,
    /// The agent's `KMSEncryption` request, still to be settled with a data key.
    pub kms: Option<KmsEncryptionRequest>,
}

impl HandshakeAnswer {
    /// Settles `KMSEncryption` as done: the data key's ciphertext blob goes to the agent, which
    /// decrypts it with `kms:Decrypt`, with `ChallengeAcknowledgement` when the key's context
    /// included the agent's challenge (see [`KmsEncryptionRequest::encryption_context`]).
    pub fn kms_succeeded(&mut self, key: &DataKey) {
        let Some(request) = self.kms.take() else {
            return;
        };
        let result = json!({
            "KMSCipherTextKey": base64::engine::general_purpose::STANDARD.encode(key.ciphertext_blob()),
            "KMSCipherTextHash": null,
            "ChallengeAcknowledgement": request.acknowledges_challenge(),
        });
        self.settle_kms(ActionStatus::Success, result, String::new());
    }

    /// Settles `KMSEncryption` as failed (no data key): the agent cancels the session.
    pub fn kms_failed(&mut self, reason: &str) {
        if self.kms.take().is_none() {
            return;
        }
        let error = format!("Failed to process action KMSEncryption: {reason}");
        self.refusals.push(reason.to_owned());
        self.settle_kms(ActionStatus::Failed, Value::Null, error);
    }

    fn settle_kms(&mut self, status: ActionStatus, result: Value, error: String) {
        if let Some(action) = self
            .response
            .processed_client_actions
            .iter_mut()
            .find(|action| action.action_type == KMS_ENCRYPTION)
        {
            action.action_status = status;
            action.action_result = result;
            action.error = error;
        }
    }
}

/// The handshake action that asks for KMS session encryption.
const KMS_ENCRYPTION: &str = "KMSEncryption";

/// Answers a handshake request.
pub fn answer(request: &HandshakeRequest) -> HandshakeAnswer {
    let mut session = None;
    let mut refusals = Vec::new();
    let mut kms = None;
    let processed_client_actions = request
        .requested_client_actions
        .iter()
        .map(|action| {
            let (action_status, error) = match action.action_type.as_str() {
                "SessionType" => match session_type(&action.action_parameters) {
                    Ok(accepted) => {
                        session = Some(accepted);
                        (ActionStatus::Success, String::new())
                    }
                    Err(error) => (ActionStatus::Failed, error),
                },
                // Pending until settled (see `HandshakeAnswer::kms_succeeded`); never sent so.
                KMS_ENCRYPTION => {
                    match KmsEncryptionRequest::deserialize(&action.action_parameters) {
                        Ok(request) => {
                            kms = Some(request);
                            (ActionStatus::Success, String::new())
                        }
                        Err(error) => (
                            ActionStatus::Failed,
                            format!(
                                "Failed to process action KMSEncryption: invalid parameters: {error}"
                            ),
                        ),
                    }
                }
                other => (
                    ActionStatus::Unsupported,
                    format!("Unsupported action {other}"),
                ),
            };
            if action_status != ActionStatus::Success {
                refusals.push(error.clone());
            }
            ProcessedClientAction {
                action_type: action.action_type.clone(),
                action_status,
                action_result: Value::Null,
                error,
            }
        })
        .collect();
    HandshakeAnswer {
        response: HandshakeResponse {
            client_version: CLIENT_VERSION.to_owned(),
            processed_client_actions,
            errors: None,
        },
        session,
        refusals,
        kms,
    }
}

fn session_type(parameters: &Value) -> Result<(SessionType, Value), String> {
    let request = SessionTypeRequest::deserialize(parameters)
        .map_err(|e| format!("Invalid SessionType action parameters: {e}"))?;
    let session_type = match request.session_type.as_str() {
        "Standard_Stream" | "InteractiveCommands" | "NonInteractiveCommands" => SessionType::Shell,
        "Port" => SessionType::Port,
        other => return Err(format!("Unknown session type {other}")),
    };
    Ok((session_type, request.properties))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(actions: Value) -> HandshakeRequest {
        serde_json::from_value(
            json!({"AgentVersion": "3.1.1732.0", "RequestedClientActions": actions}),
        )
        .unwrap()
    }

    #[test]
    fn a_port_session_request_is_accepted_with_its_properties() {
        let properties = json!({"host":"172.31.25.54","localPortNumber":"7406","portNumber":"3000","type":"LocalPortForwarding"});
        let answer = answer(&request(
            json!([{"ActionType":"SessionType","ActionParameters":{"SessionType":"Port","Properties":properties}}]),
        ));
        assert_eq!(answer.session, Some((SessionType::Port, properties)));
        assert!(answer.refusals.is_empty());
        assert_eq!(
            serde_json::to_string(&answer.response).unwrap(),
            r#"{"ClientVersion":"1.2.650.0","ProcessedClientActions":[{"ActionType":"SessionType","ActionStatus":1,"ActionResult":null,"Error":""}],"Errors":null}"#
        );
    }

    #[test]
    fn interactive_and_non_interactive_commands_are_treated_as_shells() {
        for name in [
            "Standard_Stream",
            "InteractiveCommands",
            "NonInteractiveCommands",
        ] {
            let answer = answer(&request(
                json!([{"ActionType":"SessionType","ActionParameters":{"SessionType":name,"Properties":null}}]),
            ));
            assert_eq!(answer.session, Some((SessionType::Shell, Value::Null)));
        }
    }

    #[test]
    fn an_unknown_session_type_fails_with_the_plugins_message() {
        let answer = answer(&request(
            json!([{"ActionType":"SessionType","ActionParameters":{"SessionType":"Telepathy"}}]),
        ));
        assert_eq!(answer.session, None);
        assert_eq!(answer.refusals, ["Unknown session type Telepathy"]);
        let action = &answer.response.processed_client_actions[0];
        assert_eq!(action.action_status, ActionStatus::Failed);
        assert_eq!(action.error, "Unknown session type Telepathy");
    }

    fn kms_request() -> HandshakeRequest {
        request(json!([
            {"ActionType":"SessionType","ActionParameters":{"SessionType":"Standard_Stream","Properties":null}},
            {"ActionType":"KMSEncryption","ActionParameters":{"KMSKeyId":"arn:aws:kms:us-east-1:111122223333:key/k","Challenge":"q83vEjRWeJA="}}
        ]))
    }

    #[test]
    fn kms_encryption_is_answered_with_the_data_keys_ciphertext() {
        let mut answer = answer(&kms_request());
        let kms = answer.kms.clone().expect("KMS requested");
        assert_eq!(kms.key_id, "arn:aws:kms:us-east-1:111122223333:key/k");
        answer.kms_succeeded(&DataKey::new(vec![7; 64], b"blob".to_vec()));
        assert!(answer.kms.is_none());
        assert!(answer.refusals.is_empty());
        let json = serde_json::to_value(&answer.response).unwrap();
        let action = &json["ProcessedClientActions"][1];
        assert_eq!(action["ActionType"], "KMSEncryption");
        assert_eq!(action["ActionStatus"], 1);
        assert_eq!(action["ActionResult"]["KMSCipherTextKey"], "YmxvYg==");
        assert_eq!(action["ActionResult"]["ChallengeAcknowledgement"], true);
        assert!(!json.to_string().contains("7,7"), "no key material: {json}");
    }

    #[test]
    fn a_kms_failure_is_answered_as_failed_with_the_reason() {
        let mut answer = answer(&kms_request());
        answer.kms_failed("access denied calling kms:GenerateDataKey");
        let kms = &answer.response.processed_client_actions[1];
        assert_eq!(kms.action_status, ActionStatus::Failed);
        assert_eq!(
            kms.error,
            "Failed to process action KMSEncryption: access denied calling kms:GenerateDataKey"
        );
        assert_eq!(
            answer.refusals,
            ["access denied calling kms:GenerateDataKey"]
        );
    }

    #[test]
    fn kms_parameters_without_a_key_are_refused() {
        let answer = answer(&request(
            json!([{"ActionType":"KMSEncryption","ActionParameters":{"Challenge":"AAAA"}}]),
        ));
        assert!(answer.kms.is_none());
        assert_eq!(
            answer.response.processed_client_actions[0].action_status,
            ActionStatus::Failed
        );
        assert_eq!(answer.refusals.len(), 1);
    }

    #[test]
    fn unknown_actions_are_answered_unsupported_with_status_three() {
        let answer = answer(&request(
            json!([{"ActionType":"Teleport","ActionParameters":{}}]),
        ));
        let json = serde_json::to_value(&answer.response).unwrap();
        assert_eq!(json["ProcessedClientActions"][0]["ActionStatus"], 3);
        assert_eq!(
            json["ProcessedClientActions"][0]["ActionResult"],
            Value::Null
        );
    }

    #[test]
    fn handshake_complete_reads_duration_and_customer_message() {
        let complete: HandshakeComplete = serde_json::from_str(
            r#"{"HandshakeTimeToComplete":1500000000,"CustomerMessage":"This session is encrypted using AWS KMS."}"#,
        )
        .unwrap();
        assert_eq!(complete.handshake_time_to_complete, 1_500_000_000);
        assert_eq!(
            complete.customer_message,
            "This session is encrypted using AWS KMS."
        );
    }
}
