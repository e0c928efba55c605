//! The hosts table: one row per instance the search keeps, with its best route as a badge
//! whose tooltip gives every route's verdict and reasons.
//!
//! Accounts can hold thousands of instances, so the table lays out only the rows on screen
//! (`TableBody::rows`), and the search is re-run only when the snapshot or the query changes,
//! not on every frame. Because off-screen rows are never laid out, egui cannot size columns from
//! them; each column is instead made wide enough for its longest text over every host. Hosts
//! from the disk cache that the scan under way has not confirmed yet are drawn faint.

use bastionless_core::engine::{ProfileState, Snapshot};
use bastionless_core::inventory::{Host, HostQuery};
use bastionless_core::route::RouteReport;
use egui_extras::{Column, TableBuilder};

const HEADERS: [&str; 7] = [
    "Name",
    "Instance ID",
    "Profile",
    "Region",
    "State",
    "Private IP",
    "Route",
];

/// The route column's index in [`HEADERS`].
const ROUTE: usize = 6;

/// No column is made wider than this to fit its text; longer text is cut short with "…".
const MAX_FITTED_WIDTH: f32 = 320.0;

/// The table and the rows the current search keeps.
#[derive(Debug, Default)]
pub struct HostsTable {
    /// Indexes into the snapshot's hosts that match the query, in snapshot order.
    shown: Vec<usize>,
    /// The snapshot generation and query `shown` was computed for.
    shown_for: Option<(u64, HostQuery)>,
    /// Per column, its longest text over every host (and its header), to size it by.
    longest: [String; HEADERS.len()],
}

impl HostsTable {
    /// Draws the table (or a line saying why it is empty).
    pub fn ui(&mut self, ui: &mut egui::Ui, snapshot: &Snapshot, query: &HostQuery) {
        self.refilter(snapshot, query);
        if self.shown.is_empty() {
            ui.centered_and_justified(|ui| ui.weak(empty_reason(snapshot, query)));
            return;
        }
        let row_height = ui.spacing().interact_size.y;
        let font = egui::TextStyle::Body.resolve(ui.style());
        let padding = ui.spacing().item_spacing.x;
        let fitted_widths = self.longest.each_ref().map(|text| {
            let text_width = ui.ctx().fonts_mut(|fonts| {
                fonts
                    .layout_no_wrap(text.clone(), font.clone(), egui::Color32::PLACEHOLDER)
                    .size()
                    .x
            });
            (text_width + padding).min(MAX_FITTED_WIDTH)
        });
        let mut table = TableBuilder::new(ui)
            .striped(true)
            .resizable(true)
            .auto_shrink(false)
            .cell_layout(egui::Layout::left_to_right(egui::Align::Center));
        for (index, width) in fitted_widths.into_iter().enumerate() {
            let column = if index + 1 == HEADERS.len() {
                Column::remainder()
            } else {
                Column::auto()
            };
            table = table.column(column.at_least(width).clip(true));
        }
        table
            .header(row_height, |mut header| {
                for title in HEADERS {
                    header.col(|ui| {
                        ui.strong(title);
                    });
                }
            })
            .body(|body| {
                body.rows(row_height, self.shown.len(), |mut row| {
                    let host = &snapshot.hosts[self.shown[row.index()]];
                    let (badge, explanation) = route_cell(snapshot.route(host));
                    for (column, cell) in cells(host, &badge).into_iter().enumerate() {
                        row.col(|ui| {
                            let mut text = egui::RichText::new(cell);
                            if host.stale {
                                text = text.weak();
                            }
                            let label = ui.add(egui::Label::new(text).truncate());
                            if column == ROUTE {
                                label.on_hover_text(&explanation);
                            } else if host.stale {
                                label.on_hover_text(
                                    "From the host list saved by an earlier scan; not confirmed \
                                     by the latest one yet",
                                );
                            }
                        });
                    }
                });
            });
    }

    /// Runs the search over the snapshot (unless it already has) and says how many hosts it keeps.
    pub fn refilter(&mut self, snapshot: &Snapshot, query: &HostQuery) -> usize {
        let up_to_date = self
            .shown_for
            .as_ref()
            .is_some_and(|(generation, shown_query)| {
                *generation == snapshot.generation && shown_query == query
            });
        let snapshot_changed = self
            .shown_for
            .as_ref()
            .is_none_or(|(generation, _)| *generation != snapshot.generation);
        if snapshot_changed {
            self.longest = longest_cells(snapshot);
        }
        if !up_to_date {
            self.shown = snapshot
                .hosts
                .iter()
                .enumerate()
                .filter(|(_, host)| query.matches(host))
                .map(|(index, _)| index)
                .collect();
            self.shown_for = Some((snapshot.generation, query.clone()));
        }
        self.shown.len()
    }
}

/// The table's cells for one host, in column order, with `badge` in the route column.
fn cells<'a>(host: &'a Host, badge: &'a str) -> [&'a str; HEADERS.len()] {
    [
        host.display_name(),
        &host.instance_id,
        &host.profile,
        &host.region,
        host.state.as_str(),
        host.private_ip.as_deref().unwrap_or("—"),
        badge,
    ]
}

/// The route badge (`EIC`, `SSM?`, `none`) and its tooltip: the purpose, then every route with
/// its verdict and reasons, best first.
fn route_cell(report: Option<&RouteReport>) -> (String, String) {
    let Some(report) = report else {
        return (
            "…".to_owned(),
            "Routes are worked out once the host's region is scanned".to_owned(),
        );
    };
    let mut explanation = report.purpose.to_string();
    for route in &report.routes {
        explanation.push_str(&format!(
            "\n\n{}: {}",
            route.method.label(),
            route.verdict.as_str()
        ));
        for reason in &route.reasons {
            explanation.push_str(&format!("\n• {reason}"));
        }
    }
    (report.badge(), explanation)
}

/// Per column, the text with the most characters among the header and every host's cell.
fn longest_cells(snapshot: &Snapshot) -> [String; HEADERS.len()] {
    let mut longest = HEADERS.map(str::to_owned);
    for host in &snapshot.hosts {
        let (badge, _) = route_cell(snapshot.route(host));
        for (longest, cell) in longest.iter_mut().zip(cells(host, &badge)) {
            if cell.chars().count() > longest.chars().count() {
                *longest = cell.to_owned();
            }
        }
    }
    longest
}

fn empty_reason(snapshot: &Snapshot, query: &HostQuery) -> &'static str {
    if !snapshot.hosts.is_empty() && !query.is_empty() {
        "No host matches the search."
    } else if snapshot.refreshing {
        "Looking for instances…"
    } else if snapshot.profiles.is_empty() {
        "No AWS profiles found. Add one with `aws configure` (or try `bastionless --demo`), then press Refresh."
    } else if !snapshot
        .profiles
        .iter()
        .any(|p| matches!(p.state, ProfileState::Ready { .. }))
    {
        "No profile could be scanned; the reasons are listed below."
    } else {
        "No instances found in any profile."
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bastionless_core::engine::ProfileStatus;
    use bastionless_core::inventory::{InstanceState, Platform};

    fn host(name: &str) -> Host {
        Host {
            instance_id: format!("i-{name}"),
            name: Some(name.to_owned()),
            tags: Default::default(),
            state: InstanceState::Running,
            platform: Platform::Linux,
            private_ip: None,
            public_ip: None,
            vpc_id: None,
            subnet_id: None,
            availability_zone: None,
            key_name: None,
            image: None,
            security_group_ids: Vec::new(),
            profile: "dev".to_owned(),
            account_id: "111122223333".to_owned(),
            region: "us-east-1".to_owned(),
            stale: false,
        }
    }

    fn snapshot(generation: u64, names: &[&str]) -> Snapshot {
        Snapshot {
            generation,
            hosts: names.iter().map(|n| host(n)).collect(),
            ..Snapshot::default()
        }
    }

    #[test]
    fn the_search_is_rerun_when_the_query_or_the_snapshot_changes() {
        let mut table = HostsTable::default();
        table.refilter(&snapshot(1, &["web-1", "db-1"]), &HostQuery::parse("web"));
        assert_eq!(table.shown, [0]);
        table.refilter(&snapshot(1, &["web-1", "db-1"]), &HostQuery::parse(""));
        assert_eq!(table.shown, [0, 1]);
        let shown = table.refilter(
            &snapshot(2, &["db-1", "web-1", "web-2"]),
            &HostQuery::parse("web"),
        );
        assert_eq!(shown, 2);
        assert_eq!(table.shown, [1, 2]);
    }

    #[test]
    fn each_column_is_sized_by_its_longest_text_over_every_host() {
        let mut s = snapshot(1, &["web", "a-much-longer-name"]);
        s.hosts[1].profile = "prod-readonly".to_owned();
        let longest = longest_cells(&s);
        assert_eq!(longest[0], "a-much-longer-name");
        assert_eq!(longest[1], "i-a-much-longer-name");
        assert_eq!(longest[2], "prod-readonly");
        assert_eq!(longest[4], "running");
        assert_eq!(
            longest[5], "Private IP",
            "a header longer than every cell sizes its column"
        );
        assert_eq!(longest[ROUTE], "Route");
    }

    #[test]
    fn the_route_badge_is_the_best_route_and_its_tooltip_every_reason() {
        use bastionless_core::route::{self, Purpose, RouteFacts, SsmFacts};
        let host = host("web");
        let facts = RouteFacts {
            region: None,
            ssm: SsmFacts::Unknown("SSM was not asked"),
        };
        let report = route::assess(&host, Purpose::Ssh, &facts);
        let (badge, tooltip) = route_cell(Some(&report));
        assert_eq!(badge, "EIC?");
        assert!(
            tooltip.starts_with("SSH (port 22)\n\nEIC: unsure\n• "),
            "{tooltip}"
        );
        assert!(
            tooltip.contains("\n\nSSM: unsure\n• SSM was not asked"),
            "{tooltip}"
        );
        assert!(
            tooltip.contains("\n\nDirect: blocked\n• web has no public IPv4 address"),
            "{tooltip}"
        );
        let (badge, tooltip) = route_cell(None);
        assert_eq!(badge, "…");
        assert!(
            tooltip.contains("once the host's region is scanned"),
            "{tooltip}"
        );
    }

    #[test]
    fn an_empty_table_says_why() {
        let refreshing = Snapshot {
            refreshing: true,
            ..Snapshot::default()
        };
        assert!(empty_reason(&refreshing, &HostQuery::default()).contains("Looking"));
        assert!(
            empty_reason(&Snapshot::default(), &HostQuery::default()).contains("aws configure")
        );
        assert!(empty_reason(&snapshot(1, &["web"]), &HostQuery::parse("zzz")).contains("search"));
        let profile = |state| ProfileStatus {
            name: "dev".to_owned(),
            region: None,
            account_id: None,
            same_account_as: None,
            state,
            warnings: Vec::new(),
        };
        let failed = Snapshot {
            profiles: vec![profile(ProfileState::Failed {
                error: "AuthFailure".to_owned(),
            })],
            ..Snapshot::default()
        };
        assert!(empty_reason(&failed, &HostQuery::default()).contains("reasons are listed below"));
        let empty_account = Snapshot {
            profiles: vec![profile(ProfileState::Ready { hosts: 0 })],
            ..Snapshot::default()
        };
        assert!(empty_reason(&empty_account, &HostQuery::default()).contains("No instances found"));
    }

    #[test]
    fn a_host_without_a_private_ip_shows_a_dash() {
        assert_eq!(cells(&host("web"), "EIC")[5], "—");
    }
}
