//! Credentials for signing each tunnel connection, fresh enough to be accepted.
//!
//! Every connection is presigned just before it connects, with the profile's own credentials
//! provider. That provider does no caching of its own (the SDK caches identities inside its
//! clients, not in the provider), so asking it per connection would mean one STS or SSO call per
//! `ssh` for role and SSO profiles. Temporary credentials are therefore reused until five
//! minutes before they expire; credentials without an expiry (static keys, read from memory)
//! are asked for every time, so an edited credentials file takes effect at once.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};

/// How long before expiry cached credentials stop being used.
const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);

/// A profile's credentials provider with a small cache in front.
#[derive(Debug)]
pub(super) struct FreshCredentials {
    provider: SharedCredentialsProvider,
    cached: Mutex<Option<Credentials>>,
}

impl FreshCredentials {
    pub(super) fn new(provider: SharedCredentialsProvider) -> Self {
        Self {
            provider,
            cached: Mutex::new(None),
        }
    }

    /// Credentials valid for at least a few more minutes at `now`, or the provider's error
    /// (with its causes) as text.
    pub(super) async fn get(&self, now: SystemTime) -> Result<Credentials, String> {
        if let Some(cached) = self.lock().as_ref().filter(|c| fresh(c, now)) {
            return Ok(cached.clone());
        }
        let credentials = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| crate::sdk_error::causes(&e))?;
        if credentials.expiry().is_some() {
            *self.lock() = Some(credentials.clone());
        }
        Ok(credentials)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Credentials>> {
        self.cached
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn fresh(credentials: &Credentials, now: SystemTime) -> bool {
    credentials
        .expiry()
        .is_some_and(|expiry| expiry > now + REFRESH_BEFORE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::future::ProvideCredentials as ProvideFuture;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Hands out credentials expiring `lifetime` after `now`, counting calls.
    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicUsize>,
        now: SystemTime,
        lifetime: Option<Duration>,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> ProvideFuture<'a>
        where
            Self: 'a,
        {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            ProvideFuture::ready(Ok(Credentials::new(
                format!("AKID{n}"),
                "secret",
                Some("token".into()),
                self.lifetime.map(|l| self.now + l),
                "test",
            )))
        }
    }

    fn source(lifetime: Option<Duration>, now: SystemTime) -> (FreshCredentials, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let provider = SharedCredentialsProvider::new(Counting {
            calls: calls.clone(),
            now,
            lifetime,
        });
        (FreshCredentials::new(provider), calls)
    }

    #[tokio::test]
    async fn temporary_credentials_are_reused_until_five_minutes_before_expiry() {
        let now = SystemTime::now();
        let (fresh, calls) = source(Some(Duration::from_secs(3600)), now);
        assert_eq!(fresh.get(now).await.unwrap().access_key_id(), "AKID0");
        assert_eq!(
            fresh
                .get(now + Duration::from_secs(60))
                .await
                .unwrap()
                .access_key_id(),
            "AKID0"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let near_expiry = now + Duration::from_secs(3600 - 299);
        assert_eq!(
            fresh.get(near_expiry).await.unwrap().access_key_id(),
            "AKID1"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn credentials_that_never_expire_are_asked_for_every_time() {
        let now = SystemTime::now();
        let (fresh, calls) = source(None, now);
        fresh.get(now).await.unwrap();
        fresh.get(now).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn credentials_about_to_expire_are_never_cached() {
        let now = SystemTime::now();
        let (fresh, calls) = source(Some(Duration::from_secs(120)), now);
        fresh.get(now).await.unwrap();
        fresh.get(now).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
