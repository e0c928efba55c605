//! AWS Key Management Service, `awsJson1_1` protocol (`X-Amz-Target: TrentService.<Operation>`,
//! SigV4 service `kms`, API version 2014-11-01): the operations a KMS-encrypted Session Manager
//! shell needs (spec §6.3) — the client's `GenerateDataKey`, the agent's `Decrypt` — and
//! `DescribeKey`.
//!
//! | operation | errors |
//! |---|---|
//! | `GenerateDataKey` | `NotFoundException`, `DisabledException`, `AccessDeniedException`, `ValidationException` |
//! | `Decrypt` | `InvalidCiphertextException`, `IncorrectKeyException`, `NotFoundException`, `DisabledException`, `AccessDeniedException` |
//! | `DescribeKey` | `NotFoundException`, `AccessDeniedException` |
//!
//! Keys are the scenario's `[[kms_keys]]`, symmetric, each in one account and region, named by
//! key id, key ARN, `alias/NAME` or alias ARN as KMS accepts them. Access follows the calling
//! profile's `denied_actions` (`kms:GenerateDataKey`, …) and `allowed_resources` (the key ARN).
//!
//! A ciphertext blob is opaque to its holder, as a real one is: the data key sealed with
//! AES-256-GCM under the key's own secret, with the encryption context as associated data —
//! so a blob that was altered, or presented with any other context, fails as
//! `InvalidCiphertextException`. Each key's secret is derived (HMAC-SHA-256) from one random
//! secret per simulator process and the key's ARN: nothing about it is in the scenario, so no
//! client can decrypt a blob without calling `Decrypt`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use aes_gcm::aead::{Aead as _, AeadCore as _, KeyInit as _, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use axum::http::StatusCode;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use serde_json::{Map, Value, json};

use crate::auth::Caller;
use crate::error::AwsError;
use crate::scenario::{KmsKey, Scenario};
use crate::world::World;

/// The SigV4 signing name (the model's `endpointPrefix`).
pub const SIGNING_NAME: &str = "kms";

/// `X-Amz-Target` is this prefix and the operation name.
pub const TARGET_PREFIX: &str = "TrentService.";

/// The only algorithm of symmetric keys.
const SYMMETRIC_DEFAULT: &str = "SYMMETRIC_DEFAULT";
/// What starts every blob this simulator makes.
const BLOB_MAGIC: &[u8; 4] = b"bsk1";
const NONCE_BYTES: usize = 12;

pub fn call(
    world: &World,
    caller: Caller<'_>,
    action: &str,
    body: &[u8],
) -> Result<String, AwsError> {
    let input = parse(body)?;
    let scenario = &world.scenario;
    let response = match action {
        "GenerateDataKey" => generate_data_key(scenario, caller, &input)?,
        "Decrypt" => decrypt(scenario, caller, &input)?,
        "DescribeKey" => describe_key(scenario, caller, &input)?,
        other => {
            return Err(AwsError::bad_request(
                "UnknownOperationException",
                format!("The operation {other} is not supported by the simulated KMS."),
            ));
        }
    };
    Ok(response.to_string())
}

/// The agent's `kms:Decrypt` of a session's data key, with the instance's own permissions
/// (its instance profile is assumed to allow it): the key must be `key_id` in the instance's
/// `account` and `region`, enabled, and the blob must open with exactly `context`.
pub fn decrypt_as_agent(
    scenario: &Scenario,
    account: &str,
    region: &str,
    key_id: &str,
    blob: &[u8],
    context: &BTreeMap<String, String>,
) -> Result<Vec<u8>, AwsError> {
    let expected = resolve(scenario, account, region, key_id)?;
    let (key, plaintext) = open(scenario, region, blob, context)?;
    if key.arn() != expected.arn() {
        return Err(incorrect_key());
    }
    usable(key)?;
    Ok(plaintext)
}

/// Checks the scenario's keys and the Session Manager preference that names one.
pub fn validate(scenario: &Scenario) -> Result<(), String> {
    let mut arns = BTreeMap::new();
    for key in &scenario.kms_keys {
        if !is_key_id(&key.id) {
            return Err(format!(
                "[[kms_keys]] id \"{}\" is not a KMS key id; use a UUID such as \
                 \"1234abcd-12ab-34cd-56ef-1234567890ab\"",
                key.id
            ));
        }
        if !scenario.accounts.iter().any(|a| a.id == key.account) {
            return Err(format!(
                "[[kms_keys]] {} is in account {}, which is not in `accounts`",
                key.id, key.account
            ));
        }
        if !scenario.regions.contains(&key.region) {
            return Err(format!(
                "[[kms_keys]] {} is in region {}, which is not in `regions`",
                key.id, key.region
            ));
        }
        if arns.insert(key.arn(), ()).is_some() {
            return Err(format!("[[kms_keys]] {} is listed twice", key.id));
        }
        for alias in &key.aliases {
            let Some(name) = alias.strip_prefix("alias/") else {
                return Err(format!(
                    "[[kms_keys]] {}: alias \"{alias}\" must start with \"alias/\"",
                    key.id
                ));
            };
            if name.is_empty() || name.starts_with("aws/") {
                return Err(format!(
                    "[[kms_keys]] {}: alias \"{alias}\" is not allowed (\"alias/aws/\" is \
                     reserved for AWS managed keys)",
                    key.id
                ));
            }
            let taken = scenario.kms_keys.iter().filter(|other| {
                other.account == key.account
                    && other.region == key.region
                    && other.aliases.contains(alias)
            });
            if taken.count() > 1 {
                return Err(format!(
                    "[[kms_keys]] alias \"{alias}\" names two keys in {} {}",
                    key.account, key.region
                ));
            }
        }
    }
    if let Some(wanted) = &scenario.session_manager.kms_key {
        let found = scenario.accounts.iter().any(|account| {
            scenario
                .regions
                .iter()
                .any(|region| resolve(scenario, &account.id, region, wanted).is_ok())
        });
        if !found {
            return Err(format!(
                "session_manager.kms_key \"{wanted}\" names no key of [[kms_keys]] in any \
                 account and region; use a key id, key ARN or alias of one of them"
            ));
        }
    }
    Ok(())
}

fn generate_data_key(
    scenario: &Scenario,
    caller: Caller<'_>,
    input: &Map<String, Value>,
) -> Result<Value, AwsError> {
    let key_id = required_key_id(input)?;
    let number_of_bytes = optional_integer(input, "NumberOfBytes")?;
    let key_spec = optional_string(input, "KeySpec")?;
    let context = encryption_context(input)?;
    let length = match (number_of_bytes, key_spec) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(validation(
                "Please specify either number of bytes or key spec.".to_owned(),
            ));
        }
        (Some(n), None) if n < 1 => {
            return Err(validation(format!(
                "1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy \
                 constraint: Member must have value greater than or equal to 1"
            )));
        }
        (Some(n), None) if n > 1024 => {
            return Err(validation(format!(
                "1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy \
                 constraint: Member must have value less than or equal to 1024"
            )));
        }
        (Some(n), None) => usize::try_from(n).unwrap_or(1),
        (None, Some("AES_256")) => 32,
        (None, Some("AES_128")) => 16,
        (None, Some(other)) => {
            return Err(validation(format!(
                "1 validation error detected: Value '{other}' at 'keySpec' failed to satisfy \
                 constraint: Member must satisfy enum value set: [AES_256, AES_128]"
            )));
        }
    };
    let key = resolve(scenario, caller.account(), caller.region, key_id)?;
    authorize(caller, "kms:GenerateDataKey", key)?;
    usable(key)?;
    let mut plaintext = vec![0u8; length];
    rand::fill(&mut plaintext[..]);
    let blob = seal(key, &plaintext, &context);
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(json!({
        "CiphertextBlob": b64.encode(blob),
        "Plaintext": b64.encode(&plaintext),
        "KeyId": key.arn(),
    }))
}

fn decrypt(
    scenario: &Scenario,
    caller: Caller<'_>,
    input: &Map<String, Value>,
) -> Result<Value, AwsError> {
    let blob = match input.get("CiphertextBlob") {
        None | Some(Value::Null) => {
            return Err(validation(
                "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy \
                 constraint: Member must not be null"
                    .to_owned(),
            ));
        }
        Some(Value::String(text)) => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| serialization("CiphertextBlob is not valid base64."))?,
        Some(_) => return Err(serialization("CiphertextBlob must be a base64 string.")),
    };
    if blob.is_empty() || blob.len() > 6144 {
        return Err(validation(format!(
            "1 validation error detected: Value at 'ciphertextBlob' failed to satisfy \
             constraint: Member must have length between 1 and 6144 (it has {})",
            blob.len()
        )));
    }
    let context = encryption_context(input)?;
    if let Some(algorithm) = optional_string(input, "EncryptionAlgorithm")?
        && algorithm != SYMMETRIC_DEFAULT
    {
        return Err(AwsError::bad_request(
            "InvalidCiphertextException",
            format!("The encryption algorithm {algorithm} is not valid for this ciphertext."),
        ));
    }
    let named = match optional_string(input, "KeyId")? {
        Some(key_id) => Some(resolve(scenario, caller.account(), caller.region, key_id)?),
        None => None,
    };
    let key = blob_key(scenario, caller.region, &blob)?;
    if named.is_some_and(|named| named.arn() != key.arn()) {
        return Err(incorrect_key());
    }
    authorize(caller, "kms:Decrypt", key)?;
    usable(key)?;
    let (_, plaintext) = open(scenario, caller.region, &blob, &context)?;
    Ok(json!({
        "KeyId": key.arn(),
        "Plaintext": base64::engine::general_purpose::STANDARD.encode(plaintext),
        "EncryptionAlgorithm": SYMMETRIC_DEFAULT,
    }))
}

fn describe_key(
    scenario: &Scenario,
    caller: Caller<'_>,
    input: &Map<String, Value>,
) -> Result<Value, AwsError> {
    let key_id = required_key_id(input)?;
    let key = resolve(scenario, caller.account(), caller.region, key_id)?;
    authorize(caller, "kms:DescribeKey", key)?;
    let state = if key.enabled { "Enabled" } else { "Disabled" };
    Ok(json!({
        "KeyMetadata": {
            "AWSAccountId": key.account,
            "KeyId": key.id,
            "Arn": key.arn(),
            "CreationDate": 1_705_309_200,
            "Enabled": key.enabled,
            "Description": key.description,
            "KeyUsage": "ENCRYPT_DECRYPT",
            "KeyState": state,
            "Origin": "AWS_KMS",
            "KeyManager": "CUSTOMER",
            "CustomerMasterKeySpec": SYMMETRIC_DEFAULT,
            "KeySpec": SYMMETRIC_DEFAULT,
            "EncryptionAlgorithms": [SYMMETRIC_DEFAULT],
            "MultiRegion": false,
        }
    }))
}

/// The key `key_id` names for a caller in `account` and `region`: a key id, a key ARN, an
/// alias name or an alias ARN.
fn resolve<'s>(
    scenario: &'s Scenario,
    account: &str,
    region: &str,
    key_id: &str,
) -> Result<&'s KmsKey, AwsError> {
    let (account, region, resource) = match key_id.strip_prefix("arn:aws:kms:") {
        Some(rest) => {
            let mut parts = rest.splitn(3, ':');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(region), Some(account), Some(resource)) => (account, region, resource),
                _ => return Err(not_found(format!("Invalid arn {key_id}"))),
            }
        }
        None => (account, region, key_id),
    };
    let arn = |resource: &str| format!("arn:aws:kms:{region}:{account}:{resource}");
    let in_place = |key: &&KmsKey| key.account == account && key.region == region;
    if let Some(id) = resource.strip_prefix("key/") {
        return scenario
            .kms_keys
            .iter()
            .filter(in_place)
            .find(|key| key.id == id)
            .ok_or_else(|| not_found(format!("Key '{}' does not exist", arn(resource))));
    }
    if resource.starts_with("alias/") {
        return scenario
            .kms_keys
            .iter()
            .filter(in_place)
            .find(|key| key.aliases.iter().any(|alias| alias == resource))
            .ok_or_else(|| not_found(format!("Alias '{}' is not found.", arn(resource))));
    }
    if is_key_id(resource) {
        return scenario
            .kms_keys
            .iter()
            .filter(in_place)
            .find(|key| key.id == resource)
            .ok_or_else(|| {
                not_found(format!(
                    "Key '{}' does not exist",
                    arn(&format!("key/{resource}"))
                ))
            });
    }
    Err(not_found(format!("Invalid keyId '{key_id}'")))
}

fn authorize(caller: Caller<'_>, action: &str, key: &KmsKey) -> Result<(), AwsError> {
    let arn = key.arn();
    if caller.profile.may_on(action, &arn) && caller.account() == key.account {
        return Ok(());
    }
    Err(AwsError::bad_request(
        "AccessDeniedException",
        format!(
            "User: arn:aws:iam::{account}:user/{user} is not authorized to perform: {action} on \
             resource: {arn} because no identity-based policy allows the {action} action",
            account = caller.account(),
            user = caller.profile.user_name(),
        ),
    ))
}

fn usable(key: &KmsKey) -> Result<(), AwsError> {
    if key.enabled {
        Ok(())
    } else {
        Err(AwsError::bad_request(
            "DisabledException",
            format!("{} is disabled.", key.arn()),
        ))
    }
}

/// `bsk1 ‖ len ‖ key ARN ‖ nonce ‖ AES-256-GCM(data key, aad = key ARN ‖ context)`.
fn seal(key: &KmsKey, plaintext: &[u8], context: &BTreeMap<String, String>) -> Vec<u8> {
    let arn = key.arn();
    let cipher = key_cipher(&arn);
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let aad = associated_data(&arn, context);
    let sealed = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .expect("AES-GCM encrypts 1024 bytes");
    let mut blob = Vec::with_capacity(5 + arn.len() + NONCE_BYTES + sealed.len());
    blob.extend_from_slice(BLOB_MAGIC);
    blob.push(u8::try_from(arn.len()).expect("key ARNs are short"));
    blob.extend_from_slice(arn.as_bytes());
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&sealed);
    blob
}

/// The key a blob was made under (which must be in `region`), without opening it.
fn blob_key<'s>(scenario: &'s Scenario, region: &str, blob: &[u8]) -> Result<&'s KmsKey, AwsError> {
    let arn = blob_arn(blob).ok_or_else(invalid_ciphertext)?;
    scenario
        .kms_keys
        .iter()
        .find(|key| key.arn() == arn && key.region == region)
        .ok_or_else(invalid_ciphertext)
}

fn blob_arn(blob: &[u8]) -> Option<&str> {
    let rest = blob.strip_prefix(BLOB_MAGIC)?;
    let (&len, rest) = rest.split_first()?;
    std::str::from_utf8(rest.get(..usize::from(len))?).ok()
}

/// Opens a blob with `context`: the key it was made under and the data key.
fn open<'s>(
    scenario: &'s Scenario,
    region: &str,
    blob: &[u8],
    context: &BTreeMap<String, String>,
) -> Result<(&'s KmsKey, Vec<u8>), AwsError> {
    let key = blob_key(scenario, region, blob)?;
    let arn = key.arn();
    let sealed = &blob[BLOB_MAGIC.len() + 1 + arn.len()..];
    if sealed.len() < NONCE_BYTES + 16 {
        return Err(invalid_ciphertext());
    }
    let (nonce, sealed) = sealed.split_at(NONCE_BYTES);
    let aad = associated_data(&arn, context);
    let plaintext = key_cipher(&arn)
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: &aad,
            },
        )
        .map_err(|_| invalid_ciphertext())?;
    Ok((key, plaintext))
}

fn associated_data(arn: &str, context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut aad = arn.as_bytes().to_vec();
    aad.push(0);
    aad.extend(serde_json::to_vec(context).expect("strings always serialize"));
    aad
}

/// The cipher of the key `arn`: its secret is HMAC-SHA-256(process secret, ARN).
fn key_cipher(arn: &str) -> Aes256Gcm {
    static PROCESS_SECRET: OnceLock<[u8; 32]> = OnceLock::new();
    let secret = PROCESS_SECRET.get_or_init(rand::random);
    let mut mac = <Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(secret)
        .expect("HMAC takes keys of any length");
    mac.update(arn.as_bytes());
    Aes256Gcm::new(&mac.finalize().into_bytes())
}

fn is_key_id(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.chars().all(|c| c.is_ascii_hexdigit()))
}

fn parse(body: &[u8]) -> Result<Map<String, Value>, AwsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        _ => Err(serialization("The request body is not a JSON object.")),
    }
}

fn required_key_id(input: &Map<String, Value>) -> Result<&str, AwsError> {
    match optional_string(input, "KeyId")? {
        Some(key_id) if (1..=2048).contains(&key_id.len()) => Ok(key_id),
        Some(_) => Err(validation(
            "1 validation error detected: Value at 'keyId' failed to satisfy constraint: \
             Member must have length between 1 and 2048"
                .to_owned(),
        )),
        None => Err(validation(
            "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: \
             Member must not be null"
                .to_owned(),
        )),
    }
}

fn optional_string<'a>(
    input: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, AwsError> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(serialization(&format!(
            "STRING_VALUE can not be converted to a String for {name}"
        ))),
    }
}

fn optional_integer(input: &Map<String, Value>, name: &str) -> Result<Option<i64>, AwsError> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_i64().map(Some).ok_or_else(|| {
            serialization(&format!(
                "NUMBER_VALUE can not be converted to an Integer for {name}"
            ))
        }),
    }
}

fn encryption_context(input: &Map<String, Value>) -> Result<BTreeMap<String, String>, AwsError> {
    match input.get("EncryptionContext") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(value) => serde_json::from_value(value.clone())
            .map_err(|_| serialization("EncryptionContext must map strings to strings.")),
    }
}

fn not_found(message: String) -> AwsError {
    AwsError::bad_request("NotFoundException", message)
}

fn invalid_ciphertext() -> AwsError {
    AwsError::bad_request("InvalidCiphertextException", "")
}

fn incorrect_key() -> AwsError {
    AwsError::bad_request(
        "IncorrectKeyException",
        "The key ID in the request does not identify a CMK that can perform this operation.",
    )
}

fn validation(message: String) -> AwsError {
    AwsError::bad_request("ValidationException", message)
}

fn serialization(message: &str) -> AwsError {
    AwsError::new(StatusCode::BAD_REQUEST, "SerializationException", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        let mut scenario = Scenario::demo();
        let account = scenario.accounts[0].id.clone();
        let region = scenario.regions[0].clone();
        scenario.kms_keys.push(KmsKey {
            id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
            account,
            region,
            aliases: vec!["alias/ssm-shells".into()],
            enabled: true,
            description: String::new(),
        });
        scenario
    }

    #[test]
    fn a_blob_opens_only_with_its_context_and_unaltered() {
        let scenario = scenario();
        let key = &scenario.kms_keys[0];
        let context = BTreeMap::from([("aws:ssm:SessionId".to_owned(), "s-1".to_owned())]);
        let blob = seal(key, b"data key", &context);
        let (opened, plaintext) = open(&scenario, &key.region, &blob, &context).unwrap();
        assert_eq!(opened.id, key.id);
        assert_eq!(plaintext, b"data key");
        let other = BTreeMap::from([("aws:ssm:SessionId".to_owned(), "s-2".to_owned())]);
        assert_eq!(
            open(&scenario, &key.region, &blob, &other)
                .unwrap_err()
                .code,
            "InvalidCiphertextException"
        );
        let mut tampered = blob.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(
            open(&scenario, &key.region, &tampered, &context)
                .unwrap_err()
                .code,
            "InvalidCiphertextException"
        );
        assert!(!blob.windows(8).any(|w| w == b"data key"));
    }

    #[test]
    fn keys_resolve_by_id_arn_and_alias_in_their_own_account_and_region() {
        let scenario = scenario();
        let key = &scenario.kms_keys[0];
        let (account, region) = (key.account.as_str(), key.region.as_str());
        for name in [
            key.id.clone(),
            key.arn(),
            "alias/ssm-shells".to_owned(),
            format!("arn:aws:kms:{region}:{account}:alias/ssm-shells"),
        ] {
            assert_eq!(
                resolve(&scenario, account, region, &name).unwrap().id,
                key.id
            );
        }
        let missing = resolve(&scenario, account, region, "alias/nope").unwrap_err();
        assert_eq!(missing.code, "NotFoundException");
        assert!(
            missing.message.contains("alias/nope"),
            "{}",
            missing.message
        );
        assert!(resolve(&scenario, "999999999999", region, &key.id).is_err());
        assert!(validate(&scenario).is_ok());
    }
}
