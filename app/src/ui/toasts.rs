//! Toasts: short messages in the window's corner for what the user should hear about once — the
//! engine's notices about what the user asked for (with the button that fixes the problem, when
//! there is one), a tunnel connection that failed or was refused, a tunnel about to reach its
//! maximum duration.
//!
//! A toast stays until dismissed: expiring it would need a timer, and an idle window must not
//! wake up. Only the newest few are shown.

use std::collections::VecDeque;

use bastionless_core::engine::{Command, NoticeAction, NoticeLevel, RouteChoice, Snapshot};

use super::action::Action;

/// How many toasts are kept (the oldest go first).
const KEPT: usize = 4;

#[derive(Debug, Clone, PartialEq)]
struct Toast {
    text: String,
    level: NoticeLevel,
    /// A button's label and what it does.
    button: Option<(String, Action)>,
}

/// The toasts showing, and which events they already came from.
#[derive(Debug, Default)]
pub struct Toasts {
    showing: VecDeque<Toast>,
    /// The newest tunnel event already turned into a toast.
    seen_tunnel_event: u64,
    /// The newest notice already turned into a toast.
    seen_notice: u64,
}

impl Toasts {
    /// Adds a toast per event the snapshot holds that has not had one yet.
    fn take_new(&mut self, snapshot: &Snapshot) {
        for notice in &snapshot.notices {
            if notice.seq <= self.seen_notice {
                continue;
            }
            self.seen_notice = notice.seq;
            self.push(Toast {
                text: notice.text.clone(),
                level: notice.level,
                button: notice
                    .action
                    .as_ref()
                    .and_then(|action| notice_button(action, snapshot)),
            });
        }
        for event in &snapshot.tunnel_events {
            if event.seq <= self.seen_tunnel_event {
                continue;
            }
            self.seen_tunnel_event = event.seq;
            self.push(Toast {
                text: event.to_string(),
                level: if event.kind.is_error() {
                    NoticeLevel::Error
                } else {
                    NoticeLevel::Warning
                },
                button: None,
            });
        }
    }

    fn push(&mut self, toast: Toast) {
        if self.showing.len() == KEPT {
            self.showing.pop_front();
        }
        self.showing.push_back(toast);
    }

    pub fn ui(&mut self, ctx: &egui::Context, snapshot: &Snapshot) -> Vec<Action> {
        self.take_new(snapshot);
        let mut actions = Vec::new();
        if self.showing.is_empty() {
            return actions;
        }
        let mut dismissed = None;
        egui::Area::new(egui::Id::unique("toasts"))
            .anchor(egui::Align2::RIGHT_BOTTOM, [-12.0, -48.0])
            .order(egui::Order::Foreground)
            .show(ctx, |ui| {
                ui.set_max_width(420.0);
                for (index, toast) in self.showing.iter().enumerate() {
                    egui::Frame::popup(ui.style()).show(ui, |ui| {
                        ui.horizontal(|ui| {
                            let colour = match toast.level {
                                NoticeLevel::Error => ui.visuals().error_fg_color,
                                NoticeLevel::Warning => ui.visuals().warn_fg_color,
                                NoticeLevel::Info => ui.visuals().text_color(),
                            };
                            ui.add(
                                egui::Label::new(egui::RichText::new(&toast.text).color(colour))
                                    .wrap(),
                            );
                            if let Some((label, action)) = &toast.button
                                && ui.button(label).clicked()
                            {
                                actions.push(action.clone());
                                dismissed = Some(index);
                            }
                            if ui.small_button("✖").on_hover_text("Dismiss").clicked() {
                                dismissed = Some(index);
                            }
                        });
                    });
                }
            });
        if let Some(index) = dismissed {
            self.showing.remove(index);
        }
        actions
    }
}

/// The button a notice's follow-up becomes, when the engine has a command for it.
fn notice_button(action: &NoticeAction, snapshot: &Snapshot) -> Option<(String, Action)> {
    match action {
        NoticeAction::SignIn { profile } => {
            let session = super::sign_in::session_of(snapshot, profile)?;
            Some((
                "Sign in".to_owned(),
                Action::Send(Command::SignIn {
                    sso_session: session.to_owned(),
                }),
            ))
        }
        NoticeAction::UseSessionManager { host, how } => Some((
            "Use Session Manager".to_owned(),
            Action::Send(Command::Connect {
                host: host.clone(),
                how: how.clone(),
                route: RouteChoice::Ssm,
            }),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bastionless_core::tunnel::{TunnelEvent, TunnelEventKind, TunnelId};
    use std::time::SystemTime;

    fn event(seq: u64) -> TunnelEvent {
        TunnelEvent {
            seq,
            tunnel: TunnelId(1),
            at: SystemTime::now(),
            kind: TunnelEventKind::ConnectionRefused {
                reason: format!("reason {seq}"),
            },
        }
    }

    #[test]
    fn an_eic_failure_offers_the_same_connection_through_session_manager() {
        let host = bastionless_core::inventory::HostKey {
            account_id: "111122223333".into(),
            region: "eu-west-1".into(),
            instance_id: "i-0abc".into(),
        };
        let how = bastionless_core::engine::ConnectHow::Forward {
            remote_port: 5432,
            local_port: Some(15432),
        };
        let action = NoticeAction::UseSessionManager {
            host: host.clone(),
            how: how.clone(),
        };
        let (label, action) = notice_button(&action, &Snapshot::default()).unwrap();
        assert_eq!(label, "Use Session Manager");
        assert_eq!(
            action,
            Action::Send(Command::Connect {
                host,
                how,
                route: RouteChoice::Ssm
            })
        );
    }

    #[test]
    fn each_event_makes_one_toast_and_only_the_newest_are_kept() {
        let mut toasts = Toasts::default();
        let mut snapshot = Snapshot {
            tunnel_events: vec![event(1), event(2)],
            ..Snapshot::default()
        };
        toasts.take_new(&snapshot);
        toasts.take_new(&snapshot);
        assert_eq!(toasts.showing.len(), 2, "an event is toasted once");
        assert_eq!(toasts.showing[0].level, NoticeLevel::Error);
        snapshot.tunnel_events = (1..=7).map(event).collect();
        toasts.take_new(&snapshot);
        assert_eq!(toasts.showing.len(), KEPT);
        assert!(toasts.showing[KEPT - 1].text.contains("reason 7"));
    }
}
