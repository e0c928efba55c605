//! The "Host settings…" dialog: the login user, identity file, SSH port and preferred route of
//! one host, kept in the store per account and instance (so the same instance id in two
//! accounts has two sets of settings) and used by the next connect.
//!
//! Empty fields mean "guess as usual". The dialog shows what the store holds when opened and
//! closes once the store has written the change (on a thread of the window's, so a slow disk
//! never stalls a frame).

use std::path::PathBuf;
use std::sync::mpsc;

use bastionless_core::engine::Snapshot;
use bastionless_core::inventory::HostKey;
use bastionless_core::store::{HostSettings, RoutePreference};

use super::action::Action;

/// The dialog's state while open.
#[derive(Default)]
pub struct HostSettingsDialog {
    host: Option<HostKey>,
    user: String,
    identity_file: String,
    port: String,
    route: RoutePreference,
    error: Option<String>,
    /// The result of a save under way, from its thread.
    saving: Option<mpsc::Receiver<Result<(), String>>>,
}

impl HostSettingsDialog {
    /// Opens the dialog for `host`, showing `current` (what the store holds).
    pub fn open(&mut self, host: HostKey, current: &HostSettings) {
        *self = Self {
            host: Some(host),
            user: current.user.clone().unwrap_or_default(),
            identity_file: current
                .identity_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            port: current.port.map(|p| p.to_string()).unwrap_or_default(),
            route: current.route.unwrap_or_default(),
            error: None,
            saving: None,
        };
    }

    /// Waits for the result of the save started with `result`.
    pub fn saving(&mut self, result: mpsc::Receiver<Result<(), String>>) {
        self.saving = Some(result);
    }

    pub fn ui(&mut self, ctx: &egui::Context, snapshot: &Snapshot) -> Vec<Action> {
        if let Some(result) = self.saving.as_ref().and_then(|rx| rx.try_recv().ok()) {
            self.saving = None;
            match result {
                Ok(()) => self.host = None,
                Err(error) => self.error = Some(format!("Not saved: {error}")),
            }
        }
        let Some(key) = self.host.clone() else {
            return Vec::new();
        };
        let name = snapshot
            .host(&key)
            .map_or(key.instance_id.clone(), |h| h.display_name().to_owned());
        let mut actions = Vec::new();
        let mut open = true;
        let mut cancel = false;
        egui::Window::new(format!("Settings for {name}"))
            .id(egui::Id::unique("host settings dialog"))
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .show(ctx, |ui| {
                ui.weak(format!("{} in account {}", key.instance_id, key.account_id));
                egui::Grid::new("host settings fields")
                    .num_columns(2)
                    .show(ui, |ui| {
                        field(ui, "User", &mut self.user, "guessed from the AMI");
                        field(
                            ui,
                            "Identity file",
                            &mut self.identity_file,
                            "a fresh key each time",
                        );
                        field(ui, "SSH port", &mut self.port, "22");
                        ui.label("Route");
                        ui.horizontal(|ui| {
                            for (route, text) in [
                                (RoutePreference::Auto, "Best available"),
                                (RoutePreference::Eic, "EC2 Instance Connect"),
                                (RoutePreference::Ssm, "Session Manager"),
                            ] {
                                ui.selectable_value(&mut self.route, route, text);
                            }
                        });
                        ui.end_row();
                    });
                if let Some(error) = &self.error {
                    ui.colored_label(ui.visuals().error_fg_color, error);
                }
                ui.horizontal(|ui| {
                    let busy = self.saving.is_some();
                    if ui.add_enabled(!busy, egui::Button::new("Save")).clicked() {
                        match self.parse() {
                            Ok(settings) => {
                                self.error = None;
                                actions.push(Action::SaveHostSettings(key.clone(), settings));
                            }
                            Err(error) => self.error = Some(error),
                        }
                    }
                    cancel = ui.button("Cancel").clicked();
                });
            });
        if !open || cancel {
            self.host = None;
            self.saving = None;
        }
        actions
    }

    /// The settings typed, or what is wrong with them.
    fn parse(&self) -> Result<HostSettings, String> {
        let user = Some(self.user.trim().to_owned()).filter(|u| !u.is_empty());
        if let Some(user) = &user
            && user.contains(char::is_whitespace)
        {
            return Err(format!("“{user}” is not a user name: it has spaces."));
        }
        let port = match self.port.trim() {
            "" => None,
            text => Some(text.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                format!("The SSH port must be a number from 1 to 65535, not “{text}”.")
            })?),
        };
        let identity_file = Some(self.identity_file.trim())
            .filter(|p| !p.is_empty())
            .map(PathBuf::from);
        Ok(HostSettings {
            user,
            identity_file,
            port,
            route: Some(self.route).filter(|r| *r != RoutePreference::Auto),
        })
    }
}

/// A labelled one-line text field.
fn field(ui: &mut egui::Ui, name: &str, text: &mut String, hint: &str) {
    let label = ui.label(name);
    ui.add(
        egui::TextEdit::singleline(text)
            .hint_text(hint)
            .desired_width(260.0),
    )
    .labelled_by(label.id);
    ui.end_row();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> HostKey {
        HostKey {
            account_id: "111122223333".into(),
            region: "eu-west-1".into(),
            instance_id: "i-0abc".into(),
        }
    }

    #[test]
    fn what_is_shown_parses_back_to_what_was_stored() {
        let stored = HostSettings {
            user: Some("ubuntu".into()),
            identity_file: Some("/home/me/.ssh/id_ed25519".into()),
            port: Some(2222),
            route: Some(RoutePreference::Ssm),
        };
        let mut dialog = HostSettingsDialog::default();
        dialog.open(key(), &stored);
        assert_eq!(dialog.parse(), Ok(stored));
        dialog.open(key(), &HostSettings::default());
        assert_eq!(dialog.parse(), Ok(HostSettings::default()));
    }

    #[test]
    fn a_bad_port_or_user_is_refused_with_the_reason() {
        let mut dialog = HostSettingsDialog::default();
        dialog.open(key(), &HostSettings::default());
        dialog.port = "70000".into();
        assert!(dialog.parse().unwrap_err().contains("1 to 65535"));
        dialog.port.clear();
        dialog.user = "ec2 user".into();
        assert!(dialog.parse().unwrap_err().contains("spaces"));
    }
}
