//! The local audit log: one JSON line per tunnel or shell session that ended — when, which
//! profile, account and host, which route, how many bytes, and why it ended.
//!
//! It is for the user (and their security team) to answer "what did I connect to, and when":
//! it never holds tokens, presigned URLs, keys or passwords. Records are built from what the
//! app shows anyway (tunnel statuses), and free text — end reasons, which can quote a server's
//! message — has anything that looks like a URL or a signed query parameter cut out first.
//!
//! The file is `audit.jsonl` in Bastionless's data directory, readable by the owner only, and
//! each record is appended with one `write` (so concurrent processes, such as several
//! `bastionless proxy` under one rsync, never interleave within a line).

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;

use crate::tunnel::{RouteInfo, TunnelId, TunnelReport, TunnelState, TunnelStatus};

/// The file name in the data directory.
pub const AUDIT_FILE_NAME: &str = "audit.jsonl";

/// One ended tunnel or session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// When it ended (RFC 3339, UTC).
    pub time: String,
    /// When it was asked for.
    pub started: String,
    /// `tunnel` (a listener or a ProxyCommand) or `shell` (a Session Manager shell).
    pub kind: &'static str,
    pub profile: Option<String>,
    pub account: String,
    pub region: String,
    /// The instance id.
    pub host: String,
    /// What the user calls it (its Name tag, else its id).
    pub host_name: String,
    /// `eic` or `ssm`; none when no route could be worked out.
    pub route: Option<&'static str>,
    /// The EC2 Instance Connect Endpoint, for `eic`.
    pub endpoint: Option<String>,
    pub remote_port: Option<u16>,
    /// The tunnel's number within its process.
    pub tunnel: Option<u64>,
    /// The Session Manager session id, for shells.
    pub session: Option<String>,
    pub bytes_to_remote: u64,
    pub bytes_from_remote: u64,
    pub connections: u64,
    /// Why it ended, in words.
    pub end: String,
}

/// Where records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// `audit.jsonl` in Bastionless's data directory.
    pub fn default_path() -> Option<PathBuf> {
        crate::launch::data_dir()
            .ok()
            .map(|dir| dir.join(AUDIT_FILE_NAME))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` as one line.
    pub fn append(&self, record: &AuditRecord) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        options.open(&self.path)?.write_all(&line)
    }
}

/// RFC 3339 in UTC with milliseconds.
pub fn timestamp(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `text` with URLs and signed query parameters replaced by `<redacted>`: end reasons can
/// quote what a server or a library said.
pub fn redact(text: &str) -> String {
    text.split_inclusive(char::is_whitespace)
        .map(|word| {
            let lower = word.to_ascii_lowercase();
            let secret = lower.contains("://")
                || lower.contains("x-amz-")
                || lower.contains("token=")
                || lower.contains("signature");
            if secret {
                let tail = &word[word.trim_end().len()..];
                format!("<redacted>{tail}")
            } else {
                word.to_owned()
            }
        })
        .collect()
}

/// Records each tunnel once, when it ends: it failed or closed, it was closed (it disappears
/// from the reports), or the app exits ([`TunnelAudit::finish_all`]).
#[derive(Debug, Default)]
pub struct TunnelAudit {
    log: Option<AuditLog>,
    state: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    /// The last status of every tunnel not yet recorded.
    live: BTreeMap<TunnelId, TunnelStatus>,
    recorded: HashSet<TunnelId>,
}

impl TunnelAudit {
    /// Records to `log`; none when `None`.
    pub fn new(log: Option<AuditLog>) -> Self {
        Self {
            log,
            state: Mutex::default(),
        }
    }

    /// Where records go, if anywhere.
    pub fn path(&self) -> Option<&Path> {
        self.log.as_ref().map(AuditLog::path)
    }

    /// Records something that is not a tunnel (a shell session).
    pub fn record(&self, record: &AuditRecord) {
        if let Some(log) = &self.log {
            write(log, record);
        }
    }

    /// Takes the tunnel manager's latest report.
    pub fn observe(&self, report: &TunnelReport) {
        let Some(log) = &self.log else { return };
        let mut seen = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let present: HashSet<TunnelId> = report.tunnels.iter().map(|t| t.id).collect();
        let gone: Vec<TunnelId> = seen
            .live
            .keys()
            .filter(|id| !present.contains(id))
            .copied()
            .collect();
        for id in gone {
            if let Some(status) = seen.live.remove(&id) {
                write(log, &tunnel_record(&status, "closed".to_owned()));
                seen.recorded.insert(id);
            }
        }
        for status in &report.tunnels {
            if seen.recorded.contains(&status.id) {
                continue;
            }
            let end = match &status.state {
                TunnelState::Failed { reason } => Some(format!("failed: {}", redact(reason))),
                TunnelState::Closed => Some("ended".to_owned()),
                _ => None,
            };
            match end {
                Some(end) => {
                    write(log, &tunnel_record(status, end));
                    seen.live.remove(&status.id);
                    seen.recorded.insert(status.id);
                }
                None => {
                    seen.live.insert(status.id, status.clone());
                }
            }
        }
    }

    /// Records every tunnel still open as ended for `reason` (the app is exiting).
    pub fn finish_all(&self, reason: &str) {
        let Some(log) = &self.log else { return };
        let mut seen = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let live = std::mem::take(&mut seen.live);
        for (id, status) in live {
            write(log, &tunnel_record(&status, reason.to_owned()));
            seen.recorded.insert(id);
        }
    }
}

fn write(log: &AuditLog, record: &AuditRecord) {
    if let Err(error) = log.append(record) {
        tracing::warn!(path = %log.path().display(), %error, "could not write the audit log");
    }
}

/// The record of a tunnel that ended for `end`.
pub fn tunnel_record(status: &TunnelStatus, end: String) -> AuditRecord {
    let now = SystemTime::now();
    let (profile, route, endpoint) = match &status.route {
        Some(RouteInfo::Eic {
            profile,
            endpoint_id,
        }) => (
            Some(profile.clone()),
            Some("eic"),
            Some(endpoint_id.clone()),
        ),
        Some(RouteInfo::Ssm { profile }) => (Some(profile.clone()), Some("ssm"), None),
        None => (None, None, None),
    };
    AuditRecord {
        time: timestamp(now),
        started: timestamp(now.checked_sub(status.age()).unwrap_or(now)),
        kind: "tunnel",
        profile,
        account: status.target.host.account_id.clone(),
        region: status.target.host.region.clone(),
        host: status.target.host.instance_id.clone(),
        host_name: status.target.host_name.clone(),
        route,
        endpoint,
        remote_port: Some(status.target.remote_port),
        tunnel: Some(status.id.0),
        session: None,
        bytes_to_remote: status.bytes_to_remote,
        bytes_from_remote: status.bytes_from_remote,
        connections: status.connections_total,
        end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::HostKey;
    use crate::tunnel::{LocalEnd, TunnelTarget};

    fn status(id: u64, state: TunnelState) -> TunnelStatus {
        TunnelStatus {
            id: TunnelId(id),
            target: TunnelTarget {
                host: HostKey {
                    account_id: "111122223333".into(),
                    region: "eu-west-1".into(),
                    instance_id: "i-0aaa".into(),
                },
                host_name: "web-1".into(),
                remote_port: 22,
            },
            route: Some(RouteInfo::Eic {
                profile: "prod".into(),
                endpoint_id: "eice-0123".into(),
            }),
            local: LocalEnd::Stdio,
            state,
            bytes_to_remote: 10,
            bytes_from_remote: 20,
            rate_to_remote: 0,
            rate_from_remote: 0,
            open_connections: 0,
            connections_total: 1,
            started: std::time::Instant::now(),
            last_error: None,
            resumes: 0,
            rtt: None,
        }
    }

    fn report(tunnels: Vec<TunnelStatus>) -> TunnelReport {
        TunnelReport {
            tunnels,
            events: Vec::new(),
        }
    }

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn each_tunnel_is_recorded_once_when_it_ends_however_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/audit.jsonl");
        let audit = TunnelAudit::new(Some(AuditLog::at(&path)));
        audit.observe(&report(vec![
            status(1, TunnelState::Open),
            status(2, TunnelState::Listening),
            status(3, TunnelState::Open),
        ]));
        assert!(lines(&path).is_empty(), "nothing has ended yet");

        let failed = TunnelState::Failed {
            reason: "refused by https://eice.example/openTunnel?X-Amz-Signature=abc now".into(),
        };
        // 1 ended, 2 failed, 3 is still open; the same report again changes nothing.
        for _ in 0..2 {
            audit.observe(&report(vec![
                status(1, TunnelState::Closed),
                status(2, failed.clone()),
                status(3, TunnelState::Open),
            ]));
        }
        // 1 and 2 dismissed: already recorded. 3 closed by the user: it disappears.
        audit.observe(&report(vec![status(4, TunnelState::Open)]));
        audit.finish_all("the app exited");
        audit.finish_all("the app exited");

        let records = lines(&path);
        let ends: Vec<(u64, &str)> = records
            .iter()
            .map(|r| (r["tunnel"].as_u64().unwrap(), r["end"].as_str().unwrap()))
            .collect();
        assert_eq!(
            ends,
            [
                (1, "ended"),
                (2, "failed: refused by <redacted> now"),
                (3, "closed"),
                (4, "the app exited"),
            ]
        );
        let first = &records[0];
        assert_eq!(first["profile"], "prod");
        assert_eq!(first["account"], "111122223333");
        assert_eq!(first["host"], "i-0aaa");
        assert_eq!(first["host_name"], "web-1");
        assert_eq!(first["route"], "eic");
        assert_eq!(first["endpoint"], "eice-0123");
        assert_eq!(first["bytes_to_remote"], 10);
        assert_eq!(first["bytes_from_remote"], 20);
        assert!(first["time"].as_str().unwrap().ends_with('Z'));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("Signature") && !text.contains("https"),
            "{text}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn without_a_log_nothing_is_written() {
        let audit = TunnelAudit::new(None);
        audit.observe(&report(vec![status(1, TunnelState::Closed)]));
        audit.finish_all("x");
    }

    #[test]
    fn redaction_cuts_urls_and_signed_parameters_and_keeps_the_rest() {
        assert_eq!(
            redact("Close 1011: Unable to connect to target (check the security group)"),
            "Close 1011: Unable to connect to target (check the security group)"
        );
        assert_eq!(
            redact("GET wss://x/y?a=b\tX-Amz-Security-Token=QQ end"),
            "GET <redacted>\t<redacted> end"
        );
    }
}
