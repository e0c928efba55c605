//! The SSO token cache, shared with the AWS CLI: `~/.aws/sso/cache/<sha1>.json`, where the
//! hash is of the session name (`[sso-session NAME]`) or, for a legacy profile, of its start
//! URL, with the CLI's JSON field names. A sign-in in either tool serves both.
//!
//! Files are written whole to a temporary file (mode 0600) and renamed over the old one, so a
//! reader never sees half a token and a crash leaves the previous one.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use super::SsoSessionKey;

/// One cached sign-in: the access token and what renews it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedToken {
    pub start_url: String,
    pub region: String,
    pub access_token: String,
    /// RFC 3339 in UTC (`2024-05-01T12:00:00Z`), as the CLI writes it.
    pub expires_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("start_url", &self.start_url)
            .field("region", &self.region)
            .field("expires_at", &self.expires_at)
            .field("refreshable", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

impl CachedToken {
    /// When the access token expires; `None` when the field cannot be read (treated as expired).
    pub fn expires(&self) -> Option<DateTime<Utc>> {
        parse_time(&self.expires_at)
    }

    /// When the client registration (which refreshing needs) expires.
    pub fn registration_expires(&self) -> Option<DateTime<Utc>> {
        self.registration_expires_at.as_deref().and_then(parse_time)
    }

    /// Formats `at` as the CLI does.
    pub fn format_time(at: DateTime<Utc>) -> String {
        at.to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// Reads the token cached for `key` under `dir`; `Ok(None)` when there is none.
    pub fn load(dir: &Path, key: &SsoSessionKey) -> Result<Option<CachedToken>, String> {
        let path = cache_file(dir, key);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(format!(
                    "cannot read the SSO token cache {}: {e}",
                    path.display()
                ));
            }
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            format!(
                "the SSO token cache {} is damaged ({e}); sign in again to replace it",
                path.display()
            )
        })
    }

    /// Writes this token for `key` under `dir`, replacing any earlier one.
    pub fn store(&self, dir: &Path, key: &SsoSessionKey) -> Result<(), String> {
        let fail = |e: std::io::Error| {
            format!("cannot write the SSO token cache in {}: {e}", dir.display())
        };
        std::fs::create_dir_all(dir).map_err(fail)?;
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
        let json = serde_json::to_vec(self).map_err(|e| e.to_string())?;
        file.write_all(&json).map_err(fail)?;
        file.as_file().sync_all().map_err(fail)?;
        file.persist(cache_file(dir, key))
            .map_err(|e| fail(e.error))?;
        Ok(())
    }
}

/// `dir/<sha1 hex of the session name or start URL>.json`.
pub fn cache_file(dir: &Path, key: &SsoSessionKey) -> PathBuf {
    let seed = match key {
        SsoSessionKey::Named(name) => name.as_str(),
        SsoSessionKey::Legacy { start_url, .. } => start_url.as_str(),
    };
    dir.join(format!(
        "{}.json",
        hex::encode(Sha1::digest(seed.as_bytes()))
    ))
}

/// The CLI writes `…Z`; older tools wrote `…UTC` or an offset. Accept them all.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_rfc3339(&text.replace("UTC", "Z")))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_the_sha1_of_the_session_name_or_start_url() {
        let dir = Path::new("/c");
        // sha1("my-sso") and sha1("https://d-abc.awsapps.com/start"), as the AWS CLI names them.
        assert_eq!(
            cache_file(dir, &SsoSessionKey::Named("my-sso".into())),
            Path::new("/c").join(format!("{}.json", hex::encode(Sha1::digest(b"my-sso"))))
        );
        let legacy = SsoSessionKey::Legacy {
            start_url: "https://d-abc.awsapps.com/start".into(),
            region: "us-east-1".into(),
        };
        assert_eq!(
            cache_file(dir, &legacy).file_name().unwrap().len(),
            40 + ".json".len()
        );
    }

    #[test]
    fn a_token_round_trips_with_the_cli_field_names_and_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let key = SsoSessionKey::Named("corp".into());
        let token = CachedToken {
            start_url: "https://x.awsapps.com/start".into(),
            region: "us-east-1".into(),
            access_token: "aoa-secret".into(),
            expires_at: "2030-01-01T00:00:00Z".into(),
            client_id: Some("cid".into()),
            client_secret: Some("csecret".into()),
            registration_expires_at: Some("2030-03-01T00:00:00Z".into()),
            refresh_token: Some("aor".into()),
        };
        token.store(dir.path(), &key).unwrap();
        let text = std::fs::read_to_string(cache_file(dir.path(), &key)).unwrap();
        for field in [
            "startUrl",
            "region",
            "accessToken",
            "expiresAt",
            "clientId",
            "clientSecret",
            "registrationExpiresAt",
            "refreshToken",
        ] {
            assert!(text.contains(&format!("\"{field}\"")), "{field} in {text}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(cache_file(dir.path(), &key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            CachedToken::load(dir.path(), &key).unwrap(),
            Some(token.clone())
        );
        assert!(!format!("{token:?}").contains("aoa-secret"));
    }
}
