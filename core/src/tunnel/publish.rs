//! Turning the registry into reports for the app, as often as useful and no more.
//!
//! The publisher sleeps until something changes (a tunnel or connection changed state, or local
//! bytes moved after a quiet spell). Then it reports at once, and keeps reporting every
//! [`INTERVAL`] while bytes are moving so that counters and rates stay live, stopping once every
//! rate has fallen to zero. An idle app therefore does no periodic work at all.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::TunnelReport;
use super::registry::Registry;

/// Reports while bytes flow: about four a second.
pub(super) const INTERVAL: Duration = Duration::from_millis(250);

/// The function that receives each report.
pub(super) type OnReport = Box<dyn Fn(TunnelReport) + Send + Sync>;

/// Runs until the registry is dropped.
pub(super) async fn run(registry: Weak<Registry>, wake: Arc<Notify>, on_report: OnReport) {
    loop {
        wake.notified().await;
        loop {
            let Some(registry) = registry.upgrade() else {
                return;
            };
            let (report, moving) = registry.report(Instant::now());
            drop(registry);
            on_report(report);
            if !moving {
                break;
            }
            tokio::time::sleep(INTERVAL).await;
        }
    }
}
