//! Private keys of EC2 key pairs, kept in the OS keyring: the Secret Service on Linux
//! (GNOME Keyring, KWallet), the Keychain on macOS, the Credential Manager on Windows.
//!
//! A user imports the `.pem` EC2 gave them once per key pair name and account; Bastionless then
//! decrypts that account's Windows passwords with it ([`crate::launch::windows_password`]).
//! There is deliberately no fallback: when no keyring is reachable (a Linux session without a
//! Secret Service, say) the import fails and says so, and the key is never written anywhere in
//! the clear.
//!
//! The store behind the entries is a `keyring_core` store, so unit tests run against
//! `keyring_core::mock::Store` and the end-to-end tests against a real gnome-keyring.

use std::sync::Arc;

use keyring_core::{CredentialStore, Entry, Error as KeyringError};
use rsa::RsaPrivateKey;
use zeroize::Zeroizing;

use crate::launch::windows_password::{PasswordError, parse_private_key};

/// The keyring service name of Bastionless's key pair entries.
const SERVICE: &str = "bastionless key pair";

/// Why a key could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// No OS keyring could be reached.
    #[error(
        "no OS keyring is available ({detail}); Bastionless keeps private keys only in the OS keyring and will not write them to disk in the clear. On Linux, start a Secret Service (GNOME Keyring or KWallet) in your desktop session, or run inside `dbus-run-session` with `gnome-keyring-daemon --unlock`"
    )]
    NoKeyring { detail: String },
    /// The keyring is there but refused access (locked, or access denied).
    #[error("the OS keyring refused access ({detail}); unlock it and try again")]
    Locked { detail: String },
    /// Anything else the keyring reported.
    #[error("the OS keyring failed: {detail}")]
    Keyring { detail: String },
    /// What was offered for import is not a usable private key.
    #[error(transparent)]
    BadKey(#[from] PasswordError),
}

impl From<KeyringError> for SecretsError {
    fn from(error: KeyringError) -> Self {
        let detail = error.to_string();
        match error {
            KeyringError::NoDefaultStore => SecretsError::NoKeyring { detail },
            KeyringError::NoStorageAccess(_) => SecretsError::Locked { detail },
            _ => SecretsError::Keyring { detail },
        }
    }
}

/// The private keys of EC2 key pairs, per account and key pair name.
#[derive(Clone)]
pub struct KeyPairKeys {
    store: Arc<CredentialStore>,
}

impl std::fmt::Debug for KeyPairKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPairKeys")
            .field("store", &self.store.vendor())
            .finish()
    }
}

impl KeyPairKeys {
    /// The platform's keyring, or [`SecretsError::NoKeyring`] when there is none. May talk to
    /// the session bus: call it off async threads.
    pub fn os() -> Result<KeyPairKeys, SecretsError> {
        match keyring::Entry::store_status() {
            Ok(()) => {}
            Err(error) => {
                return Err(SecretsError::NoKeyring {
                    detail: error.to_string(),
                });
            }
        }
        let store = keyring_core::get_default_store().ok_or_else(|| SecretsError::NoKeyring {
            detail: "no credential store was set up".to_owned(),
        })?;
        Ok(KeyPairKeys { store })
    }

    /// Keys in `store` (a mock store in tests).
    pub fn in_store(store: Arc<CredentialStore>) -> KeyPairKeys {
        KeyPairKeys { store }
    }

    /// Checks that `pem` is an RSA private key and stores it for `key_pair` in `account_id`,
    /// replacing any key stored for them before.
    pub fn import(&self, account_id: &str, key_pair: &str, pem: &str) -> Result<(), SecretsError> {
        parse_private_key(pem)?;
        self.entry(account_id, key_pair)?
            .set_password(pem.trim())
            .map_err(SecretsError::from)
    }

    /// The private key stored for `key_pair` in `account_id`, or `None` when none was imported.
    pub fn private_key(
        &self,
        account_id: &str,
        key_pair: &str,
    ) -> Result<Option<RsaPrivateKey>, SecretsError> {
        match self.entry(account_id, key_pair)?.get_password() {
            Ok(pem) => Ok(Some(parse_private_key(&Zeroizing::new(pem))?)),
            Err(KeyringError::NoEntry) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Forgets the key stored for `key_pair` in `account_id`; `false` when there was none.
    pub fn remove(&self, account_id: &str, key_pair: &str) -> Result<bool, SecretsError> {
        match self.entry(account_id, key_pair)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(KeyringError::NoEntry) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    fn entry(&self, account_id: &str, key_pair: &str) -> Result<Entry, SecretsError> {
        Ok(self
            .store
            .build(SERVICE, &entry_user(account_id, key_pair), None)?)
    }
}

/// The keyring "user" of a key pair's entry: key pair names repeat across accounts.
fn entry_user(account_id: &str, key_pair: &str) -> String {
    format!("{account_id}/{key_pair}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1::EncodeRsaPrivateKey as _;

    fn keys() -> KeyPairKeys {
        KeyPairKeys::in_store(keyring_core::mock::Store::new().unwrap())
    }

    fn pem(bits: usize) -> (RsaPrivateKey, String) {
        let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).unwrap();
        let pem = key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        (key, pem.to_string())
    }

    #[test]
    fn an_imported_key_is_found_per_account_and_key_pair_name() {
        let keys = keys();
        let (key, text) = pem(1024);
        keys.import("111122223333", "prod-windows", &text).unwrap();
        assert_eq!(
            keys.private_key("111122223333", "prod-windows").unwrap(),
            Some(key)
        );
        assert_eq!(
            keys.private_key("444455556666", "prod-windows").unwrap(),
            None
        );
        assert_eq!(keys.private_key("111122223333", "other").unwrap(), None);

        let (replacement, text) = pem(1024);
        keys.import("111122223333", "prod-windows", &text).unwrap();
        assert_eq!(
            keys.private_key("111122223333", "prod-windows").unwrap(),
            Some(replacement)
        );
        assert!(keys.remove("111122223333", "prod-windows").unwrap());
        assert!(!keys.remove("111122223333", "prod-windows").unwrap());
        assert_eq!(
            keys.private_key("111122223333", "prod-windows").unwrap(),
            None
        );
    }

    #[test]
    fn something_that_is_not_a_private_key_is_not_stored() {
        let keys = keys();
        let error = keys
            .import("111122223333", "kp", "ssh-ed25519 AAAA user@host")
            .unwrap_err();
        assert!(matches!(error, SecretsError::BadKey(_)), "{error}");
        assert_eq!(keys.private_key("111122223333", "kp").unwrap(), None);
    }

    #[test]
    fn no_keyring_says_so_and_what_to_do() {
        let error = SecretsError::from(KeyringError::NoDefaultStore).to_string();
        assert!(error.starts_with("no OS keyring is available"), "{error}");
        assert!(error.contains("will not write them to disk"), "{error}");
    }
}
