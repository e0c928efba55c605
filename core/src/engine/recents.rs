//! Remembering each [`Command::Connect`](super::Command::Connect) in the store's recents, so the
//! tray, the palette and `bastionless recent` can repeat it — whoever sent it (the window, the
//! tray, `bastionless connect`).

use super::{ConnectHow, Shared};
use crate::inventory::HostKey;
use crate::store::Action;

/// Records the connection on a blocking thread (the store writes and syncs a file); a failure
/// only costs the recent entry, so it is logged.
pub(super) fn remember(shared: &Shared, host: &HostKey, how: &ConnectHow) {
    let Some(store) = shared.store.clone() else {
        return;
    };
    // The profile a connection goes through first is the one that listed the host.
    let (name, profile) = shared
        .publisher
        .current()
        .host(host)
        .map(|h| (h.name.clone(), Some(h.profile.clone())))
        .unwrap_or_default();
    let (action, local_port) = as_action(how);
    let host = host.clone();
    tokio::task::spawn_blocking(move || {
        let recorded = store.record_recent(
            &host,
            profile.as_deref(),
            name.as_deref(),
            action,
            local_port,
        );
        if let Err(error) = recorded {
            tracing::warn!("could not remember the connection to {host} in Recent: {error}");
        }
    });
}

/// The store's words for how a connection was made.
fn as_action(how: &ConnectHow) -> (Action, Option<u16>) {
    match how {
        ConnectHow::Ssh => (Action::Ssh, None),
        ConnectHow::Rdp => (Action::Rdp, None),
        ConnectHow::Shell => (Action::Shell, None),
        ConnectHow::Forward {
            remote_port,
            local_port,
        } => (
            Action::Forward {
                remote_port: *remote_port,
            },
            *local_port,
        ),
    }
}
