//! The status line at the bottom of the window: how many hosts, whether a refresh is under way,
//! and every problem, each failed profile on a line of its own with the reason, so a broken
//! profile is never a silent gap in the table.

use bastionless_core::engine::Snapshot;

/// Draws the status line; `shown` is how many hosts the search keeps.
pub fn ui(ui: &mut egui::Ui, snapshot: &Snapshot, shown: usize) {
    ui.horizontal(|ui| {
        ui.label(host_count(snapshot.hosts.len(), shown));
        if snapshot.refreshing {
            ui.spinner();
            ui.label("Refreshing…");
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
    fn the_count_says_how_many_the_search_hides() {
        assert_eq!(host_count(42, 42), "42 hosts");
        assert_eq!(host_count(1, 1), "1 host");
        assert_eq!(host_count(42, 3), "3 of 42 hosts");
        assert_eq!(host_count(0, 0), "0 hosts");
    }
}
