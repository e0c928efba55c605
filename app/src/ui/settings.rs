//! The Settings window: how to open a terminal and the RDP client, default login users by AMI
//! name, the regions to scan and how often, the theme, the tunnel limits, what closing the
//! window does, how ssh reaches a tunnel and which key file goes with which EC2 key pair.
//!
//! The window edits a text draft of [`AppSettings`]; Save checks every field and shows what is
//! wrong next to it, so nothing invalid reaches the store. A valid draft becomes
//! [`Action::SaveSettings`]: the window then writes the store on a thread of its own and tells
//! the engine what applies at once (the EIC connection cap); the rest is read from the store
//! when next needed (a connect, a refresh), and the theme is applied as soon as the store
//! changes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;

use bastionless_core::store::{AppSettings, CloseToTray, SSM_POOL_RANGE, SshVia, Theme};
use bastionless_core::tunnel::ConnectionCap;

use super::action::Action;

/// The longest automatic refresh interval offered: once a day.
const REFRESH_MINUTES_MAX: u32 = 24 * 60;

/// Which field a message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Field {
    Terminal,
    Rdp,
    DefaultUsers,
    Regions,
    Refresh,
    SsmPool,
    EicCap,
    KeyFiles,
    /// Problems the store's own check finds that no single field above explains.
    Whole,
}

/// The settings as typed: text for everything typed, values for everything picked.
#[derive(Debug, Clone, PartialEq)]
struct Draft {
    terminal: String,
    rdp: String,
    /// One `AMI name = user` per line.
    default_users: String,
    /// Region names separated by commas or spaces.
    regions: String,
    refresh_minutes: String,
    theme: Theme,
    ssm_pool: String,
    eic_cap: String,
    close_to_tray: CloseToTray,
    ssh_via: Option<SshVia>,
    /// One `key pair name = private key file` per line.
    key_files: String,
}

impl Draft {
    fn from_settings(settings: &AppSettings) -> Self {
        Self {
            terminal: settings.terminal_template.clone().unwrap_or_default(),
            rdp: settings.rdp_template.clone().unwrap_or_default(),
            default_users: settings
                .default_users
                .iter()
                .map(|(ami, user)| format!("{ami} = {user}"))
                .collect::<Vec<_>>()
                .join("\n"),
            regions: settings.regions.join(", "),
            refresh_minutes: settings.refresh_interval_minutes.to_string(),
            theme: settings.theme,
            ssm_pool: settings.ssm_pool_size.to_string(),
            eic_cap: settings.eic_connection_cap.to_string(),
            close_to_tray: settings.close_to_tray,
            ssh_via: settings.ssh_via,
            key_files: settings
                .key_pair_identity_files
                .iter()
                .map(|(name, file)| format!("{name} = {}", file.display()))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    /// The settings the draft describes, or a message for each field that is wrong.
    fn parse(&self) -> Result<AppSettings, BTreeMap<Field, String>> {
        let mut errors = BTreeMap::new();
        let terminal = optional(&self.terminal);
        if let Some(template) = &terminal
            && !template.contains("{command}")
        {
            errors.insert(
                Field::Terminal,
                "Put {command} where the command to run goes, e.g. `xterm -e {command}`.".into(),
            );
        }
        let rdp = optional(&self.rdp);
        if let Some(template) = &rdp
            && !template.contains("{file}")
            && !template.contains("{address}")
        {
            errors.insert(
                Field::Rdp,
                "Put {file} (the .rdp file) or {address} (127.0.0.1:PORT) in the command, e.g. \
                 `xfreerdp {file}`."
                    .into(),
            );
        }
        let default_users = parse_default_users(&self.default_users)
            .map_err(|e| errors.insert(Field::DefaultUsers, e))
            .unwrap_or_default();
        let key_files = parse_pairs(
            &self.key_files,
            "key pair name = key file",
            "prod-key = ~/.ssh/prod.pem",
        )
        .map_err(|e| errors.insert(Field::KeyFiles, e))
        .unwrap_or_default()
        .into_iter()
        .map(|(name, file)| (name, PathBuf::from(file)))
        .collect();
        let regions = parse_regions(&self.regions)
            .map_err(|e| errors.insert(Field::Regions, e))
            .unwrap_or_default();
        let refresh = number(&self.refresh_minutes, 0..=REFRESH_MINUTES_MAX)
            .map_err(|e| errors.insert(Field::Refresh, e))
            .unwrap_or_default();
        let pool = number(
            &self.ssm_pool,
            u32::from(*SSM_POOL_RANGE.start())..=u32::from(*SSM_POOL_RANGE.end()),
        )
        .map_err(|e| errors.insert(Field::SsmPool, e))
        .unwrap_or_default();
        let cap = number(&self.eic_cap, 1..=ConnectionCap::AWS_LIMIT.get() as u32)
            .map_err(|e| {
                errors.insert(
                    Field::EicCap,
                    format!("{e} (AWS allows 20 connections per endpoint)"),
                )
            })
            .unwrap_or_default();
        if !errors.is_empty() {
            return Err(errors);
        }
        let settings = AppSettings {
            terminal_template: terminal,
            rdp_template: rdp,
            default_users,
            regions,
            refresh_interval_minutes: refresh,
            theme: self.theme,
            // Both were checked against ranges within u8 above.
            ssm_pool_size: pool as u8,
            eic_connection_cap: cap as u8,
            close_to_tray: self.close_to_tray,
            ssh_via: self.ssh_via,
            key_pair_identity_files: key_files,
        };
        settings
            .check()
            .map_err(|e| BTreeMap::from([(Field::Whole, e)]))?;
        Ok(settings)
    }
}

/// The trimmed text, or `None` when there is none.
fn optional(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// A whole number within `range`.
fn number(text: &str, range: std::ops::RangeInclusive<u32>) -> Result<u32, String> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            format!(
                "Enter a whole number from {} to {}, not “{}”.",
                range.start(),
                range.end(),
                text.trim()
            )
        })
}

/// `AMI name = user` lines; blank lines are skipped.
fn parse_default_users(text: &str) -> Result<BTreeMap<String, String>, String> {
    let users = parse_pairs(text, "AMI name = user", "ubuntu = ubuntu")?;
    match users
        .iter()
        .find(|(_, user)| user.contains(char::is_whitespace))
    {
        Some((_, user)) => Err(format!("“{user}” is not a user name: it has spaces.")),
        None => Ok(users),
    }
}

/// `key = value` lines (described as `shape`, for example `example`); blank lines are skipped.
fn parse_pairs(text: &str, shape: &str, example: &str) -> Result<BTreeMap<String, String>, String> {
    let mut pairs = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let parsed = line
            .split_once('=')
            .map(|(key, value)| (key.trim(), value.trim()))
            .filter(|(key, value)| !key.is_empty() && !value.is_empty());
        let Some((key, value)) = parsed else {
            return Err(format!(
                "“{line}” is not `{shape}` (for example `{example}`)."
            ));
        };
        pairs.insert(key.to_owned(), value.to_owned());
    }
    Ok(pairs)
}

/// Region names separated by commas or whitespace.
fn parse_regions(text: &str) -> Result<Vec<String>, String> {
    let mut regions: Vec<String> = Vec::new();
    for region in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|r| !r.is_empty())
    {
        if !region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(format!(
                "“{region}” is not a region name (for example eu-west-1)."
            ));
        }
        if !regions.iter().any(|r| r == region) {
            regions.push(region.to_owned());
        }
    }
    Ok(regions)
}

/// The Settings window's state.
#[derive(Default)]
pub struct SettingsWindow {
    draft: Option<Draft>,
    errors: BTreeMap<Field, String>,
    /// The result of a save under way, from its thread.
    saving: Option<mpsc::Receiver<Result<(), String>>>,
}

impl SettingsWindow {
    /// Opens the window on `settings` (what the store holds now).
    pub fn open(&mut self, settings: &AppSettings) {
        self.draft = Some(Draft::from_settings(settings));
        self.errors.clear();
        self.saving = None;
    }

    /// Waits for the result of the save started with `result`; the window closes when it
    /// succeeds and shows the error when not.
    pub fn saving(&mut self, result: mpsc::Receiver<Result<(), String>>) {
        self.saving = Some(result);
    }

    pub fn ui(&mut self, ctx: &egui::Context) -> Vec<Action> {
        self.take_save_result();
        let Some(draft) = &mut self.draft else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        let mut open = true;
        let mut save = false;
        let mut cancel = false;
        let errors = &self.errors;
        let busy = self.saving.is_some();
        egui::Window::new("Settings")
            .id(egui::Id::unique("settings window"))
            .open(&mut open)
            .collapsible(false)
            .default_width(560.0)
            .show(ctx, |ui| {
                egui::Grid::new("settings fields")
                    .num_columns(2)
                    .spacing([12.0, 6.0])
                    .show(ui, |ui| {
                        text_row(
                            ui,
                            "Terminal command",
                            &mut draft.terminal,
                            "the platform's terminal; e.g. xterm -e {command}",
                        );
                        error_row(ui, errors.get(&Field::Terminal));
                        text_row(
                            ui,
                            "RDP command",
                            &mut draft.rdp,
                            "the platform's client; e.g. xfreerdp {file}",
                        );
                        error_row(ui, errors.get(&Field::Rdp));
                        let label = ui.label("Default users");
                        ui.add(
                            egui::TextEdit::multiline(&mut draft.default_users)
                                .hint_text("one per line: AMI name = user")
                                .desired_rows(3)
                                .desired_width(360.0),
                        )
                        .labelled_by(label.id);
                        ui.end_row();
                        error_row(ui, errors.get(&Field::DefaultUsers));
                        text_row(
                            ui,
                            "Regions to scan",
                            &mut draft.regions,
                            "every enabled region; e.g. eu-west-1, us-east-1",
                        );
                        error_row(ui, errors.get(&Field::Regions));
                        text_row(
                            ui,
                            "Refresh every (minutes)",
                            &mut draft.refresh_minutes,
                            "0 refreshes only when asked",
                        );
                        error_row(ui, errors.get(&Field::Refresh));
                        ui.label("Theme");
                        ui.horizontal(|ui| {
                            for (theme, name) in [
                                (Theme::System, "System"),
                                (Theme::Light, "Light"),
                                (Theme::Dark, "Dark"),
                            ] {
                                ui.selectable_value(&mut draft.theme, theme, name);
                            }
                        });
                        ui.end_row();
                        text_row(
                            ui,
                            "Session Manager sessions per host",
                            &mut draft.ssm_pool,
                            "4",
                        );
                        error_row(ui, errors.get(&Field::SsmPool));
                        text_row(ui, "EIC connections per endpoint", &mut draft.eic_cap, "10");
                        error_row(ui, errors.get(&Field::EicCap));
                        let label = ui.label("ssh reaches the tunnel through");
                        egui::ComboBox::from_id_salt("ssh via")
                            .selected_text(ssh_via_text(draft.ssh_via))
                            .show_ui(ui, |ui| {
                                for choice in
                                    [None, Some(SshVia::ProxyCommand), Some(SshVia::LoopbackPort)]
                                {
                                    ui.selectable_value(
                                        &mut draft.ssh_via,
                                        choice,
                                        ssh_via_text(choice),
                                    );
                                }
                            })
                            .response
                            .labelled_by(label.id);
                        ui.end_row();
                        let label = ui.label("Key files by key pair");
                        ui.add(
                            egui::TextEdit::multiline(&mut draft.key_files)
                                .hint_text("one per line: key pair name = private key file")
                                .desired_rows(2)
                                .desired_width(360.0),
                        )
                        .labelled_by(label.id);
                        ui.end_row();
                        error_row(ui, errors.get(&Field::KeyFiles));
                        let label = ui.label("Closing the window");
                        egui::ComboBox::from_id_salt("close to tray")
                            .selected_text(close_to_tray_text(draft.close_to_tray))
                            .show_ui(ui, |ui| {
                                for choice in [
                                    CloseToTray::OnlyWithTunnels,
                                    CloseToTray::Always,
                                    CloseToTray::Never,
                                ] {
                                    ui.selectable_value(
                                        &mut draft.close_to_tray,
                                        choice,
                                        close_to_tray_text(choice),
                                    );
                                }
                            })
                            .response
                            .labelled_by(label.id);
                        ui.end_row();
                    });
                if let Some(error) = errors.get(&Field::Whole) {
                    ui.colored_label(ui.visuals().error_fg_color, error);
                }
                ui.separator();
                ui.horizontal(|ui| {
                    save = ui.add_enabled(!busy, egui::Button::new("Save")).clicked();
                    cancel = ui.button("Cancel").clicked();
                    if busy {
                        ui.spinner();
                    }
                });
            });
        if save {
            match draft.parse() {
                Ok(settings) => {
                    self.errors.clear();
                    actions.push(Action::SaveSettings(settings));
                }
                Err(errors) => self.errors = errors,
            }
        }
        if !open || cancel {
            self.draft = None;
            self.saving = None;
        }
        actions
    }

    /// Closes the window after a successful save, or shows why it failed.
    fn take_save_result(&mut self) {
        let Some(result) = self.saving.as_ref().and_then(|rx| rx.try_recv().ok()) else {
            return;
        };
        self.saving = None;
        match result {
            Ok(()) => self.draft = None,
            Err(error) => {
                self.errors = BTreeMap::from([(Field::Whole, format!("Not saved: {error}"))]);
            }
        }
    }
}

/// A labelled one-line text field.
fn text_row(ui: &mut egui::Ui, name: &str, text: &mut String, hint: &str) {
    let label = ui.label(name);
    ui.add(
        egui::TextEdit::singleline(text)
            .hint_text(hint)
            .desired_width(360.0),
    )
    .labelled_by(label.id);
    ui.end_row();
}

/// The message for the field above, if any, under it.
fn error_row(ui: &mut egui::Ui, error: Option<&String>) {
    if let Some(error) = error {
        ui.label("");
        ui.colored_label(ui.visuals().error_fg_color, error);
        ui.end_row();
    }
}

fn ssh_via_text(choice: Option<SshVia>) -> &'static str {
    match choice {
        None => "the default (a ProxyCommand)",
        Some(SshVia::ProxyCommand) => "a ProxyCommand (no local port; not in the tunnels panel)",
        Some(SshVia::LoopbackPort) => "a port on 127.0.0.1 (shown in the tunnels panel)",
    }
}

fn close_to_tray_text(choice: CloseToTray) -> &'static str {
    match choice {
        CloseToTray::Always => "keeps Bastionless in the tray",
        CloseToTray::OnlyWithTunnels => "keeps it in the tray while tunnels are open",
        CloseToTray::Never => "quits",
    }
}

/// egui's name for the theme setting.
pub fn theme_preference(theme: Theme) -> egui::ThemePreference {
    match theme {
        Theme::Light => egui::ThemePreference::Light,
        Theme::Dark => egui::ThemePreference::Dark,
        Theme::System => egui::ThemePreference::System,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_draft_of_the_defaults_parses_back_to_the_defaults() {
        let defaults = AppSettings::default();
        assert_eq!(Draft::from_settings(&defaults).parse(), Ok(defaults));
    }

    #[test]
    fn each_wrong_field_gets_its_own_message() {
        let mut draft = Draft::from_settings(&AppSettings::default());
        draft.terminal = "xterm -e".into();
        draft.rdp = "xfreerdp".into();
        draft.default_users = "ubuntu = ubuntu\nnonsense".into();
        draft.regions = "eu-west-1, us east?".into();
        draft.refresh_minutes = "-3".into();
        draft.ssm_pool = "17".into();
        draft.eic_cap = "21".into();
        draft.key_files = "prod-key".into();
        let errors = draft.parse().unwrap_err();
        assert!(errors[&Field::KeyFiles].contains("key pair name = key file"));
        assert!(errors[&Field::Terminal].contains("{command}"));
        assert!(errors[&Field::Rdp].contains("{file}"));
        assert!(errors[&Field::DefaultUsers].contains("nonsense"));
        assert!(errors[&Field::Regions].contains("east?"));
        assert!(errors[&Field::Refresh].contains("0 to 1440"));
        assert!(errors[&Field::SsmPool].contains("1 to 16"));
        assert!(errors[&Field::EicCap].contains("1 to 20"));
    }

    #[test]
    fn typed_lists_become_settings() {
        let mut draft = Draft::from_settings(&AppSettings::default());
        draft.default_users = " al2023 = ec2-user \n\nubuntu=ubuntu".into();
        draft.regions = "eu-west-1 us-east-1,eu-west-1".into();
        draft.terminal = "  foot -e {command} ".into();
        draft.key_files = "prod-key = /home/me/.ssh/prod.pem".into();
        let settings = draft.parse().unwrap();
        assert_eq!(
            settings.key_pair_identity_files["prod-key"],
            PathBuf::from("/home/me/.ssh/prod.pem")
        );
        assert_eq!(settings.default_users["al2023"], "ec2-user");
        assert_eq!(settings.default_users["ubuntu"], "ubuntu");
        assert_eq!(settings.regions, ["eu-west-1", "us-east-1"]);
        assert_eq!(
            settings.terminal_template.as_deref(),
            Some("foot -e {command}")
        );
    }
}
