//! The command palette (Ctrl/Cmd+K): type a few characters of a host or an action, pick with
//! the arrows and Enter (or a click). A host is selected and scrolled to in the table, where
//! Enter connects; an action runs.

use bastionless_core::engine::{Command, Snapshot};

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

    pub fn ui(&mut self, ctx: &egui::Context, snapshot: &Snapshot) -> Vec<Action> {
        if !self.open {
            return Vec::new();
        }
        let mut chosen = None;
        let matches = matches(&self.text, snapshot);
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
                let text = format!("{}   {}", entry.label, entry.detail);
                let response = ui.selectable_label(position == self.cursor, text);
                if position == self.cursor && (up || down) {
                    response.scroll_to_me(None);
                }
                if response.clicked() {
                    chosen = Some(position);
                }
            }
            // Keep the keyboard in the field so typing goes on working after a click.
            if !field.has_focus() && chosen.is_none() {
                field.request_focus();
            }
        });
        if modal.should_close() {
            self.open = false;
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

/// The best [`SHOWN`] entries for `text`, best first; actions before hosts on equal scores.
fn matches(text: &str, snapshot: &Snapshot) -> Vec<Entry> {
    let mut scored: Vec<(i64, usize, Entry)> = Vec::new();
    let mut consider = |candidate: &str, entry: Entry| {
        if let Some(score) = fuzzy::score(text, candidate) {
            let order = scored.len();
            scored.push((score, order, entry));
        }
    };
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
            },
        );
    }
    for host in &snapshot.hosts {
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
                },
            ));
        }
    }
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored
        .into_iter()
        .take(SHOWN)
        .map(|(_, _, entry)| entry)
        .collect()
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
            hosts: vec![host("web-eic-1", "10.0.0.1"), host("db-both-1", "10.0.0.2")],
            ..Snapshot::default()
        };
        let labels = |text: &str| -> Vec<String> {
            matches(text, &snapshot)
                .into_iter()
                .map(|e| e.label)
                .collect()
        };
        assert_eq!(labels("dbb")[0], "db-both-1");
        assert_eq!(labels("10.0.0.2"), ["db-both-1"]);
        assert_eq!(labels("refr")[0], "Refresh");
        let first = matches("webeic", &snapshot).remove(0);
        assert_eq!(first.actions, [Action::Select(snapshot.hosts[0].key())]);
    }
}
