//! The status line at the bottom of the window: how many hosts, when the list was last
//! refreshed, whether it still shows hosts saved by an earlier run, a button listing every
//! profile with its account and state, and every problem, each failed profile on a line of its
//! own with the reason, so a broken profile is never a silent gap in the table.

use std::time::{Duration, SystemTime};

use bastionless_core::engine::{ProfileState, Snapshot};

use super::format::clock_time;

/// The status line's own state: when the last refresh ended (as this window saw it), and
/// whether the profiles list is open.
#[derive(Debug, Default)]
pub struct StatusLine {
    refreshed_at: Option<SystemTime>,
    was_refreshing: bool,
    profiles_open: bool,
}

impl StatusLine {
    /// Draws the status line; `shown` is how many hosts the search keeps.
    pub fn ui(&mut self, ui: &mut egui::Ui, snapshot: &Snapshot, shown: usize) {
        if self.was_refreshing && !snapshot.refreshing {
            self.refreshed_at = Some(SystemTime::now());
        }
        self.was_refreshing = snapshot.refreshing;
        ui.horizontal(|ui| {
            ui.label(host_count(snapshot.hosts.len(), shown));
            if snapshot.refreshing {
                ui.spinner();
                ui.label(refreshing(snapshot.progress));
            } else if let Some(at) = self.refreshed_at {
                ui.weak(format!("refreshed at {}", clock_time(at)));
            }
            if let Some(saved) = snapshot.cached_at {
                let age = SystemTime::now().duration_since(saved).unwrap_or_default();
                ui.weak(format!("Faint hosts: saved {}", ago(age)));
            }
            let failed = snapshot.failed_profiles().count();
            let summary = match failed {
                0 => format!("Profiles: {}", snapshot.profiles.len()),
                n => format!("Profiles: {} ({n} failing)", snapshot.profiles.len()),
            };
            ui.toggle_value(&mut self.profiles_open, summary);
        });
        if self.profiles_open {
            profiles_grid(ui, snapshot);
        }
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
}

/// One line per profile: name, account, state.
fn profiles_grid(ui: &mut egui::Ui, snapshot: &Snapshot) {
    egui::Grid::new("profiles").striped(true).show(ui, |ui| {
        for profile in &snapshot.profiles {
            ui.label(&profile.name);
            ui.label(
                profile
                    .account_id
                    .as_deref()
                    .unwrap_or("account not known yet"),
            );
            match &profile.state {
                ProfileState::Loading => ui.label("scanning…"),
                ProfileState::Ready { hosts } => match &profile.same_account_as {
                    Some(other) => ui.label(format!("ok (scanned through {other})")),
                    None => ui.label(format!("ok, {hosts} hosts")),
                },
                ProfileState::Failed { .. } => {
                    ui.colored_label(ui.visuals().error_fg_color, "error (see below)")
                }
            };
            ui.end_row();
        }
    });
}

/// "Refreshing…", then "Refreshing… 3 of 7 regions" once regions are known.
fn refreshing(progress: bastionless_core::engine::ScanProgress) -> String {
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
    use bastionless_core::engine::ScanProgress;

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
