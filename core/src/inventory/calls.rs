//! The budget every inventory API call runs under: at most so many calls in flight across all
//! profiles and regions, and a time limit per call.
//!
//! A scan of every enabled region of every account is a few hundred calls. Unbounded, they would
//! open as many connections at once and trip EC2's request-rate throttling; one endpoint that
//! never answers (a captive portal, a dead proxy) would hold the refresh forever. The permit is
//! taken before the clock starts, so waiting for a turn never counts against a call's limit.
//! A paginated listing takes a turn per page.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use tokio::sync::Semaphore;

use crate::sdk_error::describe;

/// Shared by every scan of one engine; clones share the permits.
#[derive(Debug, Clone)]
pub struct CallBudget {
    permits: Arc<Semaphore>,
    timeout: Duration,
}

/// Why a call gave no answer to use, in a user's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFailure {
    /// `Code: message` from AWS, the transport's cause chain, or the time limit.
    pub message: String,
    /// The caller lacks an IAM permission: another profile of the account may have it.
    pub access_denied: bool,
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl CallBudget {
    /// Calls in flight at once, at most. A refresh is latency-bound: a large organisation (30
    /// accounts × 17 regions) is ~3,000 calls of ~100 ms each, so at 16 in flight it would take
    /// 20 s, at 256 about 1.5 s of waiting, at 512 about 0.75 s (`docs/benchmarks.md`,
    /// "Inventory at scale", measured 256 against 512). AWS throttles per account and region
    /// (EC2: a bucket of 100 describe calls, refilled 20 a second), and one region's scan is
    /// about seven calls, so a wide budget spread over regions stays far below it; the bound is
    /// there for the process's own sockets ([`CallBudget::sized_for_this_process`]).
    pub const IN_FLIGHT: usize = 512;
    /// Open descriptors the process may have per call in flight: one for the call's socket,
    /// one left for everything else (tunnels, their listeners, files).
    const DESCRIPTORS_PER_CALL: u64 = 2;
    /// What a Unix process may open unless it asks for more (macOS's default soft limit).
    const DESCRIPTORS_UNRAISED: u64 = 256;
    /// How long one call (the SDK's retries included) may take unless configured otherwise.
    pub const TIMEOUT: Duration = Duration::from_secs(30);

    pub fn new(in_flight: usize, timeout: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(in_flight.max(1))),
            timeout,
        }
    }

    /// The engine's budget: [`Self::IN_FLIGHT`] calls, or fewer if the process may not open
    /// enough descriptors for them. Processes start with a low soft limit on open files (256
    /// on macOS, 1024 on Linux) below a much higher hard limit; the soft limit is raised first,
    /// as far as the hard limit allows, so a refresh never fails a call with "too many open
    /// files" halfway through.
    pub fn sized_for_this_process() -> Self {
        let wanted = Self::IN_FLIGHT as u64 * Self::DESCRIPTORS_PER_CALL;
        let allowed = rlimit::increase_nofile_limit(wanted).unwrap_or_else(|error| {
            tracing::debug!("could not raise the open-files limit: {error}");
            Self::DESCRIPTORS_UNRAISED
        });
        let in_flight = (allowed / Self::DESCRIPTORS_PER_CALL).min(Self::IN_FLIGHT as u64);
        Self::new(in_flight as usize, Self::TIMEOUT)
    }

    /// Runs one call in its turn, within the time limit.
    pub(crate) async fn call<T, E, R>(
        &self,
        call: impl Future<Output = Result<T, SdkError<E, R>>>,
    ) -> Result<T, CallFailure>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        // The semaphore is never closed, so a permit always comes.
        let _permit = self.permits.acquire().await;
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(|error| CallFailure::from_sdk(&error)),
            Err(_) => Err(self.timed_out()),
        }
    }

    /// Fetches the next page of a paginated listing in its turn; `None` after the last page.
    pub(crate) async fn page<T, E, R>(
        &self,
        next: impl Future<Output = Option<Result<T, SdkError<E, R>>>>,
    ) -> Result<Option<T>, CallFailure>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let _permit = self.permits.acquire().await;
        match tokio::time::timeout(self.timeout, next).await {
            Ok(page) => page
                .transpose()
                .map_err(|error| CallFailure::from_sdk(&error)),
            Err(_) => Err(self.timed_out()),
        }
    }

    fn timed_out(&self) -> CallFailure {
        CallFailure {
            message: format!(
                "no answer within {} s; check the network or proxy, then refresh",
                self.timeout.as_secs()
            ),
            access_denied: false,
        }
    }
}

impl Default for CallBudget {
    fn default() -> Self {
        Self::new(Self::IN_FLIGHT, Self::TIMEOUT)
    }
}

impl CallFailure {
    fn from_sdk<E, R>(error: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        Self {
            message: describe(error),
            access_denied: is_access_denied(error.code()),
        }
    }
}

/// The codes AWS answers a missing IAM permission with.
fn is_access_denied(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::error::ErrorMetadata;
    use aws_sdk_ec2::operation::describe_regions::DescribeRegionsError;

    type Answer = Result<(), SdkError<DescribeRegionsError, ()>>;

    fn service_error(code: &str) -> Answer {
        let error = DescribeRegionsError::generic(
            ErrorMetadata::builder()
                .code(code)
                .message("You are not authorized to perform this operation.")
                .build(),
        );
        Err(SdkError::service_error(error, ()))
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_never_answers_fails_after_the_time_limit() {
        let budget = CallBudget::new(2, Duration::from_secs(30));
        let failure = budget
            .call(std::future::pending::<Answer>())
            .await
            .unwrap_err();
        assert!(
            failure.message.starts_with("no answer within 30 s"),
            "{failure}"
        );
        assert!(!failure.access_denied);
    }

    #[tokio::test]
    async fn a_missing_permission_is_told_from_other_failures() {
        let budget = CallBudget::default();
        let denied = budget
            .call(async { service_error("UnauthorizedOperation") })
            .await
            .unwrap_err();
        assert!(denied.access_denied);
        assert!(
            denied.message.starts_with("UnauthorizedOperation: "),
            "{denied}"
        );
        let throttled = budget
            .call(async { service_error("RequestLimitExceeded") })
            .await
            .unwrap_err();
        assert!(!throttled.access_denied);
    }

    #[cfg(unix)]
    #[test]
    fn the_engine_s_budget_fits_in_the_descriptors_the_process_may_open() {
        let budget = CallBudget::sized_for_this_process();
        let in_flight = budget.permits.available_permits() as u64;
        let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap();
        assert!((1..=CallBudget::IN_FLIGHT as u64).contains(&in_flight));
        assert!(
            soft >= in_flight * CallBudget::DESCRIPTORS_PER_CALL,
            "{in_flight} calls in flight with a soft limit of {soft} open files"
        );
        if hard >= CallBudget::IN_FLIGHT as u64 * CallBudget::DESCRIPTORS_PER_CALL {
            assert_eq!(
                in_flight,
                CallBudget::IN_FLIGHT as u64,
                "raised as far as needed"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn no_more_calls_than_the_budget_run_at_once() {
        let budget = CallBudget::new(3, Duration::from_secs(30));
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let calls = (0..10).map(|_| {
            let (budget, running, most) = (budget.clone(), running.clone(), most.clone());
            async move {
                budget
                    .call(async {
                        let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        Answer::Ok(())
                    })
                    .await
            }
        });
        let results = futures_util::future::join_all(calls).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}
