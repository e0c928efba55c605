//! The command palette (Ctrl/Cmd+K): type a few characters of a host, a recent connection or
//! an action, pick with the arrows and Enter (or a click). A host is selected and scrolled to in
//! the table, where Enter connects; a recent connection is made again the same way; an action
//! runs. Each host has a ★ that makes it a favorite (the table's star, the same store call).
//!
//! Recent connections come first when nothing is typed, newest first, so Ctrl+K, Enter repeats
//! the last connection.

use bastionless_core::engine::{Command, ConnectHow, RouteChoice, Snapshot};
use bastionless_core::inventory::HostKey;
use bastionless_core::store::{self, Recent, Store};

use super::action::Action;
use super::fuzzy;

/// How many matches the palette lists.
const SHOWN: usize = 12;

/// The palette's state while open.
#[derive(Debug, Default)]
pub struct Palette {
    open: bool,
    text: String,
    /// The highlighted match.
    cursor: usize,
    /// Whether the text field should take the keyboard on the next frame.
    focus: bool,
}

/// One thing the palette can offer.
struct Entry {
    label: String,
    detail: String,
    actions: Vec<Action>,
    /// The host a ★ toggles, for host entries.
    host: Option<HostKey>,
}

impl Palette {
    pub fn open(&mut self) {
        self.open = true;
        self.text.clear();
        self.cursor = 0;
        self.focus = true;
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    pub fn ui(
        &mut self,
        ctx: &egui::Context,
        snapshot: &Snapshot,
        store: Option<&Store>,
    ) -> Vec<Action> {
        if !self.open {
            return Vec::new();
        }
        let mut chosen = None;
        let mut starred = None;
        let recents = store.map(Store::recents).unwrap_or_default();
        let matches = matches(&self.text, snapshot, &recents);
        let modal = egui::Modal::new(egui::Id::unique("command palette")).show(ctx, |ui| {
            ui.set_width(520.0);
            let label = ui.label("Find a host or an action");
            let field = ui
                .add(
                    egui::TextEdit::singleline(&mut self.text)
                        .hint_text("web-1, i-0abc, 10.0.1.5, refresh…")
                        .desired_width(f32::INFINITY),
                )
                .labelled_by(label.id);
            if std::mem::take(&mut self.focus) {
                field.request_focus();
            }
            if field.changed() {
                self.cursor = 0;
            }
            let (down, up, enter) = ui.input_mut(|input| {
                (
                    input.consume_key(egui::Modifiers::NONE, egui::Key::ArrowDown),
                    input.consume_key(egui::Modifiers::NONE, egui::Key::ArrowUp),
                    input.key_pressed(egui::Key::Enter),
                )
            });
            if down {
                self.cursor = (self.cursor + 1).min(matches.len().saturating_sub(1));
            }
            if up {
                self.cursor = self.cursor.saturating_sub(1);
            }
            if enter && !matches.is_empty() {
                chosen = Some(self.cursor);
            }
            ui.separator();
            if matches.is_empty() {
                ui.weak("Nothing matches.");
            }
            for (position, entry) in matches.iter().enumerate() {
                ui.horizontal(|ui| {
                    if let (Some(store), Some(host)) = (store, &entry.host) {
                        let favorite = store.is_favorite(&host.into());
                        let (star, hint) = if favorite {
                            ("★", "Stop it being a favorite")
                        } else {
                            ("☆", "Make it a favorite")
                        };
                        if ui.small_button(star).on_hover_text(hint).clicked() {
                            starred = Some(host.clone());
                        }
                    }
                    let text = format!("{}   {}", entry.label, entry.detail);
                    let response = ui.selectable_label(position == self.cursor, text);
                    if position == self.cursor && (up || down) {
                        response.scroll_to_me(None);
                    }
                    if response.clicked() {
                        chosen = Some(position);
                    }
                });
            }
            // Keep the keyboard in the field so typing goes on working after a click.
            if !field.has_focus() && chosen.is_none() && starred.is_none() {
                field.request_focus();
            }
        });
        if modal.should_close() {
            self.open = false;
        }
        if let Some(host) = starred {
            return vec![Action::ToggleFavorite(host)];
        }
        match chosen.and_then(|position| matches.into_iter().nth(position)) {
            Some(entry) => {
                self.open = false;
                entry.actions
            }
            None => Vec::new(),
        }
    }
}

/// The best [`SHOWN`] entries for `text`, best first; on equal scores recent connections
/// (newest first), then actions, then hosts.
fn matches(text: &str, snapshot: &Snapshot, recents: &[Recent]) -> Vec<Entry> {
    let mut scored: Vec<(i64, usize, Entry)> = Vec::new();
    // With nothing typed, recent connections lead (newest first) whatever their scores.
    let mut pinned: Vec<Entry> = Vec::new();
    let mut consider = |candidate: &str, entry: Entry| {
        if let Some(score) = fuzzy::score(text, candidate) {
            let order = scored.len();
            scored.push((score, order, entry));
        }
    };
    for recent in recents {
        let host = HostKey {
            account_id: recent.account_id.clone(),
            region: recent.region.clone(),
            instance_id: recent.instance_id.clone(),
        };
        let name = recent.name.as_deref().unwrap_or(&recent.instance_id);
        let label = format!("↺ {name} ({})", recent.action);
        let candidate = format!("{name} {} {}", recent.instance_id, recent.action);
        let entry = Entry {
            detail: format!(
                "recent · {} · {} · {}",
                recent.instance_id,
                recent.account_id,
                recent.at.format("%Y-%m-%d %H:%M UTC")
            ),
            label,
            actions: vec![Action::Send(Command::Connect {
                how: connect_how(recent.action, recent.local_port),
                host: host.clone(),
                route: RouteChoice::Auto,
            })],
            host: Some(host),
        };
        if text.trim().is_empty() {
            pinned.push(entry);
        } else {
            consider(&candidate, entry);
        }
    }
    for (label, detail, actions) in [
        (
            "Refresh",
            "rescan every profile",
            vec![Action::Send(Command::Refresh)],
        ),
        (
            "Search",
            "focus the search box (Ctrl+F)",
            vec![Action::FocusSearch],
        ),
        (
            "Settings",
            "terminal, RDP client, regions, theme, tunnel limits",
            vec![Action::OpenSettings],
        ),
        (
            "Show log",
            "what Bastionless has been doing",
            vec![Action::ToggleLog],
        ),
    ] {
        consider(
            label,
            Entry {
                label: label.to_owned(),
                detail: detail.to_owned(),
                actions,
                host: None,
            },
        );
    }
    let closable: Vec<Action> = snapshot
        .tunnels
        .iter()
        .map(|t| Action::Send(Command::CloseTunnel(t.id)))
        .collect();
    if !closable.is_empty() {
        consider(
            "Close all tunnels",
            Entry {
                label: "Close all tunnels".to_owned(),
                detail: format!("{} tunnels", closable.len()),
                actions: closable,
                host: None,
            },
        );
    }
    for host in snapshot.hosts.iter() {
        let name = host.display_name();
        // The best of the name, the id and the private IP.
        let best = [
            Some(name),
            Some(host.instance_id.as_str()),
            host.private_ip.as_deref(),
        ]
        .into_iter()
        .flatten()
        .filter_map(|field| fuzzy::score(text, field))
        .max();
        if let Some(score) = best {
            let order = scored.len();
            scored.push((
                score,
                order,
                Entry {
                    label: name.to_owned(),
                    detail: format!(
                        "{} · {} · {}",
                        host.instance_id,
                        host.region,
                        host.private_ip.as_deref().unwrap_or("no private IP")
                    ),
                    actions: vec![Action::Select(host.key())],
                    host: Some(host.key()),
                },
            ));
        }
    }
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    pinned
        .into_iter()
        .chain(scored.into_iter().map(|(_, _, entry)| entry))
        .take(SHOWN)
        .collect()
}

/// The engine's words for a recent connection's action.
fn connect_how(action: store::Action, local_port: Option<u16>) -> ConnectHow {
    match action {
        store::Action::Ssh => ConnectHow::Ssh,
        store::Action::Rdp => ConnectHow::Rdp,
        store::Action::Shell => ConnectHow::Shell,
        store::Action::Forward { remote_port } => ConnectHow::Forward {
            remote_port,
            local_port,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bastionless_core::inventory::{Host, InstanceState, Platform};

    fn host(name: &str, ip: &str) -> Host {
        Host {
            instance_id: format!("i-0{name}"),
            name: Some(name.to_owned()),
            tags: Default::default(),
            state: InstanceState::Running,
            platform: Platform::Linux,
            private_ip: Some(ip.to_owned()),
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

    #[test]
    fn hosts_are_found_by_scattered_letters_of_their_name_or_their_ip() {
        let snapshot = Snapshot {
            hosts: vec![host("web-eic-1", "10.0.0.1"), host("db-both-1", "10.0.0.2")].into(),
            ..Snapshot::default()
        };
        let labels = |text: &str| -> Vec<String> {
            matches(text, &snapshot, &[])
                .into_iter()
                .map(|e| e.label)
                .collect()
        };
        assert_eq!(labels("dbb")[0], "db-both-1");
        assert_eq!(labels("10.0.0.2"), ["db-both-1"]);
        assert_eq!(labels("refr")[0], "Refresh");
        let first = matches("webeic", &snapshot, &[]).remove(0);
        assert_eq!(first.actions, [Action::Select(snapshot.hosts[0].key())]);
    }

    fn recent(name: &str, action: store::Action, local_port: Option<u16>) -> Recent {
        Recent {
            account_id: "111122223333".to_owned(),
            region: "us-east-1".to_owned(),
            instance_id: format!("i-0{name}"),
            name: Some(name.to_owned()),
            profile: None,
            action,
            local_port,
            at: chrono::Utc::now(),
        }
    }

    #[test]
    fn recent_connections_come_first_in_the_store_s_order_and_connect_the_same_way() {
        let snapshot = Snapshot {
            hosts: vec![host("web-eic-1", "10.0.0.1")].into(),
            ..Snapshot::default()
        };
        let recents = [
            recent(
                "db-1",
                store::Action::Forward { remote_port: 5432 },
                Some(15432),
            ),
            recent("web-eic-1", store::Action::Ssh, None),
        ];
        let entries = matches("", &snapshot, &recents);
        assert_eq!(entries[0].label, "↺ db-1 (forward:5432)");
        assert_eq!(entries[1].label, "↺ web-eic-1 (ssh)");
        assert_eq!(
            entries[0].actions,
            [Action::Send(Command::Connect {
                host: HostKey {
                    account_id: "111122223333".to_owned(),
                    region: "us-east-1".to_owned(),
                    instance_id: "i-0db-1".to_owned(),
                },
                how: ConnectHow::Forward {
                    remote_port: 5432,
                    local_port: Some(15432),
                },
                route: RouteChoice::Auto,
            })]
        );
        let typed = matches("db", &snapshot, &recents);
        assert_eq!(typed[0].label, "↺ db-1 (forward:5432)");
    }
}
