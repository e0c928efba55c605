//! The toolbar: the search box, the account, region and route filters, the grouping toggle and
//! Refresh with the scan's progress.
//!
//! Which hosts a search keeps is [`HostQuery`]'s rule, the same one `bastionless list --filter`
//! uses, so the window and the command line always agree. The filters are just more query terms
//! (`account:…`, `region:…`, `route:…`), so a filter and the same words typed into the box keep
//! the same hosts.

use std::collections::BTreeSet;
use std::sync::Arc;

use bastionless_core::engine::{Command, ProfileStatus, Snapshot};
use bastionless_core::inventory::{Host, HostQuery};

use super::action::Action;

/// The route filter's choices: the label shown and the `route:` term.
const ROUTES: [(&str, &str); 4] = [
    ("EIC", "eic"),
    ("SSM", "ssm"),
    ("Direct", "direct"),
    ("No route", "none"),
];

/// The toolbar's state: what is typed and picked.
#[derive(Debug, Default)]
pub struct Toolbar {
    text: String,
    account: Option<String>,
    region: Option<String>,
    route: Option<&'static str>,
    /// Whether rows are grouped by account, region and VPC.
    pub grouped: bool,
    /// Whether only favorites are listed.
    pub favorites_only: bool,
    query: HostQuery,
    focus_search: bool,
    /// The account and region filters' choices, kept while the hosts and profiles they were
    /// listed from stay: listing them looks at every host, which a frame with 10,000 hosts
    /// should not do.
    choices: Option<Choices>,
}

/// The filters' choices, (value, label) pairs, and what they were listed from.
#[derive(Debug)]
struct Choices {
    hosts: Arc<Vec<Host>>,
    profiles: Vec<ProfileStatus>,
    accounts: Vec<(String, String)>,
    regions: Vec<(String, String)>,
}

impl Choices {
    fn of(snapshot: &Snapshot) -> Self {
        Self {
            hosts: snapshot.hosts.clone(),
            profiles: snapshot.profiles.clone(),
            accounts: accounts(snapshot),
            regions: regions(snapshot),
        }
    }

    fn are_of(&self, snapshot: &Snapshot) -> bool {
        Arc::ptr_eq(&self.hosts, &snapshot.hosts) && self.profiles == snapshot.profiles
    }
}

impl Toolbar {
    /// The search box takes the keyboard on the next frame.
    pub fn focus_search(&mut self) {
        self.focus_search = true;
    }

    /// The search text and filters, as one query.
    pub fn query(&self) -> &HostQuery {
        &self.query
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, snapshot: &Snapshot) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut changed = false;
        ui.horizontal(|ui| {
            // The label names the field for screen readers (and for the GUI tests).
            let label = ui.label("Search");
            let field = egui::TextEdit::singleline(&mut self.text)
                .hint_text("name, id, IP, tag:Env=prod…")
                .desired_width(220.0);
            let response = ui.add(field).labelled_by(label.id);
            if std::mem::take(&mut self.focus_search) {
                response.request_focus();
            }
            changed |= response.changed();
            response.on_hover_text(
                "Every word must match. Plain words search name, instance id, IPs, profile, \
                 region and tag values; tag:KEY=VALUE, state:, os:, route:, account:, region: \
                 and profile: ask one field (Ctrl+F)",
            );

            if self.choices.as_ref().is_none_or(|c| !c.are_of(snapshot)) {
                self.choices = Some(Choices::of(snapshot));
            }
            if let Some(choices) = &self.choices {
                changed |= pick(ui, "Account", &mut self.account, &choices.accounts);
                changed |= pick(ui, "Region", &mut self.region, &choices.regions);
            }
            let mut route = self.route.map(str::to_owned);
            let routes: Vec<(String, String)> = ROUTES
                .iter()
                .map(|(label, term)| ((*term).to_owned(), (*label).to_owned()))
                .collect();
            if pick(ui, "Route", &mut route, &routes) {
                self.route = ROUTES
                    .iter()
                    .map(|(_, term)| *term)
                    .find(|t| Some(*t) == route.as_deref());
                changed = true;
            }
            ui.toggle_value(&mut self.grouped, "Group")
                .on_hover_text("Group hosts by account, region and VPC");
            ui.toggle_value(&mut self.favorites_only, "★ Favorites")
                .on_hover_text("List only favorite hosts (with Group: by account)");

            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let refresh = ui.add_enabled(!snapshot.refreshing, egui::Button::new("Refresh"));
                if refresh
                    .on_hover_text("Read the AWS files again and rescan every profile")
                    .on_disabled_hover_text("A refresh is under way")
                    .clicked()
                {
                    actions.push(Action::Send(Command::Refresh));
                }
                if snapshot.refreshing {
                    let progress = snapshot.progress;
                    if progress.regions_total > 0 {
                        let done = progress.regions_done as f32 / progress.regions_total as f32;
                        ui.add(
                            egui::ProgressBar::new(done)
                                .desired_width(140.0)
                                .text(format!(
                                    "{} of {} regions",
                                    progress.regions_done, progress.regions_total
                                )),
                        );
                    } else {
                        ui.spinner();
                    }
                }
                if ui
                    .button("Settings")
                    .on_hover_text("Terminal, RDP client, regions, theme, tunnel limits")
                    .clicked()
                {
                    actions.push(Action::OpenSettings);
                }
                if ui
                    .button("Log")
                    .on_hover_text("Show what Bastionless has been doing")
                    .clicked()
                {
                    actions.push(Action::ToggleLog);
                }
                if ui
                    .button("Palette")
                    .on_hover_text("Find a host or an action (Ctrl+K)")
                    .clicked()
                {
                    actions.push(Action::OpenPalette);
                }
            });
        });
        if changed {
            self.query = HostQuery::parse(&self.query_text());
        }
        actions
    }

    /// The search text followed by one term per filter picked.
    fn query_text(&self) -> String {
        let mut text = self.text.clone();
        for (field, value) in [
            ("account", self.account.as_deref()),
            ("region", self.region.as_deref()),
            ("route", self.route),
        ] {
            if let Some(value) = value {
                text.push_str(&format!(" {field}:{value}"));
            }
        }
        text
    }
}

/// A combo box of `choices` (value, label) plus "All"; true when the pick changed.
fn pick(
    ui: &mut egui::Ui,
    name: &str,
    picked: &mut Option<String>,
    choices: &[(String, String)],
) -> bool {
    let before = picked.clone();
    let shown = picked
        .as_ref()
        .and_then(|value| choices.iter().find(|(v, _)| v == value))
        .map_or_else(
            || format!("All {}", plural(name)),
            |(_, label)| label.clone(),
        );
    egui::ComboBox::from_label(name)
        .width(110.0)
        .selected_text(shown)
        .show_ui(ui, |ui| {
            ui.selectable_value(picked, None, format!("All {}", plural(name)));
            for (value, label) in choices {
                ui.selectable_value(picked, Some(value.clone()), label);
            }
        });
    *picked != before
}

fn plural(name: &str) -> String {
    format!("{}s", name.to_lowercase())
}

/// Each account seen, labelled with the profiles that reach it.
fn accounts(snapshot: &Snapshot) -> Vec<(String, String)> {
    let mut accounts: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
    for profile in &snapshot.profiles {
        if let Some(account) = &profile.account_id {
            accounts
                .entry(account.clone())
                .or_default()
                .push(&profile.name);
        }
    }
    for host in snapshot.hosts.iter() {
        accounts.entry(host.account_id.clone()).or_default();
    }
    accounts
        .into_iter()
        .map(|(account, profiles)| {
            let label = if profiles.is_empty() {
                account.clone()
            } else {
                format!("{account} ({})", profiles.join(", "))
            };
            (account, label)
        })
        .collect()
}

/// Every region some host is in.
fn regions(snapshot: &Snapshot) -> Vec<(String, String)> {
    let regions: BTreeSet<&str> = snapshot.hosts.iter().map(|h| h.region.as_str()).collect();
    regions
        .into_iter()
        .map(|r| (r.to_owned(), r.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_query_terms_after_the_text() {
        let mut toolbar = Toolbar {
            text: "web".into(),
            account: Some("111122223333".into()),
            route: Some("ssm"),
            ..Toolbar::default()
        };
        assert_eq!(toolbar.query_text(), "web account:111122223333 route:ssm");
        toolbar.region = Some("eu-west-1".into());
        toolbar.text.clear();
        assert_eq!(
            toolbar.query_text(),
            " account:111122223333 region:eu-west-1 route:ssm"
        );
    }
}
