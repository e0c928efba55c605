//! Signing in, as the engine does it for the app: SSO sessions and MFA codes.
//!
//! Each SSO session has a [`SignInState`] in the snapshot, worked out from the token cache at
//! every refresh, so "sign-in needed" shows once per session rather than as a failure of each
//! of its profiles. [`Command::SignIn`](super::Command::SignIn) runs the device-authorization
//! flow: the state shows the user code and URL while the browser is open, and a successful
//! sign-in refreshes the host list.
//!
//! MFA codes are asked through the snapshot too: while a role assumption waits for one,
//! [`Snapshot::mfa_request`] names the profile and device, and
//! [`Command::SupplyMfaCode`](super::Command::SupplyMfaCode) answers it.
//!
//! Once a profile is identified, its account's alias is looked up beside the scan
//! ([`Snapshot::account_aliases`]).
//!
//! [`Snapshot::mfa_request`]: super::Snapshot::mfa_request
//! [`Snapshot::account_aliases`]: super::Snapshot::account_aliases

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::oneshot;

use super::refresh::Publisher;
use super::{Command, NoticeLevel, Shared};
use crate::profiles::{MfaPrompt, ProfileCatalog};
use crate::sso::{self, CachedToken, SsoSession};

/// One SSO session and whether its profiles can get credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoSessionStatus {
    /// The `[sso-session]` name (or a legacy profile's start URL).
    pub name: String,
    /// The profiles that sign in through it.
    pub profiles: Vec<String>,
    pub state: SignInState,
    /// Whether account discovery is on: every account and role the session grants is a
    /// profile (`Command::DiscoverAccounts`).
    pub discovery: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInState {
    /// The cached token works (or can be renewed without the user).
    SignedIn,
    /// The user has to sign in; the text says why.
    SignInNeeded { reason: String },
    /// A sign-in is waiting for the user to approve `user_code` at `url` in the browser.
    SigningIn { user_code: String, url: String },
    /// The last sign-in failed.
    Failed { error: String },
}

/// A role assumption waiting for the current code of an MFA device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaRequest {
    pub profile: String,
    /// The device (`mfa_serial`).
    pub serial: String,
}

/// Each SSO session of `catalog` and its state from the token cache.
pub(super) fn session_statuses(catalog: &ProfileCatalog) -> Vec<super::SsoSessionStatus> {
    catalog
        .sso_sessions
        .iter()
        .map(|session| SsoSessionStatus {
            name: session.key.label().to_owned(),
            profiles: catalog
                .profiles
                .iter()
                .filter(|p| p.sso_session() == Some(&session.key))
                .map(|p| p.name.clone())
                .collect(),
            state: cached_state(session, catalog),
            discovery: catalog
                .discovering
                .iter()
                .any(|name| name == session.key.label()),
        })
        .collect()
}

fn cached_state(session: &SsoSession, catalog: &ProfileCatalog) -> SignInState {
    let needed = |reason: &str| SignInState::SignInNeeded {
        reason: reason.to_owned(),
    };
    match CachedToken::load(&catalog.sso_cache_dir, &session.key) {
        Err(error) => needed(&error),
        Ok(None) => needed("not signed in yet"),
        Ok(Some(token)) => {
            let now = Utc::now();
            let valid = token.expires().is_some_and(|at| at > now);
            let renewable = token.refresh_token.is_some()
                && token.registration_expires().is_some_and(|at| at > now);
            if valid || renewable {
                SignInState::SignedIn
            } else {
                needed("the session has expired")
            }
        }
    }
}

/// Publishes the SSO sessions of a freshly read catalog, keeping any sign-in under way.
pub(super) fn publish_sessions(publisher: &Publisher, catalog: &ProfileCatalog) {
    let mut statuses = session_statuses(catalog);
    publisher.update(|s| {
        for status in &mut statuses {
            if let Some(SsoSessionStatus {
                state: state @ SignInState::SigningIn { .. },
                ..
            }) = s.sso_sessions.iter().find(|old| old.name == status.name)
            {
                status.state = state.clone();
            }
        }
        s.sso_sessions = statuses;
    });
}

/// Runs `Command::SignIn` for the session `name`: the device flow, with the code in the
/// snapshot and the browser opened at the URL; a refresh follows a successful sign-in.
pub(super) async fn sign_in(shared: Arc<Shared>, name: String) {
    let publisher = shared.publisher.clone();
    let set_state = |state: SignInState| {
        publisher.update(|s| {
            if let Some(status) = s.sso_sessions.iter_mut().find(|st| st.name == name) {
                status.state = state;
            }
        });
    };
    let catalog = match ProfileCatalog::load(&shared.aws_files) {
        Ok(catalog) => catalog,
        Err(error) => {
            publisher.notify(NoticeLevel::Error, error.to_string(), None);
            return;
        }
    };
    let Some(session) = catalog.sso_session(&name).cloned() else {
        publisher.notify(
            NoticeLevel::Error,
            format!("There is no SSO session `{name}` in the AWS config file."),
            None,
        );
        return;
    };
    let result = sso::sign_in(&session, &catalog.sso_cache_dir, |code| {
        set_state(SignInState::SigningIn {
            user_code: code.user_code.clone(),
            url: code.url().to_owned(),
        });
        if let Err(error) = sso::open_in_browser(code.url()) {
            publisher.notify(
                NoticeLevel::Warning,
                format!("{error}. Open {} and enter {}.", code.url(), code.user_code),
                None,
            );
        }
    })
    .await;
    match result {
        Ok(()) => {
            set_state(SignInState::SignedIn);
            let discovering = crate::sso::Discovery::load(&shared.aws_files.discovery_file)
                .is_ok_and(|d| d.enabled(&name));
            if discovering {
                list_accounts(&shared, &catalog, &session, true).await;
            }
            publisher.notify(
                NoticeLevel::Info,
                format!("Signed in to SSO session `{name}`."),
                None,
            );
            if let Some(commands) = shared.commands.upgrade() {
                let _ = commands.send(Command::Refresh);
            }
        }
        Err(error) => {
            set_state(SignInState::Failed {
                error: error.clone(),
            });
            publisher.notify(NoticeLevel::Error, error, None);
        }
    }
}

/// Runs `Command::DiscoverAccounts`: records the opt-in (or opt-out) for the session `name`,
/// lists its accounts and roles when turning it on, and refreshes.
pub(super) async fn set_discovery(shared: Arc<Shared>, name: String, enabled: bool) {
    let publisher = &shared.publisher;
    let catalog = match ProfileCatalog::load(&shared.aws_files) {
        Ok(catalog) => catalog,
        Err(error) => {
            publisher.notify(NoticeLevel::Error, error.to_string(), None);
            return;
        }
    };
    let Some(session) = catalog.sso_session(&name).cloned() else {
        publisher.notify(
            NoticeLevel::Error,
            format!("There is no SSO session `{name}` in the AWS config file."),
            None,
        );
        return;
    };
    if enabled {
        list_accounts(&shared, &catalog, &session, true).await;
    } else if let Err(error) = update_discovery(&shared, &name, |d| d.enabled = false) {
        publisher.notify(NoticeLevel::Error, error, None);
        return;
    }
    if let Some(commands) = shared.commands.upgrade() {
        let _ = commands.send(Command::Refresh);
    }
}

/// Lists the session's accounts and roles into the discovery file (turning discovery on when
/// `enable`); a session that needs a sign-in keeps its last listing and says so.
async fn list_accounts(
    shared: &Shared,
    catalog: &ProfileCatalog,
    session: &SsoSession,
    enable: bool,
) {
    let name = session.key.label().to_owned();
    let listed = sso::list_account_roles(session, &catalog.sso_cache_dir).await;
    let outcome = match listed {
        Ok(roles) => {
            let count = roles.len();
            update_discovery(shared, &name, |d| {
                d.enabled |= enable;
                d.roles = roles.into_iter().map(Into::into).collect();
            })
            .map(|()| {
                format!("SSO session `{name}` grants {count} account roles; each is a profile now.")
            })
        }
        Err(error) => {
            update_discovery(shared, &name, |d| d.enabled |= enable).and(Err(error.to_string()))
        }
    };
    match outcome {
        Ok(text) => shared.publisher.notify(NoticeLevel::Info, text, None),
        Err(error) => shared.publisher.notify(NoticeLevel::Warning, error, None),
    }
}

fn update_discovery(
    shared: &Shared,
    name: &str,
    change: impl FnOnce(&mut crate::sso::DiscoveredSession),
) -> Result<(), String> {
    let path = &shared.aws_files.discovery_file;
    let mut discovery = crate::sso::Discovery::load(path).unwrap_or_default();
    change(discovery.sessions.entry(name.to_owned()).or_default());
    discovery.store(path)
}

/// Looks up `account`'s alias in the background, once per account, and publishes it. The
/// host list does not wait for it, and a profile that may not list aliases simply adds none.
pub(super) fn look_up_alias(
    publisher: &Publisher,
    account: &str,
    sdk: &aws_config::SdkConfig,
    calls: &crate::inventory::CallBudget,
) {
    if publisher.current().account_aliases.contains_key(account) {
        return;
    }
    let (publisher, account, sdk, calls) = (
        publisher.clone(),
        account.to_owned(),
        sdk.clone(),
        calls.clone(),
    );
    tokio::spawn(async move {
        if let Some(alias) = crate::inventory::account_alias(&sdk, &calls).await {
            publisher.update(|s| {
                s.account_aliases.insert(account, alias);
            });
        }
    });
}

/// How long the engine waits for the user to type an MFA code.
const MFA_WAIT: Duration = Duration::from_secs(300);

/// Asks for MFA codes through the snapshot; one question at a time.
#[derive(Clone)]
pub(super) struct MfaFromApp(Arc<MfaQuestions>);

struct MfaQuestions {
    publisher: Publisher,
    waiting: Mutex<Option<oneshot::Sender<String>>>,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl MfaFromApp {
    pub(super) fn new(publisher: Publisher) -> Self {
        MfaFromApp(Arc::new(MfaQuestions {
            publisher,
            waiting: Mutex::new(None),
            one_at_a_time: tokio::sync::Mutex::new(()),
        }))
    }

    /// Answers the question the snapshot shows (`Command::SupplyMfaCode`); an empty code
    /// declines it.
    pub(super) fn supply(&self, code: String) {
        let waiting = self
            .0
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(waiting) = waiting {
            let _ = waiting.send(code);
        }
    }
}

impl MfaPrompt for MfaFromApp {
    fn code(
        &self,
        profile: &str,
        serial: &str,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> {
        let (profile, serial) = (profile.to_owned(), serial.to_owned());
        let questions = self.0.clone();
        Box::pin(async move {
            let _turn = questions.one_at_a_time.lock().await;
            let (answer, answered) = oneshot::channel();
            *questions.waiting.lock().unwrap_or_else(|e| e.into_inner()) = Some(answer);
            // The notice first, so a snapshot asking the question already explains it.
            questions.publisher.notify(
                NoticeLevel::Warning,
                format!("Profile `{profile}` needs the current code of MFA device {serial}."),
                None,
            );
            questions.publisher.update(|s| {
                s.mfa_request = Some(MfaRequest {
                    profile: profile.clone(),
                    serial: serial.clone(),
                })
            });
            let code = tokio::time::timeout(MFA_WAIT, answered).await;
            questions.publisher.update(|s| s.mfa_request = None);
            match code {
                Ok(Ok(code)) if !code.trim().is_empty() => Ok(code),
                Ok(_) => Err(format!("no MFA code was given for profile `{profile}`")),
                Err(_) => Err(format!(
                    "no MFA code was given for profile `{profile}` within {} minutes",
                    MFA_WAIT.as_secs() / 60
                )),
            }
        })
    }
}
