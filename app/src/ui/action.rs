//! What a panel asks for: either a [`Command`] for the engine, or something the window does
//! itself (copy text, open a dialog, move the selection). Panels return these instead of acting,
//! so each panel is a pure function of its state and the snapshot, and [`super::BastionlessApp`]
//! is the one place that turns them into effects.

use bastionless_core::engine::Command;
use bastionless_core::inventory::HostKey;
use bastionless_core::store::{AppSettings, HostSettings};

/// How the user asked to connect to a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectAs {
    /// The host's usual client: SSH on Linux, RDP on Windows (double-click, Enter).
    Default,
    Ssh,
    Rdp,
    /// A shell through Session Manager.
    Shell,
}

/// Something a panel asks the window to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this to the engine.
    Send(Command),
    /// Connect to the host (see [`ConnectAs`]).
    Connect(HostKey, ConnectAs),
    /// Ask which port to forward to the host, then forward it.
    AskForward(HostKey),
    /// Make the host a favorite, or stop it being one.
    ToggleFavorite(HostKey),
    /// Put this text on the clipboard.
    Copy(String),
    /// Show why the host's routes are what they are.
    ExplainRoute(HostKey),
    /// Select the host in the table (and scroll to it).
    Select(HostKey),
    /// Open the command palette.
    OpenPalette,
    /// Focus the search box.
    FocusSearch,
    /// Show or hide the log.
    ToggleLog,
    /// Open the Settings window.
    OpenSettings,
    /// Keep these app settings and apply what can be applied now.
    SaveSettings(AppSettings),
    /// Open the host's settings dialog.
    EditHostSettings(HostKey),
    /// Keep these settings for the host (per account and instance).
    SaveHostSettings(HostKey, HostSettings),
}

/// Forwarding `remote_port` on the host to a local port (any free one when `None`).
pub fn forward(host: HostKey, remote_port: u16, local_port: Option<u16>) -> Action {
    Action::Send(Command::Connect {
        host,
        how: bastionless_core::engine::ConnectHow::Forward {
            remote_port,
            local_port,
        },
        route: bastionless_core::engine::RouteChoice::Auto,
    })
}
