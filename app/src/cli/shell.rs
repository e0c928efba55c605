//! `bastionless shell HOST`: an interactive Session Manager shell on this terminal.
//!
//! On a terminal, it is switched to raw mode for the session (so Ctrl-C, Ctrl-Z and the arrow
//! keys reach the remote shell, and Enter sends `\r` as a terminal does) and restored however
//! the session ends; its size is sent at the start and whenever it changes (checked twice a
//! second, as the plugin does, which also covers Windows consoles that send no signal). With
//! stdin not a terminal (a pipe, a script), bytes pass as they are and the size is `$COLUMNS` ×
//! `$LINES` when both are set, else 80×24; when the input ends, the remote shell gets
//! end-of-file and exits.
//!
//! The exit code is 0 when the shell ends, 1 when the session cannot start or fails.

use crate::aws_source::AwsSource;
use crate::cli::target::{self, HostArgs};
use bastionless_core::ssm::proto::TerminalSize;
use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the terminal's size is checked.
const SIZE_CHECK: Duration = Duration::from_millis(500);
/// The size sent when there is no terminal to ask.
const DEFAULT_SIZE: TerminalSize = TerminalSize { cols: 80, rows: 24 };

#[derive(Debug, clap::Args)]
pub struct ShellArgs {
    #[command(flatten)]
    pub target: HostArgs,
}

pub fn run(args: &ShellArgs, source: &AwsSource) -> anyhow::Result<ExitCode> {
    let (engine, snapshot) = target::inventory_for(source, &args.target)?;
    let host = target::resolve(&snapshot, &args.target)?;
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let (sizes_tx, sizes) = tokio::sync::watch::channel(current_size(interactive));
    let _raw = interactive.then(RawMode::enable).transpose()?;
    let done = Arc::new(AtomicBool::new(false));
    if interactive {
        let done = done.clone();
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(SIZE_CHECK);
                sizes_tx.send_if_modified(|size| {
                    let now = current_size(true);
                    let changed = *size != now;
                    *size = now;
                    changed
                });
            }
        });
    }
    let result = engine.shell_blocking(&host.key(), tokio::io::stdin(), tokio::io::stdout(), sizes);
    done.store(true, Ordering::Relaxed);
    drop(_raw);
    match result {
        Ok(exit) => {
            if interactive {
                eprintln!("\nbastionless: session {} ended.", exit.session_id);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => anyhow::bail!("the shell on {} failed: {error}", host.display_name()),
    }
}

fn current_size(interactive: bool) -> TerminalSize {
    if interactive
        && let Ok((cols, rows)) = crossterm::terminal::size()
        && cols > 0
        && rows > 0
    {
        return TerminalSize {
            cols: cols.into(),
            rows: rows.into(),
        };
    }
    let from_env = |name| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|n| *n > 0)
    };
    match (from_env("COLUMNS"), from_env("LINES")) {
        (Some(cols), Some(rows)) => TerminalSize { cols, rows },
        _ => DEFAULT_SIZE,
    }
}

/// The terminal in raw mode until dropped.
struct RawMode;

impl RawMode {
    fn enable() -> anyhow::Result<Self> {
        crossterm::terminal::enable_raw_mode()
            .map_err(|e| anyhow::anyhow!("could not put the terminal in raw mode: {e}"))?;
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}
