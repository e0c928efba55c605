//! Signing in: each SSO session with its state and a Sign in button (the engine runs the device
//! flow, opens the browser and puts the code in the snapshot, shown here until approved), and
//! the MFA code dialog when a role assumption waits for one.

use bastionless_core::engine::{Command, SignInState, Snapshot};

use super::action::Action;

/// The SSO sessions, one line each; shown in the status area.
pub fn sessions_ui(ui: &mut egui::Ui, snapshot: &Snapshot) -> Vec<Action> {
    let mut actions = Vec::new();
    for session in &snapshot.sso_sessions {
        ui.horizontal(|ui| {
            let label = ui.label(format!("SSO session {}", session.name));
            if !session.profiles.is_empty() {
                label.on_hover_text(format!("Profiles: {}", session.profiles.join(", ")));
            }
            let sign_in = match &session.state {
                SignInState::SignedIn => {
                    ui.label("signed in");
                    false
                }
                SignInState::SignInNeeded { reason } => {
                    ui.colored_label(ui.visuals().warn_fg_color, "sign-in needed")
                        .on_hover_text(reason);
                    true
                }
                SignInState::Failed { error } => {
                    ui.colored_label(
                        ui.visuals().error_fg_color,
                        format!("sign-in failed: {error}"),
                    );
                    true
                }
                SignInState::SigningIn { user_code, url } => {
                    ui.label(format!("Approve code {user_code} at"));
                    ui.hyperlink(url);
                    if ui.small_button("Copy code").clicked() {
                        actions.push(Action::Copy(user_code.clone()));
                    }
                    false
                }
            };
            if sign_in
                && ui
                    .button(format!("Sign in to {}", session.name))
                    .on_hover_text("Opens the browser to approve this computer")
                    .clicked()
            {
                actions.push(Action::Send(Command::SignIn {
                    sso_session: session.name.clone(),
                }));
            }
        });
    }
    actions
}

/// The SSO session `profile` signs in through, if any.
pub fn session_of<'a>(snapshot: &'a Snapshot, profile: &str) -> Option<&'a str> {
    snapshot
        .sso_sessions
        .iter()
        .find(|s| s.profiles.iter().any(|p| p == profile))
        .map(|s| s.name.as_str())
}

/// The MFA code dialog's typed code.
#[derive(Debug, Default)]
pub struct MfaDialog {
    code: String,
}

impl MfaDialog {
    pub fn ui(&mut self, ctx: &egui::Context, snapshot: &Snapshot) -> Vec<Action> {
        let Some(request) = &snapshot.mfa_request else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        egui::Modal::new(egui::Id::unique("mfa dialog")).show(ctx, |ui| {
            ui.heading("MFA code");
            ui.label(format!(
                "Profile {} assumes a role that needs the current code of {}.",
                request.profile, request.serial
            ));
            let label = ui.label("Code");
            let field = ui
                .add(egui::TextEdit::singleline(&mut self.code).desired_width(120.0))
                .labelled_by(label.id);
            let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            ui.horizontal(|ui| {
                if ui.button("Continue").clicked() || entered {
                    actions.push(Action::Send(Command::SupplyMfaCode {
                        code: std::mem::take(&mut self.code),
                    }));
                }
                if ui.button("Skip this profile").clicked() {
                    self.code.clear();
                    actions.push(Action::Send(Command::SupplyMfaCode {
                        code: String::new(),
                    }));
                }
            });
        });
        actions
    }
}
