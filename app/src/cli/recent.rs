//! `bastionless recent`: the last connections made from the window, the tray or the command
//! line, newest first.

use crate::aws_source::AwsSource;
use crate::cli::favorites::open_store;
use anyhow::Context as _;
use bastionless_core::store::Recent;
use std::io::Write as _;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct RecentArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &RecentArgs, source: &AwsSource) -> anyhow::Result<ExitCode> {
    let recents = open_store(source)?.recents();
    let mut stdout = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(&mut stdout, &recents)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(stdout))
    } else if recents.is_empty() {
        eprintln!("No connections made yet.");
        Ok(())
    } else {
        stdout.write_all(format_table(&recents).as_bytes())
    };
    match written.and_then(|()| stdout.flush()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.context("could not write to stdout")?,
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per connection: when (local time), how, what, where.
fn format_table(recents: &[Recent]) -> String {
    let width = recents.iter().map(|r| r.label().len()).max().unwrap_or(0);
    recents
        .iter()
        .map(|r| {
            format!(
                "{}  {:10}  {:width$}  {}  account {}  {}\n",
                r.at.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M"),
                r.action.to_string(),
                r.label(),
                r.instance_id,
                r.account_id,
                r.region,
            )
        })
        .collect()
}
