//! KMS session encryption (spec §6.3): what the agent's `KMSEncryption` handshake action asks
//! for, the data key that answers it, and the AES-256-GCM framing of encrypted payloads.
//!
//! When an account's Session Manager preferences name a KMS key, the agent asks the client
//! (in the handshake) to make a 64-byte data key under that key. The client gets it from
//! `kms:GenerateDataKey` — an async call the sans-IO channel cannot make, so the channel
//! reports [`Event::DataKeyNeeded`](super::Event::DataKeyNeeded) and the driver hands back a
//! [`DataKey`] — and sends the agent only the ciphertext blob, which the agent decrypts with
//! `kms:Decrypt`. Both ends then hold the same 64 bytes: the first half encrypts what the agent
//! sends, the second what the client sends.
//!
//! Payloads are `nonce(12) ‖ ciphertext ‖ tag(16)`, AES-256-GCM without associated data, as
//! the agent's `blockcipher.go` frames them. Our nonces are random (96 bits from the OS,
//! per message, under a key used for one session only); the agent counts its own.
//!
//! Key material lives only in the AES key schedules (wiped on drop by the `aes` crate's
//! `zeroize` feature) and, briefly, in [`DataKey`]'s zeroized buffer; `Debug` shows neither.

use std::collections::BTreeMap;
use std::fmt;

use aes_gcm::aead::{Aead as _, AeadCore as _, KeyInit as _, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use serde::Deserialize;
use zeroize::Zeroizing;

/// `KMSKeySizeInBytes`: the data key's length; half for each direction.
pub const DATA_KEY_BYTES: usize = 64;
/// AES-GCM's standard nonce length, written in front of every encrypted payload.
pub const NONCE_BYTES: usize = 12;
/// The GCM authentication tag, at the end of every encrypted payload.
pub const TAG_BYTES: usize = 16;

/// The encryption context keys the agent decrypts the data key with.
pub const CONTEXT_SESSION_ID: &str = "aws:ssm:SessionId";
pub const CONTEXT_TARGET_ID: &str = "aws:ssm:TargetId";
pub const CONTEXT_RANDOM_CHALLENGE: &str = "aws:ssm:RandomChallenge";

/// The parameters of the agent's `KMSEncryption` action.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct KmsEncryptionRequest {
    /// The key named in the Session Manager preferences (id, ARN or alias).
    #[serde(rename = "KMSKeyId")]
    pub key_id: String,
    /// The agent's random challenge (base64 text), bound into the data key's encryption
    /// context when the client acknowledges it.
    #[serde(rename = "Challenge", default)]
    pub challenge: String,
}

impl KmsEncryptionRequest {
    /// The encryption context for `kms:GenerateDataKey`.
    ///
    /// It includes `aws:ssm:RandomChallenge` and the client answers with
    /// `ChallengeAcknowledgement: true`: the agent then requires the same challenge when it
    /// decrypts, so a data key (and its ciphertext blob) made for one handshake cannot be
    /// replayed into another session's handshake. Agents that predate the challenge never
    /// send one; for them the context is the session and target only, and no
    /// acknowledgement is sent.
    pub fn encryption_context(&self, session_id: &str, target: &str) -> BTreeMap<String, String> {
        let mut context = BTreeMap::from([
            (CONTEXT_SESSION_ID.to_owned(), session_id.to_owned()),
            (CONTEXT_TARGET_ID.to_owned(), target.to_owned()),
        ]);
        if self.acknowledges_challenge() {
            context.insert(CONTEXT_RANDOM_CHALLENGE.to_owned(), self.challenge.clone());
        }
        context
    }

    /// Whether the answer carries `ChallengeAcknowledgement: true`.
    pub fn acknowledges_challenge(&self) -> bool {
        !self.challenge.is_empty()
    }
}

/// A data key from `kms:GenerateDataKey`: the plaintext (secret) and its ciphertext blob.
pub struct DataKey {
    plaintext: Zeroizing<Vec<u8>>,
    ciphertext_blob: Vec<u8>,
}

impl DataKey {
    pub fn new(plaintext: Vec<u8>, ciphertext_blob: Vec<u8>) -> Self {
        DataKey {
            plaintext: Zeroizing::new(plaintext),
            ciphertext_blob,
        }
    }

    /// The encrypted data key, which the agent decrypts with `kms:Decrypt`.
    pub fn ciphertext_blob(&self) -> &[u8] {
        &self.ciphertext_blob
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("plaintext", &"<redacted>")
            .field("ciphertext_blob_len", &self.ciphertext_blob.len())
            .finish()
    }
}

/// Why a payload could not be encrypted or decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    #[error("the KMS data key is {0} bytes; session encryption needs {DATA_KEY_BYTES}")]
    KeyLength(usize),
    #[error("an encrypted payload of {0} bytes is shorter than its nonce and tag")]
    TooShort(usize),
    #[error("an encrypted payload failed authentication (wrong key, or altered in transit)")]
    Authentication,
}

/// The two directions' AES-256-GCM ciphers of one session, client side.
pub struct SessionCipher {
    /// Bytes 32..64 of the data key: what the client sends.
    outgoing: Aes256Gcm,
    /// Bytes 0..32: what the agent sends.
    incoming: Aes256Gcm,
}

impl SessionCipher {
    /// Splits a 64-byte data key as the agent does (spec §6.3).
    pub fn from_data_key(key: &DataKey) -> Result<Self, CipherError> {
        let plaintext: &[u8] = &key.plaintext;
        if plaintext.len() != DATA_KEY_BYTES {
            return Err(CipherError::KeyLength(plaintext.len()));
        }
        let (agent_half, client_half) = plaintext.split_at(DATA_KEY_BYTES / 2);
        let cipher = |half: &[u8]| {
            Aes256Gcm::new_from_slice(half).map_err(|_| CipherError::KeyLength(plaintext.len()))
        };
        Ok(SessionCipher {
            outgoing: cipher(client_half)?,
            incoming: cipher(agent_half)?,
        })
    }

    /// Encrypts a payload for the agent: `nonce ‖ ciphertext ‖ tag`.
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = self
            .outgoing
            .encrypt(&nonce, plaintext)
            .expect("AES-GCM encrypts any payload below 64 GiB");
        let mut framed = Vec::with_capacity(NONCE_BYTES + sealed.len());
        framed.extend_from_slice(&nonce);
        framed.extend_from_slice(&sealed);
        framed
    }

    /// Decrypts and authenticates a payload from the agent.
    pub fn decrypt(&self, framed: &[u8]) -> Result<Vec<u8>, CipherError> {
        if framed.len() < NONCE_BYTES + TAG_BYTES {
            return Err(CipherError::TooShort(framed.len()));
        }
        let (nonce, sealed) = framed.split_at(NONCE_BYTES);
        self.incoming
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| CipherError::Authentication)
    }

    /// The answer to the agent's encryption challenge: its bytes decrypted with the agent's
    /// key and encrypted again with ours, proving both halves of the data key are right.
    pub fn answer_challenge(&self, challenge: &[u8]) -> Result<Vec<u8>, CipherError> {
        let plain = Zeroizing::new(self.decrypt(challenge)?);
        Ok(self.encrypt(&plain))
    }
}

impl fmt::Debug for SessionCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionCipher(<keys redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::new((0..64).collect(), b"blob".to_vec())
    }

    /// The agent's view of the same key: it encrypts with the first half, decrypts with the
    /// second.
    fn agent_side(key: &DataKey) -> SessionCipher {
        let mut swapped = key.plaintext[32..].to_vec();
        swapped.extend_from_slice(&key.plaintext[..32]);
        SessionCipher::from_data_key(&DataKey::new(swapped, Vec::new())).unwrap()
    }

    #[test]
    fn payloads_round_trip_between_client_and_agent() {
        let key = key();
        let client = SessionCipher::from_data_key(&key).unwrap();
        let agent = agent_side(&key);
        let framed = client.encrypt(b"echo ok\r");
        assert_eq!(framed.len(), NONCE_BYTES + 8 + TAG_BYTES);
        assert_eq!(agent.decrypt(&framed).unwrap(), b"echo ok\r");
        let reply = agent.encrypt(b"ok\r\n");
        assert_eq!(client.decrypt(&reply).unwrap(), b"ok\r\n");
        // Each message gets a fresh nonce.
        assert_ne!(client.encrypt(b"x")[..NONCE_BYTES], framed[..NONCE_BYTES]);
    }

    #[test]
    fn the_client_cannot_read_its_own_direction() {
        let client = SessionCipher::from_data_key(&key()).unwrap();
        let framed = client.encrypt(b"secret");
        assert_eq!(client.decrypt(&framed), Err(CipherError::Authentication));
    }

    #[test]
    fn any_altered_byte_fails_authentication() {
        let key = key();
        let client = SessionCipher::from_data_key(&key).unwrap();
        let agent = agent_side(&key);
        let framed = agent.encrypt(b"prompt$ ");
        for at in [0, NONCE_BYTES, framed.len() - 1] {
            let mut tampered = framed.clone();
            tampered[at] ^= 0x01;
            assert_eq!(client.decrypt(&tampered), Err(CipherError::Authentication));
        }
        assert_eq!(
            client.decrypt(&framed[..27]),
            Err(CipherError::TooShort(27))
        );
    }

    #[test]
    fn the_challenge_is_answered_under_the_clients_key() {
        let key = key();
        let client = SessionCipher::from_data_key(&key).unwrap();
        let agent = agent_side(&key);
        let challenge: Vec<u8> = (100..164).collect();
        let answer = client.answer_challenge(&agent.encrypt(&challenge)).unwrap();
        assert_eq!(agent.decrypt(&answer).unwrap(), challenge);
    }

    #[test]
    fn a_data_key_of_the_wrong_size_is_refused() {
        let short = DataKey::new(vec![0; 32], Vec::new());
        assert_eq!(
            SessionCipher::from_data_key(&short).unwrap_err(),
            CipherError::KeyLength(32)
        );
    }

    #[test]
    fn the_context_binds_the_challenge_when_there_is_one() {
        let request: KmsEncryptionRequest =
            serde_json::from_str(r#"{"KMSKeyId":"alias/ssm","Challenge":"q83vEjRWeJA="}"#).unwrap();
        let context = request.encryption_context("alice-0123", "i-0abc");
        assert_eq!(context[CONTEXT_SESSION_ID], "alice-0123");
        assert_eq!(context[CONTEXT_TARGET_ID], "i-0abc");
        assert_eq!(context[CONTEXT_RANDOM_CHALLENGE], "q83vEjRWeJA=");
        let old: KmsEncryptionRequest = serde_json::from_str(r#"{"KMSKeyId":"k"}"#).unwrap();
        assert!(!old.acknowledges_challenge());
        assert_eq!(old.encryption_context("s", "t").len(), 2);
    }

    #[test]
    fn debug_output_never_shows_key_material() {
        let key = DataKey::new(vec![0xAB; 64], vec![1, 2, 3]);
        let shown = format!("{key:?} {:?}", SessionCipher::from_data_key(&key).unwrap());
        assert!(!shown.contains("171") && !shown.to_lowercase().contains("ab, ab"));
    }
}
