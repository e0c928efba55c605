//! `GetPasswordData`: a Windows instance's Administrator password, encrypted to its key pair.
//!
//! On AWS, EC2Launch on a new Windows instance sets a random Administrator password, encrypts
//! it with the RSA public key of the instance's key pair (PKCS#1 v1.5) and hands the blob to
//! EC2, which returns it base64-encoded as `passwordData` — empty until the instance has got
//! that far, which AWS says can take up to 15 minutes after launch. Only the key pair's owner
//! can decrypt it.
//!
//! The simulator does the same with key pairs it makes itself: one RSA-2048 key per key pair
//! name that a Windows instance uses, written as a PEM file next to the generated AWS config so
//! tests and `--demo` can import it as a user imports the `.pem` EC2 gave them. The key is
//! derived from the key pair's name (a ChaCha20 stream seeded with its hash), so it is the same
//! on every run — a demo user imports it once — and is public knowledge, never a secret; it is
//! made once per process, as a test binary starts many simulators. Each Windows instance gets a
//! fresh random password per simulator, ready [`PASSWORD_READY_AFTER`] after launch on the
//! simulator's clock.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng as _;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng as _;
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _, LineEnding};
use rsa::{Pkcs1v15Encrypt, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest as _, Sha256};

use super::XMLNS;
use super::describe::{ids_do_not_exist, is_resource_id};
use crate::error::AwsError;
use crate::scenario::{Instance, InstanceState, Platform, Scenario};
use crate::service::QueryCall;
use crate::xml::XmlWriter;

/// How long after launch a Windows instance's password becomes available (simulated time).
/// AWS says "wait at least 4 minutes after launching"; EC2Launch usually takes about that.
pub const PASSWORD_READY_AFTER: TimeDelta = TimeDelta::minutes(4);

/// RSA key size of the simulated key pairs: what `CreateKeyPair` makes for `KeyType=rsa`.
const KEY_BITS: usize = 2048;

const PARAMETERS: &[&str] = &["Action", "Version", "InstanceId", "DryRun"];

/// The Windows passwords of one simulator run, and the key pairs that seal them.
#[derive(Debug)]
pub struct WindowsPasswords {
    /// Per Windows instance id, its Administrator password in the clear.
    passwords: HashMap<String, String>,
    /// Per key pair name, its private key.
    keys: BTreeMap<String, RsaPrivateKey>,
    /// Per instance id, the base64 blob once made: EC2 keeps one encrypted copy, so repeated
    /// calls return the same `passwordData`.
    sealed: Mutex<HashMap<String, String>>,
}

impl WindowsPasswords {
    /// A password for every Windows instance, and a key for every key pair they use.
    pub fn for_scenario(scenario: &Scenario) -> WindowsPasswords {
        let windows = scenario
            .instances
            .iter()
            .filter(|instance| instance.platform == Platform::Windows);
        let mut passwords = HashMap::new();
        let mut keys = BTreeMap::new();
        for instance in windows {
            passwords.insert(instance.instance_id.clone(), random_password());
            if let Some(name) = &instance.key_name {
                keys.entry(name.clone())
                    .or_insert_with(|| key_pair_named(name));
            }
        }
        WindowsPasswords {
            passwords,
            keys,
            sealed: Mutex::default(),
        }
    }

    /// The password of a Windows instance, in the clear (for tests and the RDP backends).
    pub fn password(&self, instance_id: &str) -> Option<&str> {
        self.passwords.get(instance_id).map(String::as_str)
    }

    /// The private key of the key pair `name`, when a Windows instance uses it.
    pub fn key_pair(&self, name: &str) -> Option<&RsaPrivateKey> {
        self.keys.get(name)
    }

    /// Writes each key pair's private key as `DIR/NAME.pem` (PKCS#1, as EC2 hands out RSA key
    /// pairs), readable by its owner only, and returns the files by key pair name.
    pub fn write_key_files(&self, dir: &Path) -> std::io::Result<BTreeMap<String, PathBuf>> {
        if !self.keys.is_empty() {
            std::fs::create_dir_all(dir)?;
        }
        self.keys
            .iter()
            .map(|(name, key)| {
                let pem = key
                    .to_pkcs1_pem(LineEnding::LF)
                    .map_err(std::io::Error::other)?;
                let path = dir.join(format!("{name}.pem"));
                crate::shared_config::write_private(&path, &pem)?;
                Ok((name.clone(), path))
            })
            .collect()
    }

    /// `passwordData` for `instance` at `now`: empty until the password is ready, and always
    /// empty for an instance that is not Windows or has no key pair.
    fn password_data(&self, instance: &Instance, now: DateTime<Utc>) -> String {
        let ready = instance.state != InstanceState::Pending
            && now - instance.launch_time >= PASSWORD_READY_AFTER;
        let key = instance
            .key_name
            .as_ref()
            .and_then(|name| self.keys.get(name));
        let (Some(password), Some(key), true) =
            (self.passwords.get(&instance.instance_id), key, ready)
        else {
            return String::new();
        };
        let mut sealed = self
            .sealed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sealed
            .entry(instance.instance_id.clone())
            .or_insert_with(|| seal(password, &RsaPublicKey::from(key)))
            .clone()
    }
}

/// `password` encrypted PKCS#1 v1.5 to `key`, base64-encoded.
fn seal(password: &str, key: &RsaPublicKey) -> String {
    let encrypted = key
        .encrypt(
            &mut rsa::rand_core::OsRng,
            Pkcs1v15Encrypt,
            password.as_bytes(),
        )
        .expect("a short password fits a 2048-bit RSA block");
    base64::engine::general_purpose::STANDARD.encode(encrypted)
}

/// The private key of the key pair `name`, derived from the name (made once per process).
fn key_pair_named(name: &str) -> RsaPrivateKey {
    static KEYS: OnceLock<Mutex<HashMap<String, RsaPrivateKey>>> = OnceLock::new();
    let mut keys = KEYS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    keys.entry(name.to_owned())
        .or_insert_with(|| built_in_key(name).unwrap_or_else(|| derive_key(name)))
        .clone()
}

/// The demo's key pairs as [`derive_key`] makes them, kept in `tests/scenarios/keys` because
/// generating an RSA key takes a second or two, paid by every process that starts a simulator.
const BUILT_IN_KEYS: [(&str, &str); 2] = [
    (
        "prod-windows",
        include_str!("../../scenarios/keys/prod-windows.pem"),
    ),
    (
        "staging-windows",
        include_str!("../../scenarios/keys/staging-windows.pem"),
    ),
];

fn built_in_key(name: &str) -> Option<RsaPrivateKey> {
    let (_, pem) = BUILT_IN_KEYS.iter().find(|(known, _)| *known == name)?;
    Some(RsaPrivateKey::from_pkcs1_pem(pem).expect("the built-in test keys are valid PEM"))
}

/// The RSA key made from a ChaCha20 stream seeded with the hash of `name`.
fn derive_key(name: &str) -> RsaPrivateKey {
    let seed: [u8; 32] = Sha256::digest(format!("bastionless-sim key pair/{name}")).into();
    RsaPrivateKey::new(&mut ChaCha20Rng::from_seed(seed), KEY_BITS)
        .expect("a 2048-bit key can be made")
}

/// 32 characters of letters, digits and symbols, as EC2Launch's passwords look, with at least
/// one of each class so any Windows password policy would take it.
fn random_password() -> String {
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGITS: &[u8] = b"23456789";
    const SYMBOLS: &[u8] = b"!@#$%&*()-=+;?.";
    let mut rng = rand::rng();
    let mut pick = |set: &[u8]| char::from(set[rng.random_range(0..set.len())]);
    let all: Vec<u8> = [LOWER, UPPER, DIGITS, SYMBOLS].concat();
    let mut password: String = [pick(LOWER), pick(UPPER), pick(DIGITS), pick(SYMBOLS)]
        .into_iter()
        .collect();
    password.extend((0..28).map(|_| pick(&all)));
    password
}

pub fn respond(call: &QueryCall<'_>) -> Result<String, AwsError> {
    let params = call.params;
    if let Some(unknown) = params.unknown_parameter(PARAMETERS) {
        return Err(AwsError::bad_request(
            "UnknownParameter",
            format!("The parameter {unknown} is not recognized"),
        ));
    }
    let instance_id = params.get("InstanceId").ok_or_else(|| {
        AwsError::bad_request(
            "MissingParameter",
            "The request must contain the parameter InstanceId",
        )
    })?;
    if !is_resource_id("i", instance_id) {
        return Err(AwsError::bad_request(
            "InvalidInstanceID.Malformed",
            format!("Invalid id: \"{instance_id}\""),
        ));
    }
    let instance = call
        .scenario
        .instances_in(call.caller.account(), call.caller.region)
        .map(|(instance, _)| instance)
        .find(|instance| instance.instance_id == instance_id)
        .ok_or_else(|| {
            AwsError::bad_request(
                "InvalidInstanceID.NotFound",
                ids_do_not_exist("instance", &[instance_id]),
            )
        })?;
    let instance_arn = format!(
        "arn:aws:ec2:{}:{}:instance/{instance_id}",
        call.caller.region,
        call.caller.account()
    );
    if !call
        .caller
        .profile
        .may_on("ec2:GetPasswordData", &instance_arn)
    {
        return Err(AwsError::new(
            axum::http::StatusCode::FORBIDDEN,
            "UnauthorizedOperation",
            "You are not authorized to perform this operation.",
        ));
    }
    if params.get("DryRun") == Some("true") {
        return Err(AwsError::new(
            axum::http::StatusCode::PRECONDITION_FAILED,
            "DryRunOperation",
            "Request would have succeeded, but DryRun flag is set.",
        ));
    }
    let now = call.world.clock.now();
    let data = call.world.passwords.password_data(instance, now);
    let timestamp = if data.is_empty() {
        now
    } else {
        instance.launch_time + PASSWORD_READY_AFTER
    };
    Ok(XmlWriter::document("GetPasswordDataResponse", XMLNS, |w| {
        w.text("requestId", call.request_id)
            .text("instanceId", &instance.instance_id)
            .text("timestamp", timestamp.format("%Y-%m-%dT%H:%M:%S%.3fZ"))
            .text("passwordData", data);
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows_instance(launched: DateTime<Utc>) -> Instance {
        let mut instance = Scenario::demo()
            .instance_named("win-eic-1")
            .expect("in the demo")
            .clone();
        instance.launch_time = launched;
        instance
    }

    #[test]
    fn the_password_is_sealed_to_the_key_pair_once_the_instance_is_ready() {
        let now = Utc::now();
        let instance = windows_instance(now - TimeDelta::minutes(5));
        let mut scenario = Scenario::demo();
        scenario.instances = vec![instance.clone()];
        let passwords = WindowsPasswords::for_scenario(&scenario);
        let sealed = passwords.password_data(&instance, now);
        let blob = base64::engine::general_purpose::STANDARD
            .decode(&sealed)
            .expect("base64");
        assert_eq!(blob.len(), KEY_BITS / 8);
        let key = &passwords.keys[instance.key_name.as_deref().expect("a key pair")];
        let clear = key.decrypt(Pkcs1v15Encrypt, &blob).expect("decrypts");
        assert_eq!(
            std::str::from_utf8(&clear).ok(),
            passwords.password(&instance.instance_id)
        );
        assert_eq!(passwords.password_data(&instance, now), sealed, "one copy");

        let dir = tempfile::tempdir().expect("a temp dir");
        let files = passwords.write_key_files(dir.path()).expect("written");
        let pem = std::fs::read_to_string(&files["prod-windows"]).expect("readable");
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "{pem}");
        assert_eq!(&RsaPrivateKey::from_pkcs1_pem(&pem).expect("parses"), key);
    }

    #[test]
    fn the_password_is_empty_before_four_minutes_and_while_pending() {
        let now = Utc::now();
        let mut instance = windows_instance(now - TimeDelta::minutes(3));
        let mut scenario = Scenario::demo();
        scenario.instances = vec![instance.clone()];
        let passwords = WindowsPasswords::for_scenario(&scenario);
        assert_eq!(passwords.password_data(&instance, now), "");
        instance.launch_time = now - TimeDelta::minutes(10);
        instance.state = InstanceState::Pending;
        assert_eq!(passwords.password_data(&instance, now), "");
        instance.state = InstanceState::Stopped;
        assert_ne!(passwords.password_data(&instance, now), "");
        instance.key_name = None;
        assert_eq!(passwords.password_data(&instance, now), "", "no key pair");
    }

    #[test]
    fn the_built_in_keys_are_what_their_names_derive() {
        for (name, _) in BUILT_IN_KEYS {
            assert_eq!(built_in_key(name), Some(derive_key(name)), "{name}");
        }
        assert_ne!(
            key_pair_named("prod-windows"),
            key_pair_named("staging-windows")
        );
        assert_eq!(built_in_key("another"), None);
    }

    #[test]
    fn passwords_mix_every_character_class() {
        for _ in 0..20 {
            let password = random_password();
            assert_eq!(password.len(), 32);
            assert!(password.bytes().any(|b| b.is_ascii_lowercase()));
            assert!(password.bytes().any(|b| b.is_ascii_uppercase()));
            assert!(password.bytes().any(|b| b.is_ascii_digit()));
            assert!(password.bytes().any(|b| !b.is_ascii_alphanumeric()));
        }
    }
}
