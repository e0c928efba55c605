//! The tunnels panel: every tunnel with its host, route, local port (with a copy button),
//! state (connecting, listening, open, resuming, failed with the reason, closed), start time,
//! bytes each way, a throughput sparkline, the round-trip time and resume count of its link,
//! and Close.
//!
//! The start is shown as a clock time rather than a ticking age, because a ticking age would
//! need a repaint every second and an idle window must not repaint at all. The sparkline is the
//! panel's own memory of the rates each snapshot reported; the tunnel manager publishes about
//! four times a second while bytes flow and not at all while idle, so the line moves exactly
//! when something happens.

use std::collections::{BTreeMap, VecDeque};
use std::time::SystemTime;

use bastionless_core::engine::{Command, Snapshot};
use bastionless_core::tunnel::{LocalEnd, RouteInfo, TunnelId, TunnelState, TunnelStatus};

use super::action::Action;
use super::format::{bytes, clock_time, duration};

/// How many rate samples a sparkline keeps.
const SPARK_SAMPLES: usize = 60;

/// The panel's state: each tunnel's recent rates.
#[derive(Debug, Default)]
pub struct TunnelsPanel {
    history: BTreeMap<TunnelId, VecDeque<u64>>,
    /// The snapshot generation last sampled, so each snapshot adds one sample.
    sampled: Option<u64>,
}

impl TunnelsPanel {
    pub fn ui(&mut self, ui: &mut egui::Ui, snapshot: &Snapshot) -> Vec<Action> {
        self.sample(snapshot);
        let mut actions = Vec::new();
        ui.horizontal(|ui| {
            ui.strong("Tunnels");
            ui.weak(format!(
                "{} open",
                snapshot.tunnels.iter().filter(|t| !t.is_finished()).count()
            ));
        });
        egui::ScrollArea::vertical()
            .auto_shrink([false, true])
            .show(ui, |ui| {
                egui::Grid::new("tunnels")
                    .striped(true)
                    .num_columns(10)
                    .show(ui, |ui| {
                        for tunnel in &snapshot.tunnels {
                            actions.extend(self.tunnel_row(ui, tunnel));
                            ui.end_row();
                        }
                    });
            });
        actions
    }

    fn sample(&mut self, snapshot: &Snapshot) {
        if self.sampled == Some(snapshot.generation) {
            return;
        }
        self.sampled = Some(snapshot.generation);
        self.history
            .retain(|id, _| snapshot.tunnels.iter().any(|t| t.id == *id));
        for tunnel in &snapshot.tunnels {
            let samples = self.history.entry(tunnel.id).or_default();
            samples.push_back(tunnel.rate_to_remote + tunnel.rate_from_remote);
            if samples.len() > SPARK_SAMPLES {
                samples.pop_front();
            }
        }
    }

    fn tunnel_row(&self, ui: &mut egui::Ui, tunnel: &TunnelStatus) -> Vec<Action> {
        let mut actions = Vec::new();
        ui.label(format!(
            "{}:{}",
            tunnel.target.host_name, tunnel.target.remote_port
        ))
        .on_hover_text(tunnel.target.host.to_string());
        ui.label(route_text(tunnel.route.as_ref()));
        match tunnel.local {
            LocalEnd::Listener(addr) => {
                ui.horizontal(|ui| {
                    ui.monospace(addr.to_string());
                    if ui
                        .small_button("📋")
                        .on_hover_text(format!("Copy {addr}"))
                        .clicked()
                    {
                        actions.push(Action::Copy(addr.to_string()));
                    }
                });
            }
            LocalEnd::Stdio => {
                ui.label("stdin/stdout");
            }
            LocalEnd::Pending => {
                ui.weak("—");
            }
        }
        let (state, colour) = state_text(ui, &tunnel.state);
        let state = ui.colored_label(colour, state);
        if let Some(error) = &tunnel.last_error {
            state.on_hover_text(format!("Last problem: {error}"));
        }
        let started = SystemTime::now() - tunnel.age();
        ui.label(format!("since {}", clock_time(started)))
            .on_hover_text(format!("{} ago", duration(tunnel.age())));
        ui.label(format!(
            "sent {} · received {}",
            bytes(tunnel.bytes_to_remote),
            bytes(tunnel.bytes_from_remote)
        ))
        .on_hover_text(format!(
            "{} sent to the instance, {} received; {} connections open, {} so far",
            bytes(tunnel.bytes_to_remote),
            bytes(tunnel.bytes_from_remote),
            tunnel.open_connections,
            tunnel.connections_total
        ));
        ui.label(match tunnel.rtt {
            Some(rtt) => format!("RTT {} ms", rtt.as_millis()),
            None => "RTT —".to_owned(),
        })
        .on_hover_text(match tunnel.route {
            Some(RouteInfo::Eic { .. }) => "EC2 Instance Connect reports no round-trip time",
            _ => "Round-trip time to the SSM Agent, from its acknowledgements",
        });
        ui.label(resumes_text(tunnel.resumes))
            .on_hover_text("Times the connection to Session Manager was lost and restored");
        let samples = self.history.get(&tunnel.id);
        sparkline(ui, samples).on_hover_text(format!(
            "now sending {}/s, receiving {}/s",
            bytes(tunnel.rate_to_remote),
            bytes(tunnel.rate_from_remote)
        ));
        let close = if tunnel.is_finished() {
            "Dismiss"
        } else {
            "Close"
        };
        if ui
            .button(close)
            .on_hover_text(format!("{close} the tunnel to {}", tunnel.target.host_name))
            .clicked()
        {
            actions.push(Action::Send(Command::CloseTunnel(tunnel.id)));
        }
        actions
    }
}

/// "EIC eice-0abc (dev)", "SSM (dev)", or "…" while the route is worked out.
fn route_text(route: Option<&RouteInfo>) -> String {
    match route {
        Some(RouteInfo::Eic {
            profile,
            endpoint_id,
        }) => format!("EIC {endpoint_id} ({profile})"),
        Some(RouteInfo::Ssm { profile }) => format!("SSM ({profile})"),
        None => "…".to_owned(),
    }
}

/// The state in words and the colour to draw them in.
fn state_text(ui: &egui::Ui, state: &TunnelState) -> (String, egui::Color32) {
    let visuals = ui.visuals();
    match state {
        TunnelState::Connecting => ("connecting…".to_owned(), visuals.warn_fg_color),
        TunnelState::Listening => ("listening".to_owned(), visuals.text_color()),
        TunnelState::Open => ("open".to_owned(), egui::Color32::from_rgb(0x2e, 0xa0, 0x43)),
        TunnelState::Resuming => ("resuming…".to_owned(), visuals.warn_fg_color),
        TunnelState::Failed { reason } => (format!("failed: {reason}"), visuals.error_fg_color),
        TunnelState::Closed => ("closed".to_owned(), visuals.weak_text_color()),
    }
}

/// "1 resume", "3 resumes", or "no resumes".
fn resumes_text(resumes: u32) -> String {
    match resumes {
        0 => "no resumes".to_owned(),
        1 => "1 resume".to_owned(),
        n => format!("{n} resumes"),
    }
}

/// A small line chart of the samples, scaled to their largest.
fn sparkline(ui: &mut egui::Ui, samples: Option<&VecDeque<u64>>) -> egui::Response {
    let size = egui::vec2(80.0, ui.spacing().interact_size.y);
    let (rect, response) = ui.allocate_exact_size(size, egui::Sense::hover());
    let Some(samples) = samples.filter(|s| s.len() > 1) else {
        return response;
    };
    let max = samples.iter().copied().max().unwrap_or(0).max(1) as f32;
    let step = rect.width() / (SPARK_SAMPLES - 1) as f32;
    let start = rect.right() - step * (samples.len() - 1) as f32;
    let points: Vec<egui::Pos2> = samples
        .iter()
        .enumerate()
        .map(|(i, &rate)| {
            egui::pos2(
                start + step * i as f32,
                rect.bottom() - 2.0 - (rect.height() - 4.0) * rate as f32 / max,
            )
        })
        .collect();
    let colour = ui.visuals().selection.bg_fill;
    ui.painter()
        .add(egui::Shape::line(points, egui::Stroke::new(1.5, colour)));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_says_which_endpoint_or_session_manager_and_whose_credentials() {
        let eic = RouteInfo::Eic {
            profile: "dev".into(),
            endpoint_id: "eice-0abc".into(),
        };
        assert_eq!(route_text(Some(&eic)), "EIC eice-0abc (dev)");
        let ssm = RouteInfo::Ssm {
            profile: "prod".into(),
        };
        assert_eq!(route_text(Some(&ssm)), "SSM (prod)");
        assert_eq!(route_text(None), "…");
    }
}
