//! Session Manager sessions as the service keeps them: who started which session to which
//! instance, the tokens that may open its data channel, its state, and the agent running it.
//!
//! A session exists from StartSession until it is terminated (by TerminateSession, the client's
//! TerminateSession flag, the idle timeout, the maximum duration, or its end on the instance).
//! Its agent starts when the client first opens the data channel and keeps the session's
//! protocol state across WebSocket connections, so a client can resume (spec §8.3).
//!
//! Tokens are bearer credentials: only their SHA-256 is kept, and they are never logged. Each
//! is good for [`TOKEN_LIFETIME`] on the simulated clock ("valid only long enough to ensure the
//! connection is successful", §1.1) and may be presented more than once in that time (the
//! plugin retries a failed first connection with the same token, §8.3).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use rand::RngCore as _;
use sha2::{Digest, Sha256};

use super::agent::{self, AgentHandle, AgentSpec};
use super::documents::SessionKind;
use crate::listener::ShutdownSignal;
use crate::world::World;

/// How long a token from StartSession or ResumeSession can open the data channel.
pub const TOKEN_LIFETIME: TimeDelta = TimeDelta::seconds(60);

/// Where a session stands, as DescribeSessions would say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    /// Started; no client has opened the data channel yet.
    Connecting,
    /// A client's WebSocket is attached to the agent.
    Connected,
    /// The agent runs but no client is attached (a client may resume).
    Disconnected,
    /// Over, with the reason given to the client in `channel_closed` (often empty).
    Terminated { reason: String },
}

/// The Session Manager preferences in force (the account's `SSM-SessionManagerRunShell`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preferences {
    /// The idle session timeout, on the simulated clock.
    pub idle_timeout: TimeDelta,
    /// The maximum session duration, if set.
    pub max_duration: Option<TimeDelta>,
    /// Whether the agent paces its output as the real one does (1024-byte messages, 1 ms
    /// apart, spec §9).
    pub pacing: bool,
}

/// What StartSession and ResumeSession return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub session_id: String,
    pub token: String,
    pub stream_url: String,
}

/// The parts of a StartSession request the service keeps.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub account: String,
    pub region: String,
    /// The IAM user name, the prefix of session ids.
    pub user_name: String,
    pub instance_id: String,
    pub agent_version: String,
    pub kind: SessionKind,
}

/// Why a data channel was refused; the reason goes into the WebSocket Close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub &'static str);

#[derive(Debug)]
struct Token {
    digest: [u8; 32],
    expires: DateTime<Utc>,
}

#[derive(Debug)]
struct Session {
    new: NewSession,
    tokens: Vec<Token>,
    state: SessionState,
    agent: Option<AgentHandle>,
}

/// Every session of a running simulator.
#[derive(Debug)]
pub struct SessionManager {
    sessions: Mutex<HashMap<String, Session>>,
    /// `wss://127.0.0.1:PORT` (or `ws://…`): the data channel listener, as StreamUrls name it.
    data_channel_base: String,
    preferences: Preferences,
}

impl SessionManager {
    pub fn new(data_channel_base: String, preferences: Preferences) -> SessionManager {
        SessionManager {
            sessions: Mutex::new(HashMap::new()),
            data_channel_base,
            preferences,
        }
    }

    /// Records a new session and its first token.
    pub fn start(&self, new: NewSession, now: DateTime<Utc>) -> Grant {
        let session_id = format!("{}-{}", new.user_name, random_hex(17));
        let region = new.region.clone();
        let token = new_token();
        let session = Session {
            new,
            tokens: vec![Token {
                digest: digest(&token),
                expires: now + TOKEN_LIFETIME,
            }],
            state: SessionState::Connecting,
            agent: None,
        };
        lock(&self.sessions).insert(session_id.clone(), session);
        Grant {
            stream_url: self.stream_url(&session_id, &region),
            session_id,
            token,
        }
    }

    /// A new token for a session of `account` in `region`: `Err` when there is no such
    /// session, `Ok(None)` when it is over (the plugin then reports "timed out", §1.2).
    pub fn resume(
        &self,
        account: &str,
        region: &str,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Grant>, ()> {
        let mut sessions = lock(&self.sessions);
        let session = sessions
            .get_mut(session_id)
            .filter(|s| s.new.account == account && s.new.region == region)
            .ok_or(())?;
        if matches!(session.state, SessionState::Terminated { .. }) {
            return Ok(None);
        }
        let token = new_token();
        session.tokens.retain(|t| t.expires > now);
        session.tokens.push(Token {
            digest: digest(&token),
            expires: now + TOKEN_LIFETIME,
        });
        Ok(Some(Grant {
            stream_url: self.stream_url(session_id, region),
            session_id: session_id.to_owned(),
            token,
        }))
    }

    /// Ends a session of `account` in `region` (TerminateSession). Its agent sends the client
    /// `channel_closed`. Returns whether there was such a session still running.
    pub fn terminate(&self, account: &str, region: &str, session_id: &str) -> bool {
        let mut sessions = lock(&self.sessions);
        let Some(session) = sessions
            .get_mut(session_id)
            .filter(|s| s.new.account == account && s.new.region == region)
        else {
            return false;
        };
        if matches!(session.state, SessionState::Terminated { .. }) {
            return false;
        }
        match &session.agent {
            Some(agent) => agent.terminate(),
            None => {
                session.state = SessionState::Terminated {
                    reason: String::new(),
                };
                session.tokens.clear();
            }
        }
        true
    }

    /// Admits a data channel that presented `token` for `session_id`, starting the session's
    /// agent on the first connection; the caller attaches the connection to the handle.
    pub fn open(
        &self,
        world: &Arc<World>,
        session_id: &str,
        token: &str,
        now: DateTime<Utc>,
        shutdown: ShutdownSignal,
    ) -> Result<AgentHandle, Refusal> {
        let mut sessions = lock(&self.sessions);
        let session = sessions
            .get_mut(session_id)
            .ok_or(Refusal("The session does not exist"))?;
        let presented = digest(token);
        if !session
            .tokens
            .iter()
            .any(|t| t.digest == presented && t.expires > now)
        {
            return Err(Refusal("The token is not valid for this session"));
        }
        if matches!(session.state, SessionState::Terminated { .. }) {
            return Err(Refusal("The session is terminated"));
        }
        let handle = session.agent.get_or_insert_with(|| {
            agent::spawn(
                Arc::clone(world),
                AgentSpec {
                    session_id: session_id.to_owned(),
                    instance_id: session.new.instance_id.clone(),
                    agent_version: session.new.agent_version.clone(),
                    kind: session.new.kind.clone(),
                    preferences: self.preferences,
                },
                shutdown,
            )
        });
        Ok(handle.clone())
    }

    /// The agent reports a client attached or gone.
    pub fn set_connected(&self, session_id: &str, connected: bool) {
        if let Some(session) = lock(&self.sessions).get_mut(session_id)
            && !matches!(session.state, SessionState::Terminated { .. })
        {
            session.state = if connected {
                SessionState::Connected
            } else {
                SessionState::Disconnected
            };
        }
    }

    /// The agent reports the session over.
    pub fn ended(&self, session_id: &str, reason: &str) {
        if let Some(session) = lock(&self.sessions).get_mut(session_id) {
            session.state = SessionState::Terminated {
                reason: reason.to_owned(),
            };
            session.agent = None;
            session.tokens.clear();
        }
    }

    /// Every session StartSession has granted, in no particular order.
    pub fn ids(&self) -> Vec<String> {
        lock(&self.sessions).keys().cloned().collect()
    }

    /// Where a session stands, for tests.
    pub fn state(&self, session_id: &str) -> Option<SessionState> {
        lock(&self.sessions)
            .get(session_id)
            .map(|session| session.state.clone())
    }

    /// Cuts a session's WebSocket without a Close frame (fault injection). Returns whether a
    /// client was attached.
    pub fn cut(&self, session_id: &str) -> bool {
        lock(&self.sessions)
            .get(session_id)
            .and_then(|session| session.agent.as_ref())
            .is_some_and(AgentHandle::cut)
    }

    /// `wss://…/v1/data-channel/<id>?role=publish_subscribe&cell-number=…` (§1.1; the
    /// cell number is opaque routing data, here derived from the region).
    fn stream_url(&self, session_id: &str, region: &str) -> String {
        let cell = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(&Sha256::digest(region.as_bytes())[..12]);
        format!(
            "{}/v1/data-channel/{session_id}?role=publish_subscribe&cell-number={cell}",
            self.data_channel_base
        )
    }
}

fn new_token() -> String {
    let mut bytes = [0u8; 96];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn random_hex(digits: usize) -> String {
    let mut bytes = vec![0u8; digits.div_ceil(2)];
    rand::rng().fill_bytes(&mut bytes);
    let mut text = hex::encode(bytes);
    text.truncate(digits);
    text
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Every critical section leaves the map consistent; a panic elsewhere must not wedge it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manager() -> SessionManager {
        SessionManager::new(
            "wss://127.0.0.1:4443".into(),
            Preferences {
                idle_timeout: TimeDelta::minutes(20),
                max_duration: None,
                pacing: false,
            },
        )
    }

    fn new_session() -> NewSession {
        NewSession {
            account: "111122223333".into(),
            region: "us-east-1".into(),
            user_name: "alice".into(),
            instance_id: "i-0123456789abcdef0".into(),
            agent_version: "3.3.1142.0".into(),
            kind: SessionKind::Shell,
        }
    }

    #[test]
    fn a_session_gets_an_id_a_token_and_a_stream_url() {
        let grant = manager().start(new_session(), Utc::now());
        let (user, suffix) = grant.session_id.split_once('-').expect("user-suffix");
        assert_eq!((user, suffix.len()), ("alice", 17));
        assert!(grant.token.len() <= 300 && grant.token.len() >= 100);
        assert!(grant.stream_url.starts_with(&format!(
            "wss://127.0.0.1:4443/v1/data-channel/{}?role=publish_subscribe&cell-number=",
            grant.session_id
        )));
    }

    #[test]
    fn resume_needs_a_live_session_of_the_callers_account_and_region() {
        let sessions = manager();
        let now = Utc::now();
        let grant = sessions.start(new_session(), now);
        let resumed = sessions
            .resume("111122223333", "us-east-1", &grant.session_id, now)
            .expect("exists")
            .expect("a token");
        assert_ne!(resumed.token, grant.token);
        assert_eq!(resumed.stream_url, grant.stream_url);
        assert_eq!(
            sessions.resume("444455556666", "us-east-1", &grant.session_id, now),
            Err(())
        );
        assert_eq!(
            sessions.resume("111122223333", "eu-west-1", &grant.session_id, now),
            Err(())
        );
        assert!(sessions.terminate("111122223333", "us-east-1", &grant.session_id));
        assert!(!sessions.terminate("111122223333", "us-east-1", &grant.session_id));
        assert_eq!(
            sessions.resume("111122223333", "us-east-1", &grant.session_id, now),
            Ok(None)
        );
        assert_eq!(
            sessions.state(&grant.session_id),
            Some(SessionState::Terminated {
                reason: String::new()
            })
        );
    }
}
