//! The hosts table: one row per instance the search keeps, sortable by any column and
//! optionally grouped by account, region and VPC, with the best route as a badge whose tooltip
//! gives every route's verdict and reasons.
//!
//! Accounts can hold thousands of instances, so the table lays out only the rows on screen
//! (`TableBody::rows`), and the rows ([`host_rows::rows`]) are worked out again only when the
//! snapshot or the view changes, not on every frame. Because off-screen rows are never laid out,
//! egui cannot size columns from them; each column is instead made wide enough for its longest
//! text over every host. Hosts from the disk cache that the scan under way has not confirmed yet
//! are drawn faint and slanted.
//!
//! A click selects a row, a double-click (or Enter) connects with the host's usual client, and
//! the right button opens the host's menu.

use std::collections::{BTreeMap, BTreeSet};

use bastionless_core::engine::{ProfileState, Snapshot};
use bastionless_core::inventory::{Host, HostKey};
use bastionless_core::route::RouteReport;
use bastionless_core::store::Store;
use egui_extras::{Column, TableBuilder};

use super::action::{Action, ConnectAs};
use super::host_rows::{self, Row, Sort, SortColumn, View};

/// Each column's header and what it sorts by.
const COLUMNS: [(&str, SortColumn); 8] = [
    ("Name", SortColumn::Name),
    ("Instance ID", SortColumn::InstanceId),
    ("Account", SortColumn::Account),
    ("Region", SortColumn::Region),
    ("State", SortColumn::State),
    ("OS", SortColumn::Os),
    ("Private IP", SortColumn::PrivateIp),
    ("Route", SortColumn::Route),
];

/// The route column's index in [`COLUMNS`].
const ROUTE: usize = 7;

/// No column is made wider than this to fit its text; longer text is cut short with "…".
const MAX_FITTED_WIDTH: f32 = 320.0;

/// The table, the rows the current view keeps, and the selection.
#[derive(Debug, Default)]
pub struct HostsTable {
    view: View,
    rows: Vec<Row>,
    /// How many hosts match the search (including those in collapsed groups).
    matching: usize,
    /// The hosts, routes and view `rows` was worked out for.
    rows_for: Option<(host_rows::Basis, View)>,
    /// Works the rows out, keeping what the next keystroke can build on.
    row_maker: host_rows::RowMaker,
    /// Per column, its longest text over every host (and its header), to size it by.
    longest: [String; COLUMNS.len()],
    /// The hosts, routes and account aliases `longest` was worked out for.
    longest_for: Option<(host_rows::Basis, BTreeMap<String, String>)>,
    selected: Option<HostKey>,
    /// A row to bring on screen in the next frame (after a keyboard move or a palette pick).
    scroll_to: Option<usize>,
}

impl HostsTable {
    /// Sets the search and grouping, and works the rows out again if anything changed. Returns
    /// how many hosts the search keeps.
    pub fn update(
        &mut self,
        snapshot: &Snapshot,
        query: &bastionless_core::inventory::HostQuery,
        grouped: bool,
        only: Option<BTreeSet<(String, String)>>,
    ) -> usize {
        self.view.query = query.clone();
        self.view.grouped = grouped;
        self.view.only = only;
        let up_to_date = self
            .rows_for
            .as_ref()
            .is_some_and(|(basis, view)| basis.is_of(snapshot) && *view == self.view);
        if !up_to_date {
            (self.rows, self.matching) = self.row_maker.rows(snapshot, &self.view);
            self.rows_for = Some((host_rows::Basis::of(snapshot), self.view.clone()));
        }
        let longest_up_to_date = self.longest_for.as_ref().is_some_and(|(basis, aliases)| {
            basis.is_of(snapshot) && *aliases == snapshot.account_aliases
        });
        if !longest_up_to_date {
            self.longest = longest_cells(snapshot);
            self.longest_for = Some((
                host_rows::Basis::of(snapshot),
                snapshot.account_aliases.clone(),
            ));
        }
        self.matching
    }

    /// The selected host, if it is still in the snapshot.
    pub fn selected<'a>(&self, snapshot: &'a Snapshot) -> Option<&'a Host> {
        self.selected.as_ref().and_then(|key| snapshot.host(key))
    }

    /// Selects `key` and scrolls to it, showing it first if the search or a collapsed group
    /// hides it.
    pub fn select(&mut self, snapshot: &Snapshot, key: HostKey) {
        let position = |rows: &[Row]| {
            rows.iter()
                .position(|row| matches!(row, Row::Host(i) if snapshot.hosts[*i].has_key(&key)))
        };
        if position(&self.rows).is_none() {
            self.view.collapsed.clear();
            (self.rows, self.matching) = self.row_maker.rows(snapshot, &self.view);
            self.rows_for = Some((host_rows::Basis::of(snapshot), self.view.clone()));
        }
        self.scroll_to = position(&self.rows);
        self.selected = Some(key);
    }

    /// Arrow keys move the selection and Enter connects to it; only while no text field has the
    /// keyboard.
    pub fn keys(&mut self, ui: &egui::Ui, snapshot: &Snapshot) -> Vec<Action> {
        let (down, up, enter) = ui.input_mut(|input| {
            (
                input.consume_key(egui::Modifiers::NONE, egui::Key::ArrowDown),
                input.consume_key(egui::Modifiers::NONE, egui::Key::ArrowUp),
                input.consume_key(egui::Modifiers::NONE, egui::Key::Enter),
            )
        });
        let hosts: Vec<usize> = self
            .rows
            .iter()
            .enumerate()
            .filter_map(|(position, row)| matches!(row, Row::Host(_)).then_some(position))
            .collect();
        let current = self.selected.as_ref().and_then(|key| {
            hosts.iter().position(
                |&p| matches!(self.rows[p], Row::Host(i) if snapshot.hosts[i].has_key(key)),
            )
        });
        let next = match (down, up, current) {
            (true, _, None) | (_, true, None) => Some(0),
            (true, _, Some(at)) => Some((at + 1).min(hosts.len().saturating_sub(1))),
            (_, true, Some(at)) => Some(at.saturating_sub(1)),
            _ => None,
        };
        if let Some(&position) = next.and_then(|n| hosts.get(n))
            && let Row::Host(index) = self.rows[position]
        {
            self.selected = Some(snapshot.hosts[index].key());
            self.scroll_to = Some(position);
        }
        match self.selected(snapshot) {
            Some(host) if enter => vec![Action::Connect(host.key(), ConnectAs::Default)],
            _ => Vec::new(),
        }
    }

    /// Draws the table (or a line saying why it is empty).
    /// Draws the table; `store` decides the ★ column (none without a store).
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        snapshot: &Snapshot,
        store: Option<&Store>,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.rows.is_empty() {
            ui.centered_and_justified(|ui| {
                ui.weak(empty_reason(snapshot, !self.view.query.is_empty()))
            });
            return actions;
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
            // Room for the sort arrow in the header.
            (text_width + padding + 14.0).min(MAX_FITTED_WIDTH)
        });
        let mut table = TableBuilder::new(ui)
            .striped(true)
            .resizable(true)
            .auto_shrink(false)
            .sense(egui::Sense::click())
            .cell_layout(egui::Layout::left_to_right(egui::Align::Center));
        if let Some(row) = self.scroll_to.take() {
            table = table.scroll_to_row(row, None);
        }
        if store.is_some() {
            table = table.column(Column::exact(row_height));
        }
        for (index, width) in fitted_widths.into_iter().enumerate() {
            let column = if index + 1 == COLUMNS.len() {
                Column::remainder()
            } else {
                Column::auto()
            };
            table = table.column(column.at_least(width).clip(true));
        }
        let mut sort = self.view.sort;
        let mut toggled_group = None;
        table
            .header(row_height, |mut header| {
                if store.is_some() {
                    header.col(|ui| {
                        ui.label("★").on_hover_text("Favorites");
                    });
                }
                for (title, column) in COLUMNS {
                    header.col(|ui| {
                        let arrow = match sort {
                            Some(s) if s.column == column && s.descending => " ⏷",
                            Some(s) if s.column == column => " ⏶",
                            _ => "",
                        };
                        let button = egui::Button::new(
                            egui::RichText::new(format!("{title}{arrow}")).strong(),
                        )
                        .frame(false);
                        if ui
                            .add(button)
                            .on_hover_text(format!("Sort by {}", title.to_lowercase()))
                            .clicked()
                        {
                            sort = Some(Sort {
                                column,
                                descending: sort
                                    .is_some_and(|s| s.column == column && !s.descending),
                            });
                        }
                    });
                }
            })
            .body(|body| {
                body.rows(row_height, self.rows.len(), |mut row| {
                    match &self.rows[row.index()] {
                        Row::Group {
                            key,
                            hosts,
                            collapsed,
                        } => {
                            let arrow = if *collapsed { "⏵" } else { "⏷" };
                            row.col(|ui| {
                                ui.add(
                                    egui::Label::new(
                                        egui::RichText::new(format!("{arrow} {}", key.title()))
                                            .strong(),
                                    )
                                    .selectable(false)
                                    .extend(),
                                );
                            });
                            let blank = COLUMNS.len() - 2 + usize::from(store.is_some());
                            for _ in 0..blank {
                                row.col(|_| {});
                            }
                            row.col(|ui| {
                                ui.weak(format!("{hosts} hosts"));
                            });
                            if row.response().clicked() {
                                toggled_group = Some(key.clone());
                            }
                        }
                        &Row::Host(index) => {
                            let host = &snapshot.hosts[index];
                            row.set_selected(
                                self.selected.as_ref().is_some_and(|k| host.has_key(k)),
                            );
                            if let Some(store) = store {
                                let favorite = store.is_favorite(&(&host.key()).into());
                                row.col(|ui| {
                                    let (star, hint) = if favorite {
                                        (
                                            "★",
                                            format!(
                                                "Remove {} from favorites",
                                                host.display_name()
                                            ),
                                        )
                                    } else {
                                        ("☆", format!("Add {} to favorites", host.display_name()))
                                    };
                                    let button = egui::Button::new(star).frame(false);
                                    if ui.add(button).on_hover_text(&hint).clicked() {
                                        actions.push(Action::ToggleFavorite(host.key()));
                                    }
                                });
                            }
                            host_row(&mut row, snapshot, host);
                            let response = row.response();
                            if response.clicked() {
                                self.selected = Some(host.key());
                            }
                            if response.double_clicked() {
                                actions.push(Action::Connect(host.key(), ConnectAs::Default));
                            }
                            response.context_menu(|ui| {
                                self.selected = Some(host.key());
                                actions.extend(host_menu(ui, host));
                            });
                        }
                    }
                });
            });
        self.view.sort = sort;
        if let Some(group) = toggled_group
            && !self.view.collapsed.remove(&group)
        {
            self.view.collapsed.insert(group);
        }
        actions
    }
}

/// One host's cells.
fn host_row(row: &mut egui_extras::TableRow<'_, '_>, snapshot: &Snapshot, host: &Host) {
    let (badge, explanation) = route_cell(snapshot.route(host));
    let alias = snapshot
        .account_aliases
        .get(&host.account_id)
        .map(String::as_str);
    for (column, cell) in cells(host, alias, &badge).into_iter().enumerate() {
        row.col(|ui| {
            let mut text = egui::RichText::new(cell);
            if host.stale {
                text = text.weak().italics();
            }
            let label = ui.add(egui::Label::new(text).truncate().selectable(false));
            if column == ROUTE {
                label.on_hover_text(&explanation);
            } else if host.stale {
                label.on_hover_text(
                    "From the host list saved by an earlier scan; not confirmed by the latest \
                     one yet",
                );
            }
        });
    }
}

/// The right-click menu of a host.
fn host_menu(ui: &mut egui::Ui, host: &Host) -> Vec<Action> {
    let mut actions = Vec::new();
    let key = host.key();
    let mut item = |ui: &mut egui::Ui, text: &str, action: Action| {
        if ui.button(text).clicked() {
            actions.push(action);
            ui.close();
        }
    };
    item(ui, "SSH", Action::Connect(key.clone(), ConnectAs::Ssh));
    item(ui, "RDP", Action::Connect(key.clone(), ConnectAs::Rdp));
    item(ui, "Shell", Action::Connect(key.clone(), ConnectAs::Shell));
    item(ui, "Forward port…", Action::AskForward(key.clone()));
    ui.separator();
    item(
        ui,
        "Copy instance ID",
        Action::Copy(host.instance_id.clone()),
    );
    if let Some(ip) = &host.private_ip {
        item(ui, "Copy private IP", Action::Copy(ip.clone()));
    }
    item(ui, "Copy ssh command", Action::Copy(ssh_command(host)));
    ui.separator();
    item(ui, "Favorite", Action::ToggleFavorite(key.clone()));
    item(ui, "Host settings…", Action::EditHostSettings(key.clone()));
    item(ui, "Why this route?", Action::ExplainRoute(key));
    actions
}

/// The command line that opens the same SSH session from a terminal.
pub fn ssh_command(host: &Host) -> String {
    format!(
        "bastionless ssh {} --profile {} --region {}",
        host.instance_id, host.profile, host.region
    )
}

/// The table's cells for one host, in column order, with `badge` in the route column.
/// The account shows as its alias when one is known (else its id), then the profile.
fn cells<'a>(
    host: &'a Host,
    alias: Option<&str>,
    badge: &'a str,
) -> [std::borrow::Cow<'a, str>; COLUMNS.len()] {
    [
        host.display_name().into(),
        host.instance_id.as_str().into(),
        format!("{} · {}", alias.unwrap_or(&host.account_id), host.profile).into(),
        host.region.as_str().into(),
        host.state.as_str().into(),
        host.platform.as_str().into(),
        host.private_ip.as_deref().unwrap_or("—").into(),
        badge.into(),
    ]
}

/// The route badge (`EIC`, `SSM?`, `none`) and its tooltip: the purpose, then every route with
/// its verdict and reasons, best first.
pub fn route_cell(report: Option<&RouteReport>) -> (String, String) {
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
fn longest_cells(snapshot: &Snapshot) -> [String; COLUMNS.len()] {
    let mut longest = COLUMNS.map(|(title, _)| title.to_owned());
    for host in snapshot.hosts.iter() {
        let badge = host_rows::route_badge(snapshot, host);
        let alias = snapshot
            .account_aliases
            .get(&host.account_id)
            .map(String::as_str);
        for (longest, cell) in longest.iter_mut().zip(cells(host, alias, &badge)) {
            if cell.chars().count() > longest.chars().count() {
                *longest = cell.into_owned();
            }
        }
    }
    longest
}

fn empty_reason(snapshot: &Snapshot, searching: bool) -> &'static str {
    if !snapshot.hosts.is_empty() && searching {
        "No host matches the search."
    } else if snapshot.loading_cache {
        "Loading the hosts found last time…"
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
            hosts: names.iter().map(|n| host(n)).collect::<Vec<_>>().into(),
            ..Snapshot::default()
        }
    }

    #[test]
    fn the_rows_are_worked_out_again_when_the_query_or_the_snapshot_changes() {
        use bastionless_core::inventory::HostQuery;
        let mut table = HostsTable::default();
        let shown = |table: &HostsTable| -> Vec<usize> {
            table
                .rows
                .iter()
                .map(|r| match r {
                    Row::Host(i) => *i,
                    Row::Group { .. } => usize::MAX,
                })
                .collect()
        };
        table.update(
            &snapshot(1, &["web-1", "db-1"]),
            &HostQuery::parse("web"),
            false,
            None,
        );
        assert_eq!(shown(&table), [0]);
        table.update(
            &snapshot(1, &["web-1", "db-1"]),
            &HostQuery::parse(""),
            false,
            None,
        );
        assert_eq!(shown(&table), [0, 1]);
        let matching = table.update(
            &snapshot(2, &["db-1", "web-1", "web-2"]),
            &HostQuery::parse("web"),
            false,
            None,
        );
        assert_eq!(matching, 2);
        assert_eq!(shown(&table), [1, 2]);
    }

    #[test]
    fn each_column_is_sized_by_its_longest_text_over_every_host() {
        let mut s = snapshot(1, &["web", "a-much-longer-name"]);
        std::sync::Arc::make_mut(&mut s.hosts)[1].profile = "prod-readonly".to_owned();
        let longest = longest_cells(&s);
        assert_eq!(longest[0], "a-much-longer-name");
        assert_eq!(longest[1], "i-a-much-longer-name");
        assert_eq!(longest[2], "111122223333 · prod-readonly");
        assert_eq!(longest[4], "running");
        assert_eq!(
            longest[6], "Private IP",
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
        assert!(empty_reason(&refreshing, false).contains("Looking"));
        let loading = Snapshot {
            refreshing: true,
            loading_cache: true,
            ..Snapshot::default()
        };
        assert!(empty_reason(&loading, false).contains("found last time"));
        assert!(empty_reason(&Snapshot::default(), false).contains("aws configure"));
        assert!(empty_reason(&snapshot(1, &["web"]), true).contains("search"));
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
        assert!(empty_reason(&failed, false).contains("reasons are listed below"));
        let empty_account = Snapshot {
            profiles: vec![profile(ProfileState::Ready { hosts: 0 })],
            ..Snapshot::default()
        };
        assert!(empty_reason(&empty_account, false).contains("No instances found"));
    }

    #[test]
    fn a_host_without_a_private_ip_shows_a_dash() {
        assert_eq!(cells(&host("web"), None, "EIC")[6], "—");
        assert_eq!(
            cells(&host("web"), Some("acme-prod"), "EIC")[2],
            "acme-prod · dev"
        );
    }
}
