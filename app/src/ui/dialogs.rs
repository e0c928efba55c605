//! Small dialogs about one host: "Why this route?" (every route's verdict and reasons, for SSH,
//! RDP and the host's usual port) and "Forward port…" (which remote port, and optionally which
//! local one).

use bastionless_core::engine::Snapshot;
use bastionless_core::inventory::HostKey;
use bastionless_core::route::Purpose;

use super::action::{Action, forward};
use super::hosts::route_cell;

/// The "Why this route?" window, for one host at a time.
#[derive(Debug, Default)]
pub struct RouteExplainer {
    host: Option<HostKey>,
}

impl RouteExplainer {
    pub fn show(&mut self, host: HostKey) {
        self.host = Some(host);
    }

    pub fn ui(&mut self, ctx: &egui::Context, snapshot: &Snapshot) {
        let Some(key) = self.host.clone() else {
            return;
        };
        let Some(host) = snapshot.host(&key) else {
            self.host = None;
            return;
        };
        let mut open = true;
        egui::Window::new(format!("Routes to {}", host.display_name()))
            .id(egui::Id::unique("route explainer"))
            .open(&mut open)
            .default_width(520.0)
            .show(ctx, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    for purpose in [
                        Purpose::for_host(host),
                        other_purpose(Purpose::for_host(host)),
                    ] {
                        let report = snapshot.assess_route(host, purpose);
                        let (badge, explanation) = route_cell(Some(&report));
                        ui.heading(format!("{purpose}: {badge}"));
                        ui.label(explanation);
                        ui.separator();
                    }
                    ui.weak(
                        "Verdicts come from what the inventory shows (endpoints, security groups, \
                         the SSM agent's registration); network ACLs, route tables and IAM can \
                         still stop a connection.",
                    );
                });
            });
        if !open {
            self.host = None;
        }
    }
}

/// SSH for an RDP host and RDP for an SSH one: the other usual purpose.
fn other_purpose(purpose: Purpose) -> Purpose {
    match purpose {
        Purpose::Rdp => Purpose::Ssh,
        _ => Purpose::Rdp,
    }
}

/// The "Forward port…" dialog.
#[derive(Debug, Default)]
pub struct ForwardDialog {
    host: Option<HostKey>,
    remote: String,
    local: String,
    error: Option<String>,
}

impl ForwardDialog {
    pub fn show(&mut self, host: HostKey) {
        *self = Self {
            host: Some(host),
            remote: String::new(),
            local: String::new(),
            error: None,
        };
    }

    pub fn ui(&mut self, ctx: &egui::Context, snapshot: &Snapshot) -> Vec<Action> {
        let Some(key) = self.host.clone() else {
            return Vec::new();
        };
        let name = snapshot
            .host(&key)
            .map_or(key.instance_id.clone(), |h| h.display_name().to_owned());
        let mut actions = Vec::new();
        let mut open = true;
        let mut done = false;
        egui::Window::new(format!("Forward a port of {name}"))
            .id(egui::Id::unique("forward dialog"))
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .show(ctx, |ui| {
                egui::Grid::new("forward fields")
                    .num_columns(2)
                    .show(ui, |ui| {
                        let label = ui.label("Port on the host");
                        ui.add(
                            egui::TextEdit::singleline(&mut self.remote)
                                .hint_text("5432")
                                .desired_width(80.0),
                        )
                        .labelled_by(label.id);
                        ui.end_row();
                        let label = ui.label("Local port");
                        ui.add(
                            egui::TextEdit::singleline(&mut self.local)
                                .hint_text("any free")
                                .desired_width(80.0),
                        )
                        .labelled_by(label.id);
                        ui.end_row();
                    });
                if let Some(error) = &self.error {
                    ui.colored_label(ui.visuals().error_fg_color, error);
                }
                if ui.button("Forward").clicked() {
                    match parse_ports(&self.remote, &self.local) {
                        Ok((remote, local)) => {
                            actions.push(forward(key.clone(), remote, local));
                            done = true;
                        }
                        Err(error) => self.error = Some(error),
                    }
                }
            });
        if !open || done {
            self.host = None;
        }
        actions
    }
}

/// The remote port (required) and local port (empty for any free one), or what is wrong.
fn parse_ports(remote: &str, local: &str) -> Result<(u16, Option<u16>), String> {
    let port = |text: &str, what: &str| -> Result<u16, String> {
        text.trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                format!(
                    "The {what} must be a number from 1 to 65535, not “{}”.",
                    text.trim()
                )
            })
    };
    let remote = port(remote, "port on the host")?;
    let local = match local.trim() {
        "" => None,
        text => Some(port(text, "local port")?),
    };
    Ok((remote, local))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_checked_and_an_empty_local_port_means_any() {
        assert_eq!(parse_ports("5432", ""), Ok((5432, None)));
        assert_eq!(parse_ports(" 80 ", "8080"), Ok((80, Some(8080))));
        assert!(
            parse_ports("", "")
                .unwrap_err()
                .contains("port on the host")
        );
        assert!(parse_ports("0", "").is_err());
        assert!(
            parse_ports("22", "70000")
                .unwrap_err()
                .contains("local port")
        );
    }
}
