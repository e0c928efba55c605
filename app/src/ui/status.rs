//! The status line at the bottom of the window: how many hosts, how far a refresh has got
//! (regions scanned of those known), whether the list still shows hosts saved by an earlier
//! run, and every problem, each failed profile on a line of its own with the reason, so a broken
//! profile is never a silent gap in the table.

use std::time::{Duration, SystemTime};

use bastionless_core::engine::{ScanProgress, Snapshot};

/// Draws the status line; `shown` is how many hosts the search keeps.
pub fn ui(ui: &mut egui::Ui, snapshot: &Snapshot, shown: usize) {
    ui.horizontal(|ui| {
        ui.label(host_count(snapshot.hosts.len(), shown));
        if snapshot.refreshing {
            ui.spinner();
            ui.label(refreshing(snapshot.progress));
        }
        if let Some(saved) = snapshot.cached_at {
            let age = SystemTime::now().duration_since(saved).unwrap_or_default();
            ui.weak(format!("Faint hosts: saved {}", ago(age)));
        }
    });
    let error_colour = ui.visuals().error_fg_color;
    for (profile, error) in snapshot.failed_profiles() {
        ui.colored_label(error_colour, format!("profile {profile}: {error}"));
    }
    let warning_colour = ui.visuals().warn_fg_color;
    for warning in &snapshot.warnings {
        ui.colored_label(warning_colour, warning);
    }
    for profile in &snapshot.profiles {
        for warning in &profile.warnings {
            ui.colored_label(
                warning_colour,
                format!("profile {}: {warning}", profile.name),
            );
        }
    }
}

/// "Refreshing…", then "Refreshing… 3 of 7 regions" once regions are known.
fn refreshing(progress: ScanProgress) -> String {
    match progress.regions_total {
        0 => "Refreshing…".to_owned(),
        total => format!("Refreshing… {} of {total} regions", progress.regions_done),
    }
}

/// "just now", "5 minutes ago", "3 hours ago", "2 days ago".
fn ago(age: Duration) -> String {
    let minutes = age.as_secs() / 60;
    let (count, unit) = match minutes {
        0 => return "just now".to_owned(),
        1..60 => (minutes, "minute"),
        60..1440 => (minutes / 60, "hour"),
        _ => (minutes / 1440, "day"),
    };
    let plural = if count == 1 { "" } else { "s" };
    format!("{count} {unit}{plural} ago")
}

/// "42 hosts", or "3 of 42 hosts" while a search hides some.
fn host_count(total: usize, shown: usize) -> String {
    let noun = if total == 1 { "host" } else { "hosts" };
    if shown == total {
        format!("{total} {noun}")
    } else {
        format!("{shown} of {total} {noun}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_counts_regions_once_they_are_known() {
        assert_eq!(refreshing(ScanProgress::default()), "Refreshing…");
        let progress = ScanProgress {
            regions_done: 3,
            regions_total: 7,
        };
        assert_eq!(refreshing(progress), "Refreshing… 3 of 7 regions");
    }

    #[test]
    fn the_cache_age_is_said_in_the_largest_whole_unit() {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        assert_eq!(ago(Duration::from_secs(59)), "just now");
        assert_eq!(ago(minutes(1)), "1 minute ago");
        assert_eq!(ago(minutes(59)), "59 minutes ago");
        assert_eq!(ago(minutes(120)), "2 hours ago");
        assert_eq!(ago(minutes(1440)), "1 day ago");
    }

    #[test]
    fn the_count_says_how_many_the_search_hides() {
        assert_eq!(host_count(42, 42), "42 hosts");
        assert_eq!(host_count(1, 1), "1 host");
        assert_eq!(host_count(42, 3), "3 of 42 hosts");
        assert_eq!(host_count(0, 0), "0 hosts");
    }
}
