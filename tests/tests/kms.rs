//! KMS against the simulator, and KMS-encrypted Session Manager shells end to end.
//!
//! The KMS API is driven through the real `aws-sdk-kms` (TLS with the simulator's CA): every
//! operation's success and each modelled error. The shells run through the product's own
//! session driver (`bastionless_core::ssm::session::run_shell` over `SsmSessionApi`, which is
//! what `bastionless shell HOST` runs) against the simulator's agent, which was written from
//! the spec separately: an `ok` that comes back proves both sides encrypt and decrypt alike.
//! Clients that misbehave (no encryption, a data key for another context, an altered blob) are
//! played by hand-made frames on a raw WebSocket.

mod support;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, KeyState};
use base64::Engine as _;
use bastionless_core::ssm::proto::message::{
    AgentMessage, FLAG_FIN, FLAG_SYN, MessageType, PayloadType,
};
use bastionless_core::ssm::proto::{OpenDataChannel, TerminalSize};
use bastionless_core::ssm::session::{SsmSessionApi, run_shell};
use bastionless_sim::scenario::KmsKey;
use bastionless_sim::{Scenario, Simulator};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use support::{open_websocket_with_ca, sdk_config, session_config};

/// app-ssm-1: Linux, agent online, in 111122223333 / us-east-1 (profile `prod`).
const APP_SSM_1: &str = "i-0153167d68d708c5f";
const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";
const SHELL_KEY: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
const DISABLED_KEY: &str = "0987dcba-09fe-87dc-65ba-ab0987654321";
const ALIAS: &str = "alias/ssm-shells";
const NOTICE: &str = "This session is encrypted using AWS KMS.";

fn key_arn(id: &str) -> String {
    format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{id}")
}

/// The demo scenario with two keys in prod's account and region — one enabled with an alias,
/// one disabled — and, when `require`, Session Manager preferences that require the alias.
fn scenario(require: bool) -> Scenario {
    let mut scenario = Scenario::demo();
    let key = |id: &str, aliases: Vec<String>, enabled: bool| KmsKey {
        id: id.into(),
        account: ACCOUNT.into(),
        region: REGION.into(),
        aliases,
        enabled,
        description: "Session Manager shells".into(),
    };
    scenario
        .kms_keys
        .push(key(SHELL_KEY, vec![ALIAS.into()], true));
    scenario.kms_keys.push(key(DISABLED_KEY, Vec::new(), false));
    if require {
        scenario.session_manager.kms_key = Some(ALIAS.into());
    }
    scenario
}

async fn start(scenario: Scenario) -> Simulator {
    Simulator::start(scenario)
        .await
        .expect("the simulator starts")
}

async fn kms(sim: &Simulator, profile: &str) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(&sdk_config(sim, profile).await)
}

/// The error code of a failed SDK call.
fn code<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, aws_sdk_kms::error::SdkError<E>>,
) -> (String, String) {
    let error = result.expect_err("the call fails");
    let service = error.as_service_error().unwrap_or_else(|| {
        panic!("not a modelled service error: {error:?}");
    });
    (
        service.code().unwrap_or_default().to_owned(),
        service.message().unwrap_or_default().to_owned(),
    )
}

fn context(session: &str) -> std::collections::HashMap<String, String> {
    [
        ("aws:ssm:SessionId".to_owned(), session.to_owned()),
        ("aws:ssm:TargetId".to_owned(), APP_SSM_1.to_owned()),
    ]
    .into()
}

// ---------------------------------------------------------------------------------------------
// The KMS API

#[tokio::test]
async fn data_keys_come_from_any_name_of_the_key_and_decrypt_with_their_context() {
    let sim = start(scenario(false)).await;
    let kms = kms(&sim, "prod").await;
    for name in [
        SHELL_KEY.to_owned(),
        key_arn(SHELL_KEY),
        ALIAS.to_owned(),
        format!("arn:aws:kms:{REGION}:{ACCOUNT}:{ALIAS}"),
    ] {
        let key = kms
            .generate_data_key()
            .key_id(&name)
            .number_of_bytes(64)
            .set_encryption_context(Some(context("s-1")))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GenerateDataKey {name}: {e:?}"));
        assert_eq!(key.key_id(), Some(key_arn(SHELL_KEY).as_str()));
        let plaintext = key.plaintext().expect("a plaintext").as_ref().to_vec();
        assert_eq!(plaintext.len(), 64);
        let blob = key.ciphertext_blob().expect("a blob").clone();
        assert!(
            !blob
                .as_ref()
                .windows(16)
                .any(|w| plaintext.windows(16).any(|p| p == w)),
            "the blob must not contain the data key"
        );
        let decrypted = kms
            .decrypt()
            .ciphertext_blob(blob)
            .set_encryption_context(Some(context("s-1")))
            .send()
            .await
            .expect("Decrypt");
        assert_eq!(
            decrypted.plaintext().expect("plaintext").as_ref(),
            plaintext
        );
        assert_eq!(decrypted.key_id(), Some(key_arn(SHELL_KEY).as_str()));
    }
    let spec = kms
        .generate_data_key()
        .key_id(ALIAS)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .expect("a KeySpec data key");
    assert_eq!(spec.plaintext().expect("plaintext").as_ref().len(), 32);
}

#[tokio::test]
async fn a_blob_with_another_context_or_altered_is_invalid_ciphertext() {
    let sim = start(scenario(false)).await;
    let kms = kms(&sim, "prod").await;
    let key = kms
        .generate_data_key()
        .key_id(ALIAS)
        .number_of_bytes(64)
        .set_encryption_context(Some(context("s-1")))
        .send()
        .await
        .expect("GenerateDataKey");
    let blob = key.ciphertext_blob().expect("a blob").as_ref().to_vec();
    let decrypt = |blob: Vec<u8>, session: &str| {
        kms.decrypt()
            .ciphertext_blob(Blob::new(blob))
            .set_encryption_context(Some(context(session)))
            .send()
    };
    assert_eq!(
        code(decrypt(blob.clone(), "s-2").await).0,
        "InvalidCiphertextException"
    );
    let no_context = kms
        .decrypt()
        .ciphertext_blob(Blob::new(blob.clone()))
        .send()
        .await;
    assert_eq!(code(no_context).0, "InvalidCiphertextException");
    for at in [blob.len() / 2, blob.len() - 1] {
        let mut altered = blob.clone();
        altered[at] ^= 0x20;
        assert_eq!(
            code(decrypt(altered, "s-1").await).0,
            "InvalidCiphertextException"
        );
    }
    assert_eq!(
        code(decrypt(b"not a blob".to_vec(), "s-1").await).0,
        "InvalidCiphertextException"
    );
    let wrong_key = kms
        .decrypt()
        .ciphertext_blob(Blob::new(blob))
        .key_id(DISABLED_KEY)
        .set_encryption_context(Some(context("s-1")))
        .send()
        .await;
    assert_eq!(code(wrong_key).0, "IncorrectKeyException");
}

#[tokio::test]
async fn unknown_disabled_and_denied_keys_fail_with_kms_errors() {
    let mut scenario = scenario(false);
    let readonly = scenario
        .profiles
        .iter_mut()
        .find(|p| p.name == "prod-readonly")
        .expect("the demo has prod-readonly");
    readonly.denied_actions = vec!["kms:GenerateDataKey".into()];
    let eu = scenario
        .profiles
        .iter_mut()
        .find(|p| p.name == "prod")
        .expect("the demo has prod");
    eu.allowed_resources = vec![
        format!("arn:aws:kms:*:*:key/{DISABLED_KEY}"),
        "arn:aws:ec2:*".into(),
    ];
    let sim = start(scenario).await;

    let prod = kms(&sim, "prod").await;
    let (code_, message) = code(
        prod.generate_data_key()
            .key_id("alias/nope")
            .number_of_bytes(64)
            .send()
            .await,
    );
    assert_eq!(code_, "NotFoundException");
    assert!(message.contains("alias/nope"), "{message}");
    let (code_, message) = code(
        prod.generate_data_key()
            .key_id(DISABLED_KEY)
            .number_of_bytes(64)
            .send()
            .await,
    );
    assert_eq!(code_, "DisabledException");
    assert!(message.contains(DISABLED_KEY), "{message}");
    // prod's policy allows only the disabled key's ARN: the shell key is denied.
    let (code_, message) = code(
        prod.generate_data_key()
            .key_id(ALIAS)
            .number_of_bytes(64)
            .send()
            .await,
    );
    assert_eq!(code_, "AccessDeniedException");
    assert!(message.contains("kms:GenerateDataKey"), "{message}");
    assert!(message.contains(&key_arn(SHELL_KEY)), "{message}");

    let readonly = kms(&sim, "prod-readonly").await;
    let (code_, _) = code(
        readonly
            .generate_data_key()
            .key_id(ALIAS)
            .number_of_bytes(64)
            .send()
            .await,
    );
    assert_eq!(code_, "AccessDeniedException");
    let described = readonly
        .describe_key()
        .key_id(DISABLED_KEY)
        .send()
        .await
        .expect("DescribeKey is allowed");
    let metadata = described.key_metadata().expect("metadata");
    assert_eq!(metadata.key_state(), Some(&KeyState::Disabled));
    assert!(!metadata.enabled());
    assert_eq!(metadata.arn(), Some(key_arn(DISABLED_KEY).as_str()));
    assert_eq!(
        code(readonly.describe_key().key_id("alias/nope").send().await).0,
        "NotFoundException"
    );
}

#[tokio::test]
async fn generate_data_key_validates_its_size_as_kms_does() {
    let sim = start(scenario(false)).await;
    let kms = kms(&sim, "prod").await;
    for bytes in [0, 1025] {
        let (code_, message) = code(
            kms.generate_data_key()
                .key_id(ALIAS)
                .number_of_bytes(bytes)
                .send()
                .await,
        );
        assert_eq!(code_, "ValidationException", "{bytes}");
        assert!(message.contains("numberOfBytes"), "{message}");
    }
    let both = kms
        .generate_data_key()
        .key_id(ALIAS)
        .number_of_bytes(64)
        .key_spec(DataKeySpec::Aes128)
        .send()
        .await;
    assert_eq!(code(both).0, "ValidationException");
    let neither = kms.generate_data_key().key_id(ALIAS).send().await;
    assert_eq!(code(neither).0, "ValidationException");
}

// ---------------------------------------------------------------------------------------------
// KMS-encrypted shells through the product

/// Runs `input` in a shell on app-ssm-1 as `profile`; the terminal output, or the error.
async fn shell(sim: &Simulator, profile: &str, input: &'static [u8]) -> Result<String, String> {
    let api = Arc::new(SsmSessionApi::new(&sdk_config(sim, profile).await));
    let (_sizes_tx, sizes) = tokio::sync::watch::channel(TerminalSize { cols: 80, rows: 24 });
    let mut output = Vec::new();
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        run_shell(
            api,
            APP_SSM_1,
            input,
            &mut output,
            sizes,
            session_config(sim),
            |_| {},
        ),
    )
    .await
    .expect("the shell ends in time");
    let text = String::from_utf8_lossy(&output).into_owned();
    match result {
        Ok(_) => Ok(text),
        Err(error) => Err(error.to_string()),
    }
}

#[tokio::test]
async fn a_shell_the_preferences_encrypt_runs_echo_ok_and_says_so() {
    let sim = start(scenario(true)).await;
    let output = shell(&sim, "prod", b"echo o$((0))k\r")
        .await
        .expect("the shell runs");
    assert!(output.starts_with(NOTICE), "{output:?}");
    // `o$((0))k` is what was typed and echoed; `o0k` only appears if the command ran.
    assert!(output.contains("o0k"), "{output:?}");
    assert!(sim.calls("GenerateDataKey") >= 1);
}

#[tokio::test]
async fn a_shell_without_kms_preferences_is_not_encrypted() {
    let sim = start(scenario(false)).await;
    let output = shell(&sim, "prod", b"echo o$((0))k\r")
        .await
        .expect("the shell runs");
    assert!(!output.contains(NOTICE), "{output:?}");
    assert!(output.contains("o0k"), "{output:?}");
    assert_eq!(sim.calls("GenerateDataKey"), 0);
}

#[tokio::test]
async fn a_profile_without_generate_data_key_gets_an_actionable_error() {
    let mut scenario = scenario(true);
    let prod = scenario
        .profiles
        .iter_mut()
        .find(|p| p.name == "prod")
        .expect("the demo has prod");
    prod.denied_actions = vec!["kms:GenerateDataKey".into()];
    let sim = start(scenario).await;
    let error = shell(&sim, "prod", b"echo o$((0))k\r")
        .await
        .expect_err("the shell is refused");
    assert!(error.contains("kms:GenerateDataKey"), "{error}");
    assert!(error.contains(ALIAS), "names the key: {error}");
    assert!(error.contains("IAM policy"), "says what to change: {error}");
}

#[tokio::test]
async fn a_shell_whose_key_is_disabled_names_the_key_and_the_fix() {
    let mut scenario = scenario(true);
    scenario.session_manager.kms_key = Some(DISABLED_KEY.into());
    let sim = start(scenario).await;
    let error = shell(&sim, "prod", b"exit\r")
        .await
        .expect_err("the shell is refused");
    assert!(error.contains(DISABLED_KEY), "{error}");
    assert!(error.contains("enable the key"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// Clients that do not encrypt properly, by hand

/// How a hand-made client answers the agent's `KMSEncryption` action.
#[derive(Debug, Clone, Copy)]
enum KmsAnswer {
    /// Leaves the action out, as a client without KMS support does.
    Omitted,
    /// A data key made for another session.
    OtherSession,
    /// Claims `ChallengeAcknowledgement` but left the challenge out of the key's context.
    ChallengeNotBound,
    /// The right context, but the blob altered on the way.
    Altered,
}

/// Starts a shell session and answers the agent's handshake as `answer` says; returns the
/// agent's `channel_closed` reason. The agent must never complete the handshake.
async fn refused_handshake(sim: &Simulator, answer: KmsAnswer) -> String {
    let sdk = sdk_config(sim, "prod").await;
    let started = aws_sdk_ssm::Client::new(&sdk)
        .start_session()
        .target(APP_SSM_1)
        .send()
        .await
        .expect("StartSession");
    let session_id = started.session_id().expect("an id").to_owned();
    let mut socket = open_websocket_with_ca(
        sim.ca_bundle().expect("TLS"),
        started.stream_url().expect("a URL"),
    )
    .await;
    let open = OpenDataChannel::new(
        started.token_value().expect("a token"),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    socket
        .send(Message::text(open.to_text()))
        .await
        .expect("sent");
    let mut answered = false;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("the agent answers in time")
            .expect("the socket stays open until channel_closed")
            .expect("a frame");
        let Message::Binary(frame) = frame else {
            continue;
        };
        let message = AgentMessage::decode(&frame).expect("a message");
        if message.message_type == MessageType::ChannelClosed {
            let closed: Value = serde_json::from_slice(&message.payload).expect("JSON");
            return closed["Output"].as_str().unwrap_or_default().to_owned();
        }
        if message.message_type != MessageType::OutputStreamData {
            continue;
        }
        assert_ne!(
            message.payload_type,
            PayloadType::HandshakeComplete,
            "the agent must not complete the handshake"
        );
        socket
            .send(Message::binary(acknowledgement(&message)))
            .await
            .expect("sent");
        if message.payload_type != PayloadType::HandshakeRequest || answered {
            continue;
        }
        answered = true;
        let request: Value = serde_json::from_slice(&message.payload).expect("JSON");
        let kms = &request["RequestedClientActions"][1];
        assert_eq!(kms["ActionType"], "KMSEncryption");
        assert_eq!(kms["ActionParameters"]["KMSKeyId"], ALIAS);
        let challenge = kms["ActionParameters"]["Challenge"]
            .as_str()
            .expect("a challenge");
        let bound = vec![
            ("aws:ssm:SessionId", session_id.as_str()),
            ("aws:ssm:TargetId", APP_SSM_1),
            ("aws:ssm:RandomChallenge", challenge),
        ];
        let mut actions = vec![json!({
            "ActionType": "SessionType", "ActionStatus": 1, "ActionResult": null, "Error": ""
        })];
        match answer {
            KmsAnswer::Omitted => {}
            KmsAnswer::OtherSession => {
                let mut context = bound.clone();
                context[0].1 = "alice-00000000000000000";
                actions.push(kms_result(&blob(sim, context).await, true));
            }
            KmsAnswer::ChallengeNotBound => {
                let blob = blob(sim, bound[..2].to_vec()).await;
                actions.push(kms_result(&blob, true));
            }
            KmsAnswer::Altered => {
                let mut blob = blob(sim, bound.clone()).await;
                let last = blob.len() - 1;
                blob[last] ^= 1;
                actions.push(kms_result(&blob, true));
            }
        }
        let response = json!({
            "ClientVersion": "1.2.650.0",
            "ProcessedClientActions": actions,
            "Errors": null,
        });
        let reply = AgentMessage {
            message_type: MessageType::InputStreamData,
            schema_version: 1,
            created_date: 1_700_000_000_000,
            sequence_number: 0,
            flags: FLAG_SYN,
            message_id: Uuid::new_v4(),
            payload_type: PayloadType::HandshakeResponse,
            payload: response.to_string().into_bytes().into(),
        };
        socket
            .send(Message::binary(reply.encode()))
            .await
            .expect("sent");
    }
}

fn acknowledgement(message: &AgentMessage) -> Vec<u8> {
    let payload = json!({
        "AcknowledgedMessageType": "output_stream_data",
        "AcknowledgedMessageId": message.message_id.hyphenated().to_string(),
        "AcknowledgedMessageSequenceNumber": message.sequence_number,
        "IsSequentialMessage": true,
    });
    AgentMessage {
        message_type: MessageType::Acknowledge,
        schema_version: 1,
        created_date: 1_700_000_000_000,
        sequence_number: 0,
        flags: FLAG_SYN | FLAG_FIN,
        message_id: Uuid::new_v4(),
        payload_type: PayloadType::Unset,
        payload: payload.to_string().into_bytes().into(),
    }
    .encode()
}

/// A data key from the simulator's KMS with `context`: its ciphertext blob.
async fn blob(sim: &Simulator, context: Vec<(&str, &str)>) -> Vec<u8> {
    let kms = kms(sim, "prod").await;
    let key = kms
        .generate_data_key()
        .key_id(ALIAS)
        .number_of_bytes(64)
        .set_encryption_context(Some(
            context
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        ))
        .send()
        .await
        .expect("GenerateDataKey");
    key.ciphertext_blob().expect("a blob").as_ref().to_vec()
}

fn kms_result(blob: &[u8], acknowledged: bool) -> Value {
    json!({
        "ActionType": "KMSEncryption",
        "ActionStatus": 1,
        "ActionResult": {
            "KMSCipherTextKey": base64::engine::general_purpose::STANDARD.encode(blob),
            "KMSCipherTextHash": null,
            "ChallengeAcknowledgement": acknowledged,
        },
        "Error": "",
    })
}

#[tokio::test]
async fn a_client_that_answers_without_encryption_is_refused() {
    let sim = start(scenario(true)).await;
    let reason = refused_handshake(&sim, KmsAnswer::Omitted).await;
    assert!(reason.contains("KMS encryption is required"), "{reason}");
}

#[tokio::test]
async fn a_data_key_for_another_context_or_altered_is_refused_by_the_agent() {
    let sim = start(scenario(true)).await;
    for answer in [
        KmsAnswer::OtherSession,
        KmsAnswer::ChallengeNotBound,
        KmsAnswer::Altered,
    ] {
        let reason = refused_handshake(&sim, answer).await;
        assert!(
            reason.contains("InvalidCiphertextException"),
            "{answer:?}: {reason}"
        );
    }
}
