//! The tray's menu and icon as plain data, built from the engine's snapshot and the store, so
//! what the tray shows is unit-tested without a tray: the runtime ([`super`]) only turns a
//! [`TrayMenu`] into native items, and rebuilds them when the model changes (byte counters and
//! other churn in the snapshot leave the model equal, so the menu is not rebuilt every second).

use bastionless_core::engine::{ConnectHow, Snapshot};
use bastionless_core::inventory::HostKey;
use bastionless_core::store::{Action, Favorite, Recent};
use bastionless_core::tunnel::{TunnelId, TunnelState, TunnelStatus};

/// Which icon the tray shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayIcon {
    /// No tunnels.
    Idle,
    /// At least one tunnel open or opening, none failed.
    Active,
    /// A tunnel failed (until it is dismissed).
    Failed,
}

/// What clicking an item does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrayAction {
    /// Connect to `host` the way the favorite or recent entry says.
    Connect {
        host: HostKey,
        action: Action,
        local_port: Option<u16>,
    },
    /// Close a tunnel, or dismiss a failed one.
    CloseTunnel(TunnelId),
    /// Show the window.
    OpenWindow,
    /// Close every tunnel and quit.
    Quit,
}

impl TrayAction {
    /// The engine's name for a connect action.
    pub fn connect_how(action: Action, local_port: Option<u16>) -> ConnectHow {
        match action {
            Action::Ssh => ConnectHow::Ssh,
            Action::Rdp => ConnectHow::Rdp,
            Action::Shell => ConnectHow::Shell,
            Action::Forward { remote_port } => ConnectHow::Forward {
                remote_port,
                local_port,
            },
        }
    }
}

/// One entry of the menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MenuNode {
    /// A clickable line; `None` makes it a greyed-out label.
    Item {
        label: String,
        action: Option<TrayAction>,
    },
    Submenu {
        label: String,
        children: Vec<MenuNode>,
    },
    Separator,
}

impl MenuNode {
    fn item(label: impl Into<String>, action: TrayAction) -> Self {
        MenuNode::Item {
            label: label.into(),
            action: Some(action),
        }
    }

    fn label(label: impl Into<String>) -> Self {
        MenuNode::Item {
            label: label.into(),
            action: None,
        }
    }
}

/// Everything the tray shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayMenu {
    pub icon: TrayIcon,
    pub tooltip: String,
    pub items: Vec<MenuNode>,
}

impl TrayMenu {
    /// The menu for this snapshot, favorites and recents: Favorites (a submenu per account),
    /// Recent, Active tunnels (each with Close), Open Bastionless, Quit.
    pub fn build(snapshot: &Snapshot, favorites: &[Favorite], recents: &[Recent]) -> Self {
        let tunnels: Vec<&TunnelStatus> = snapshot
            .tunnels
            .iter()
            .filter(|t| !matches!(t.state, TunnelState::Closed))
            .collect();
        let failed = tunnels
            .iter()
            .filter(|t| matches!(t.state, TunnelState::Failed { .. }))
            .count();
        let live = tunnels.len() - failed;
        let icon = match (failed, live) {
            (1.., _) => TrayIcon::Failed,
            (0, 1..) => TrayIcon::Active,
            (0, 0) => TrayIcon::Idle,
        };
        let tooltip = match (failed, live) {
            (0, 0) => "Bastionless: no tunnels".to_owned(),
            (0, n) => format!("Bastionless: {n} {} open", plural(n, "tunnel", "tunnels")),
            (f, n) => format!(
                "Bastionless: {n} {} open, {f} failed",
                plural(n, "tunnel", "tunnels")
            ),
        };

        let mut items = vec![MenuNode::label("Favorites")];
        items.extend(favorite_groups(snapshot, favorites));
        items.push(MenuNode::Separator);
        items.push(MenuNode::Submenu {
            label: "Recent".into(),
            children: if recents.is_empty() {
                vec![MenuNode::label("No connections yet")]
            } else {
                recents.iter().map(recent_item).collect()
            },
        });
        items.push(MenuNode::Separator);
        items.push(MenuNode::label(if tunnels.is_empty() {
            "No active tunnels"
        } else {
            "Active tunnels"
        }));
        items.extend(tunnels.iter().map(|t| tunnel_node(t)));
        items.push(MenuNode::Separator);
        items.push(MenuNode::item("Open Bastionless", TrayAction::OpenWindow));
        items.push(MenuNode::item("Quit", TrayAction::Quit));
        TrayMenu {
            icon,
            tooltip,
            items,
        }
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// A submenu per account, named after the profiles that reach it, in account order.
fn favorite_groups(snapshot: &Snapshot, favorites: &[Favorite]) -> Vec<MenuNode> {
    if favorites.is_empty() {
        return vec![MenuNode::label("No favorites yet (star a host)")];
    }
    let mut accounts: Vec<&str> = favorites.iter().map(|f| f.account_id.as_str()).collect();
    accounts.sort_unstable();
    accounts.dedup();
    accounts
        .into_iter()
        .map(|account| {
            let mut members: Vec<&Favorite> = favorites
                .iter()
                .filter(|f| f.account_id == account)
                .collect();
            members.sort_by_key(|f| f.label().to_lowercase());
            MenuNode::Submenu {
                label: account_label(snapshot, account),
                children: members.into_iter().map(favorite_item).collect(),
            }
        })
        .collect()
}

/// `prod, prod-admin (111122223333)`, or the bare account id before any profile reached it.
fn account_label(snapshot: &Snapshot, account: &str) -> String {
    let profiles: Vec<&str> = snapshot
        .profiles
        .iter()
        .filter(|p| p.account_id.as_deref() == Some(account))
        .map(|p| p.name.as_str())
        .collect();
    if profiles.is_empty() {
        format!("Account {account}")
    } else {
        format!("{} ({account})", profiles.join(", "))
    }
}

fn favorite_item(favorite: &Favorite) -> MenuNode {
    MenuNode::item(
        format!(
            "{} — {}",
            favorite.label(),
            describe(favorite.action, favorite.local_port)
        ),
        TrayAction::Connect {
            host: favorite.host_key(),
            action: favorite.action,
            local_port: favorite.local_port,
        },
    )
}

fn recent_item(recent: &Recent) -> MenuNode {
    MenuNode::item(
        format!(
            "{} — {}",
            recent.label(),
            describe(recent.action, recent.local_port)
        ),
        TrayAction::Connect {
            host: recent.host_key(),
            action: recent.action,
            local_port: recent.local_port,
        },
    )
}

fn describe(action: Action, local_port: Option<u16>) -> String {
    match (action, local_port) {
        (Action::Ssh, _) => "SSH".into(),
        (Action::Rdp, _) => "Remote Desktop".into(),
        (Action::Shell, _) => "Shell".into(),
        (Action::Forward { remote_port }, Some(local)) => {
            format!("forward {local} → {remote_port}")
        }
        (Action::Forward { remote_port }, None) => format!("forward port {remote_port}"),
    }
}

/// `web-1:22 on 127.0.0.1:50022` with Close, or `web-1:22 failed` with Dismiss.
fn tunnel_node(tunnel: &TunnelStatus) -> MenuNode {
    let target = format!("{}:{}", tunnel.target.host_name, tunnel.target.remote_port);
    let (label, close) = match (&tunnel.state, tunnel.local_addr()) {
        (TunnelState::Failed { .. }, _) => (format!("{target} failed"), "Dismiss"),
        (TunnelState::Connecting, _) | (_, None) => (format!("{target} connecting…"), "Close"),
        (TunnelState::Resuming, _) => (format!("{target} resuming…"), "Close"),
        (_, Some(addr)) => (format!("{target} on {addr}"), "Close"),
    };
    let mut children = Vec::new();
    if let TunnelState::Failed { reason } = &tunnel.state {
        children.push(MenuNode::label(truncate(reason, 80)));
    }
    children.push(MenuNode::item(close, TrayAction::CloseTunnel(tunnel.id)));
    MenuNode::Submenu { label, children }
}

fn truncate(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bastionless_core::engine::{ProfileState, ProfileStatus};
    use bastionless_core::tunnel::{LocalEnd, TunnelTarget};
    use std::time::Instant;

    fn favorite(account: &str, id: &str, alias: Option<&str>, action: Action) -> Favorite {
        Favorite {
            account_id: account.into(),
            region: "eu-west-1".into(),
            instance_id: id.into(),
            alias: alias.map(str::to_owned),
            name: Some(format!("name-{id}")),
            action,
            local_port: None,
        }
    }

    fn tunnel(id: u64, state: TunnelState, local: LocalEnd) -> TunnelStatus {
        TunnelStatus {
            id: TunnelId(id),
            target: TunnelTarget {
                host: HostKey {
                    account_id: "111111111111".into(),
                    region: "eu-west-1".into(),
                    instance_id: "i-1".into(),
                },
                host_name: "web-1".into(),
                remote_port: 22,
            },
            route: None,
            local,
            state,
            bytes_to_remote: 0,
            bytes_from_remote: 0,
            rate_to_remote: 0,
            rate_from_remote: 0,
            open_connections: 0,
            connections_total: 0,
            started: Instant::now(),
            last_error: None,
            resumes: 0,
            rtt: None,
        }
    }

    fn snapshot_with(tunnels: Vec<TunnelStatus>) -> Snapshot {
        Snapshot {
            profiles: vec![ProfileStatus {
                name: "prod".into(),
                region: None,
                account_id: Some("222222222222".into()),
                same_account_as: None,
                state: ProfileState::Ready { hosts: 1 },
                warnings: vec![],
            }],
            tunnels,
            ..Snapshot::default()
        }
    }

    fn labels(nodes: &[MenuNode]) -> Vec<String> {
        nodes
            .iter()
            .map(|n| match n {
                MenuNode::Item { label, action } => {
                    format!("{label}{}", if action.is_some() { "" } else { " (label)" })
                }
                MenuNode::Submenu { label, children } => {
                    format!("{label} [{}]", labels(children).join(" | "))
                }
                MenuNode::Separator => "---".into(),
            })
            .collect()
    }

    #[test]
    fn an_empty_app_has_an_idle_icon_and_says_what_is_missing() {
        let menu = TrayMenu::build(&Snapshot::default(), &[], &[]);
        assert_eq!(menu.icon, TrayIcon::Idle);
        assert_eq!(menu.tooltip, "Bastionless: no tunnels");
        assert_eq!(
            labels(&menu.items),
            [
                "Favorites (label)",
                "No favorites yet (star a host) (label)",
                "---",
                "Recent [No connections yet (label)]",
                "---",
                "No active tunnels (label)",
                "---",
                "Open Bastionless",
                "Quit"
            ]
        );
    }

    #[test]
    fn favorites_are_grouped_by_account_and_connect_with_their_action() {
        let favorites = [
            favorite("222222222222", "i-b", Some("zeta"), Action::Ssh),
            favorite("111111111111", "i-a", None, Action::Rdp),
            favorite(
                "222222222222",
                "i-a",
                Some("alpha"),
                Action::Forward { remote_port: 5432 },
            ),
        ];
        let menu = TrayMenu::build(&snapshot_with(vec![]), &favorites, &[]);
        let shown = labels(&menu.items);
        assert_eq!(shown[1], "Account 111111111111 [name-i-a — Remote Desktop]");
        assert_eq!(
            shown[2],
            "prod (222222222222) [alpha — forward port 5432 | zeta — SSH]"
        );
        let MenuNode::Submenu { children, .. } = &menu.items[2] else {
            panic!("{shown:?}")
        };
        let MenuNode::Item {
            action: Some(action),
            ..
        } = &children[0]
        else {
            panic!("{children:?}")
        };
        assert_eq!(
            action,
            &TrayAction::Connect {
                host: HostKey {
                    account_id: "222222222222".into(),
                    region: "eu-west-1".into(),
                    instance_id: "i-a".into(),
                },
                action: Action::Forward { remote_port: 5432 },
                local_port: None,
            }
        );
        assert_eq!(
            TrayAction::connect_how(Action::Forward { remote_port: 5432 }, Some(15432)),
            ConnectHow::Forward {
                remote_port: 5432,
                local_port: Some(15432)
            }
        );
    }

    #[test]
    fn recents_repeat_the_connection_they_record() {
        let recent = Recent {
            account_id: "111111111111".into(),
            region: "us-east-1".into(),
            instance_id: "i-9".into(),
            name: Some("db".into()),
            profile: None,
            action: Action::Shell,
            local_port: None,
            at: chrono::Utc::now(),
        };
        let menu = TrayMenu::build(&Snapshot::default(), &[], &[recent]);
        let MenuNode::Submenu { label, children } = &menu.items[3] else {
            panic!("{:?}", menu.items)
        };
        assert_eq!(label, "Recent");
        assert_eq!(labels(children), ["db — Shell"]);
    }

    #[test]
    fn the_icon_and_tunnel_entries_follow_the_tunnels() {
        let listening = tunnel(
            1,
            TunnelState::Listening,
            LocalEnd::Listener("127.0.0.1:50022".parse().unwrap()),
        );
        let menu = TrayMenu::build(&snapshot_with(vec![listening.clone()]), &[], &[]);
        assert_eq!(menu.icon, TrayIcon::Active);
        assert_eq!(menu.tooltip, "Bastionless: 1 tunnel open");
        let shown = labels(&menu.items);
        assert!(
            shown.contains(&"Active tunnels (label)".to_owned()),
            "{shown:?}"
        );
        assert!(
            shown.contains(&"web-1:22 on 127.0.0.1:50022 [Close]".to_owned()),
            "{shown:?}"
        );
        let close = menu
            .items
            .iter()
            .find_map(|n| match n {
                MenuNode::Submenu { children, .. } => children.iter().find_map(|c| match c {
                    MenuNode::Item {
                        action: Some(a @ TrayAction::CloseTunnel(_)),
                        ..
                    } => Some(a.clone()),
                    _ => None,
                }),
                _ => None,
            })
            .unwrap();
        assert_eq!(close, TrayAction::CloseTunnel(TunnelId(1)));

        let failed = tunnel(
            2,
            TunnelState::Failed {
                reason: "the endpoint refused port 22".into(),
            },
            LocalEnd::Pending,
        );
        let closed = tunnel(3, TunnelState::Closed, LocalEnd::Stdio);
        let menu = TrayMenu::build(&snapshot_with(vec![listening, failed, closed]), &[], &[]);
        assert_eq!(menu.icon, TrayIcon::Failed);
        assert_eq!(menu.tooltip, "Bastionless: 1 tunnel open, 1 failed");
        let shown = labels(&menu.items);
        assert!(
            shown.contains(
                &"web-1:22 failed [the endpoint refused port 22 (label) | Dismiss]".to_owned()
            ),
            "{shown:?}"
        );
        assert_eq!(
            shown.iter().filter(|l| l.starts_with("web-1")).count(),
            2,
            "a closed stdio tunnel is not listed: {shown:?}"
        );
    }

    #[test]
    fn byte_counters_do_not_change_the_menu() {
        let mut busy = tunnel(
            1,
            TunnelState::Open,
            LocalEnd::Listener("127.0.0.1:50022".parse().unwrap()),
        );
        let before = TrayMenu::build(&snapshot_with(vec![busy.clone()]), &[], &[]);
        busy.bytes_to_remote = 1 << 20;
        busy.rate_from_remote = 4096;
        busy.open_connections = 3;
        let after = TrayMenu::build(&snapshot_with(vec![busy]), &[], &[]);
        assert_eq!(before, after);
    }
}
