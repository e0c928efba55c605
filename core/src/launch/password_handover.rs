//! Handing the Windows password to an RDP client that cannot read it from its stdin, without it
//! ever being on a command line or on disk in the clear.
//!
//! - **Clipboard** (Remmina, macOS `open`, templates without `/from-stdin`): the password is
//!   copied, and cleared after [`CLIPBOARD_CLEAR_AFTER`] — only if the clipboard still holds
//!   it, so something the user copied since is never wiped. `arboard` does the platform work
//!   (X11, Wayland's data-control protocol, macOS, Windows); on X11 the process must keep
//!   serving the selection, so the clipboard object lives on a thread until it is cleared.
//!   No clipboard (a headless session) is an error that says so, never a panic.
//! - **Credential store** (`mstsc` on Windows): a session-only generic credential
//!   `TERMSRV/127.0.0.1` in the Windows Credential Manager, which mstsc uses by itself for a
//!   connection to that address. `cmdkey /generic:… /pass:…` would put the password on a
//!   command line; the keyring crate's Windows store writes it with `CredWriteW` instead. It is
//!   deleted when the client exits (dropping [`StoredRdpCredential`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use super::rdp::RdpSession;
use super::windows_password::WindowsPassword;

/// How long a password stays on the clipboard.
pub const CLIPBOARD_CLEAR_AFTER: Duration = Duration::from_secs(30);

/// The clipboard operations the handover needs; the system clipboard, or a fake in tests.
pub trait ClipboardText: Send + 'static {
    fn set(&mut self, text: &str) -> Result<(), String>;
    /// The clipboard's text, `None` when it holds none (or something else than text).
    fn get(&mut self) -> Option<String>;
    fn clear(&mut self) -> Result<(), String>;
}

/// The system clipboard, through `arboard`.
struct SystemClipboard(arboard::Clipboard);

impl ClipboardText for SystemClipboard {
    fn set(&mut self, text: &str) -> Result<(), String> {
        self.0.set_text(text).map_err(|e| e.to_string())
    }

    fn get(&mut self) -> Option<String> {
        self.0.get_text().ok()
    }

    fn clear(&mut self) -> Result<(), String> {
        self.0.clear().map_err(|e| e.to_string())
    }
}

/// Copies `password` to the system clipboard and clears it after [`CLIPBOARD_CLEAR_AFTER`]
/// (if it is still there). Returns what to tell the user.
pub fn copy_password_to_clipboard(password: &WindowsPassword) -> Result<String, String> {
    let clipboard = arboard::Clipboard::new().map_err(|e| {
        format!(
            "no clipboard is available to hand over the password ({e}); use FreeRDP (xfreerdp), \
             which takes it directly"
        )
    })?;
    copy_then_clear(
        SystemClipboard(clipboard),
        Zeroizing::new(password.expose().to_owned()),
        CLIPBOARD_CLEAR_AFTER,
    )?;
    Ok(format!(
        "Password copied; clears in {} s",
        CLIPBOARD_CLEAR_AFTER.as_secs()
    ))
}

/// Puts `password` on `clipboard`, and on a thread of its own clears it after `after` if the
/// clipboard still holds it. The thread's result says whether it cleared.
pub fn copy_then_clear<C: ClipboardText>(
    mut clipboard: C,
    password: Zeroizing<String>,
    after: Duration,
) -> Result<std::thread::JoinHandle<bool>, String> {
    clipboard
        .set(&password)
        .map_err(|e| format!("could not copy the password to the clipboard: {e}"))?;
    std::thread::Builder::new()
        .name("bastionless-clipboard".into())
        .spawn(move || {
            std::thread::sleep(after);
            let ours = clipboard
                .get()
                .map(Zeroizing::new)
                .is_some_and(|now| *now == *password);
            ours && clipboard.clear().is_ok()
        })
        .map_err(|e| format!("could not start the clipboard's timer: {e}"))
}

/// The Windows Credential Manager entry mstsc reads for a connection to the tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdpCredential {
    /// `TERMSRV/<host>`: mstsc looks credentials up by the host it connects to, without port.
    pub target: String,
    pub user: String,
}

/// The keyring service name of the entry (Windows shows the target name, not this).
const CREDENTIAL_SERVICE: &str = "bastionless rdp";

impl RdpCredential {
    /// The credential for `session`: mstsc connects to 127.0.0.1, whatever the port.
    pub fn for_session(session: &RdpSession) -> Self {
        Self {
            target: "TERMSRV/127.0.0.1".to_owned(),
            user: session.username.clone(),
        }
    }

    /// The Windows store's entry modifiers: this exact target name, and kept only for the
    /// logon session (never roamed or written for later logons).
    pub fn modifiers(&self) -> HashMap<&str, &str> {
        HashMap::from([("target", self.target.as_str()), ("persistence", "Session")])
    }

    /// Writes the credential with `password` into `store` (the platform's default store when
    /// `None`); it is deleted when the returned value is dropped.
    pub fn store(
        &self,
        password: &WindowsPassword,
        store: Option<Arc<keyring_core::CredentialStore>>,
    ) -> Result<StoredRdpCredential, String> {
        let failed = |e: keyring_core::Error| {
            format!("could not put the password in the Windows Credential Manager: {e}")
        };
        let store = match store {
            Some(store) => store,
            None => {
                keyring::Entry::store_status()
                    .as_ref()
                    .map_err(|e| format!("the Windows Credential Manager is not available: {e}"))?;
                keyring_core::get_default_store()
                    .ok_or_else(|| "the Windows Credential Manager is not available".to_owned())?
            }
        };
        let entry = store
            .build(CREDENTIAL_SERVICE, &self.user, Some(&self.modifiers()))
            .map_err(failed)?;
        entry.set_password(password.expose()).map_err(failed)?;
        Ok(StoredRdpCredential { entry })
    }
}

/// A credential in the store, deleted on drop.
pub struct StoredRdpCredential {
    entry: keyring_core::Entry,
}

impl Drop for StoredRdpCredential {
    fn drop(&mut self) {
        if let Err(error) = self.entry.delete_credential() {
            tracing::warn!("could not remove the RDP credential: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A clipboard in memory, shared with the test so it can copy something else meanwhile.
    #[derive(Clone, Default)]
    struct FakeClipboard(Arc<Mutex<Option<String>>>);

    impl ClipboardText for FakeClipboard {
        fn set(&mut self, text: &str) -> Result<(), String> {
            *self.0.lock().unwrap() = Some(text.to_owned());
            Ok(())
        }
        fn get(&mut self) -> Option<String> {
            self.0.lock().unwrap().clone()
        }
        fn clear(&mut self) -> Result<(), String> {
            *self.0.lock().unwrap() = None;
            Ok(())
        }
    }

    #[test]
    fn the_password_is_copied_and_cleared_once_the_time_is_up() {
        let clipboard = FakeClipboard::default();
        let timer = copy_then_clear(
            clipboard.clone(),
            Zeroizing::new("S3cret!".into()),
            Duration::from_millis(50),
        )
        .unwrap();
        assert_eq!(clipboard.0.lock().unwrap().as_deref(), Some("S3cret!"));
        assert!(timer.join().unwrap(), "cleared");
        assert_eq!(*clipboard.0.lock().unwrap(), None);
    }

    #[test]
    fn something_the_user_copied_meanwhile_is_left_alone() {
        let clipboard = FakeClipboard::default();
        let timer = copy_then_clear(
            clipboard.clone(),
            Zeroizing::new("S3cret!".into()),
            Duration::from_millis(100),
        )
        .unwrap();
        *clipboard.0.lock().unwrap() = Some("the user's own text".into());
        assert!(!timer.join().unwrap(), "not cleared");
        assert_eq!(
            clipboard.0.lock().unwrap().as_deref(),
            Some("the user's own text")
        );
    }

    #[test]
    fn without_a_display_the_clipboard_is_a_clear_error_not_a_panic() {
        // The test machines run without a display; where one exists this says nothing.
        if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some() {
            return;
        }
        let password = WindowsPassword::new(Zeroizing::new("S3cret!".into()));
        let error = copy_password_to_clipboard(&password).unwrap_err();
        assert!(error.starts_with("no clipboard is available"), "{error}");
        assert!(!error.contains("S3cret!"));
    }

    #[test]
    fn mstsc_s_credential_is_the_loopback_terminal_server_for_this_session_only() {
        let session = RdpSession {
            local_port: 50123,
            username: "Administrator".into(),
            host_name: "win-1".into(),
        };
        let credential = RdpCredential::for_session(&session);
        assert_eq!(
            credential,
            RdpCredential {
                target: "TERMSRV/127.0.0.1".into(),
                user: "Administrator".into()
            }
        );
        assert_eq!(
            credential.modifiers(),
            HashMap::from([("target", "TERMSRV/127.0.0.1"), ("persistence", "Session")])
        );
    }

    /// What a store like Windows' Credential Manager was asked to do: each write with its
    /// target, persistence, user and secret, and each delete of a target.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum StoreEvent {
        Written {
            target: String,
            persistence: String,
            user: String,
            secret: String,
        },
        Deleted {
            target: String,
        },
    }

    type StoreLog = Arc<Mutex<Vec<StoreEvent>>>;

    /// A store that takes the Windows store's modifiers and logs what happens to its entries,
    /// so the handover is checked where no Windows Credential Manager exists.
    #[derive(Debug)]
    struct WindowsLikeStore(StoreLog);

    #[derive(Debug)]
    struct WindowsLikeEntry {
        log: StoreLog,
        target: String,
        persistence: String,
        user: String,
    }

    impl keyring_core::api::CredentialStoreApi for WindowsLikeStore {
        fn vendor(&self) -> String {
            "bastionless test".into()
        }
        fn id(&self) -> String {
            "windows-like".into()
        }
        fn build(
            &self,
            _service: &str,
            user: &str,
            modifiers: Option<&HashMap<&str, &str>>,
        ) -> keyring_core::Result<keyring_core::Entry> {
            let modifiers = modifiers.cloned().unwrap_or_default();
            Ok(keyring_core::Entry::new_with_credential(Arc::new(
                WindowsLikeEntry {
                    log: self.0.clone(),
                    target: modifiers.get("target").unwrap_or(&"").to_string(),
                    persistence: modifiers.get("persistence").unwrap_or(&"").to_string(),
                    user: user.to_owned(),
                },
            )))
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }

    impl keyring_core::api::CredentialApi for WindowsLikeEntry {
        fn set_secret(&self, secret: &[u8]) -> keyring_core::Result<()> {
            self.log.lock().unwrap().push(StoreEvent::Written {
                target: self.target.clone(),
                persistence: self.persistence.clone(),
                user: self.user.clone(),
                secret: String::from_utf8_lossy(secret).into_owned(),
            });
            Ok(())
        }
        fn get_secret(&self) -> keyring_core::Result<Vec<u8>> {
            Err(keyring_core::Error::NoEntry)
        }
        fn delete_credential(&self) -> keyring_core::Result<()> {
            self.log.lock().unwrap().push(StoreEvent::Deleted {
                target: self.target.clone(),
            });
            Ok(())
        }
        fn get_credential(&self) -> keyring_core::Result<Option<Arc<keyring_core::Credential>>> {
            Ok(None)
        }
        fn get_specifiers(&self) -> Option<(String, String)> {
            None
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }

    #[test]
    fn the_password_is_stored_for_mstsc_s_target_for_the_session_and_removed_on_drop() {
        let log = StoreLog::default();
        let store: Arc<keyring_core::CredentialStore> = Arc::new(WindowsLikeStore(log.clone()));
        let session = RdpSession {
            local_port: 50123,
            username: "Administrator".into(),
            host_name: "win-1".into(),
        };
        let password = WindowsPassword::new(Zeroizing::new("S3cret!".into()));
        let stored = RdpCredential::for_session(&session)
            .store(&password, Some(store))
            .unwrap_or_else(|e| panic!("stored: {e}"));
        let written = StoreEvent::Written {
            target: "TERMSRV/127.0.0.1".into(),
            persistence: "Session".into(),
            user: "Administrator".into(),
            secret: "S3cret!".into(),
        };
        assert_eq!(*log.lock().unwrap(), std::slice::from_ref(&written));
        // The client has exited: the credential goes.
        drop(stored);
        assert_eq!(
            *log.lock().unwrap(),
            [
                written,
                StoreEvent::Deleted {
                    target: "TERMSRV/127.0.0.1".into()
                }
            ]
        );
    }

    #[test]
    fn a_store_that_refuses_the_windows_modifiers_is_reported_without_the_password() {
        // The mock store takes no modifiers, as a store other than Windows' would not.
        let store: Arc<keyring_core::CredentialStore> = keyring_core::mock::Store::new().unwrap();
        let session = RdpSession {
            local_port: 1,
            username: "Administrator".into(),
            host_name: "win-1".into(),
        };
        let password = WindowsPassword::new(Zeroizing::new("S3cret!".into()));
        let error = RdpCredential::for_session(&session)
            .store(&password, Some(store))
            .err()
            .expect("refused");
        assert!(error.contains("Windows Credential Manager"), "{error}");
        assert!(!error.contains("S3cret!"));
    }
}
