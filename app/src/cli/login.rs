//! `bastionless login [--sso-session NAME]`: signs in to an IAM Identity Center session with
//! the device-authorization flow. It prints the URL and the code, opens the browser there, and
//! waits for the approval; the token lands in the cache the AWS CLI shares
//! (`~/.aws/sso/cache`), so every profile of the session works afterwards, here and in `aws`.

use crate::aws_source::AwsSource;
use anyhow::{Context as _, bail};
use bastionless_core::profiles::ProfileCatalog;
use bastionless_core::sso;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The `[sso-session NAME]` to sign in to (or a legacy profile's start URL); needed only
    /// when the config has more than one.
    #[arg(long = "sso-session", value_name = "NAME")]
    pub sso_session: Option<String>,
    /// Print the URL and code but do not open a browser.
    #[arg(long)]
    pub no_browser: bool,
}

pub fn run(args: &LoginArgs, source: &AwsSource) -> anyhow::Result<ExitCode> {
    let catalog = ProfileCatalog::load(source.files())?;
    let names: Vec<&str> = catalog.sso_sessions.iter().map(|s| s.key.label()).collect();
    let session = match &args.sso_session {
        Some(name) => catalog.sso_session(name).with_context(|| {
            format!(
                "there is no SSO session `{name}` in {}; known: {}",
                source.files().config.display(),
                list_or_none(&names)
            )
        })?,
        None => match catalog.sso_sessions.as_slice() {
            [only] => only,
            [] => bail!(
                "no SSO session is configured in {}: add an [sso-session NAME] section with sso_start_url and sso_region",
                source.files().config.display()
            ),
            _ => bail!(
                "several SSO sessions are configured; pick one with --sso-session ({})",
                list_or_none(&names)
            ),
        },
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    let label = session.key.label().to_owned();
    let no_browser = args.no_browser;
    runtime
        .block_on(sso::sign_in(session, &catalog.sso_cache_dir, |code| {
            eprintln!("Signing in to SSO session `{label}`.");
            eprintln!("Open {} and check that it shows the code:", code.url());
            eprintln!();
            eprintln!("    {}", code.user_code);
            eprintln!();
            if !no_browser && let Err(error) = sso::open_in_browser(code.url()) {
                eprintln!("({error}; open the address yourself.)");
            }
            eprintln!("Waiting for the approval…");
        }))
        .map_err(anyhow::Error::msg)?;
    eprintln!("Signed in to `{label}`.");
    Ok(ExitCode::SUCCESS)
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// Makes role assumptions that need an MFA code ask for it on the terminal, for the rest of
/// this command.
pub fn ask_mfa_codes_on_terminal() {
    bastionless_core::profiles::set_mfa_prompt(std::sync::Arc::new(TerminalMfa));
}

/// Asks on the controlling terminal (`/dev/tty`), not stdin/stdout: `bastionless proxy`
/// carries ssh's bytes on those.
struct TerminalMfa;

impl bastionless_core::profiles::MfaPrompt for TerminalMfa {
    fn code(
        &self,
        profile: &str,
        serial: &str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send>> {
        let (profile, serial) = (profile.to_owned(), serial.to_owned());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || read_code(&profile, &serial))
                .await
                .map_err(|e| e.to_string())?
        })
    }
}

fn read_code(profile: &str, serial: &str) -> Result<String, String> {
    use std::io::{BufRead as _, Write as _};
    // One question at a time when several profiles need a code at once.
    static ASKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ASKING.lock().unwrap_or_else(|e| e.into_inner());
    let no_terminal = |e: std::io::Error| {
        format!("profile `{profile}` needs an MFA code and there is no terminal to ask on: {e}")
    };
    #[cfg(unix)]
    let (mut input, mut output): (Box<dyn std::io::BufRead>, Box<dyn std::io::Write>) = {
        let tty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .map_err(no_terminal)?;
        let reader = tty.try_clone().map_err(no_terminal)?;
        (Box::new(std::io::BufReader::new(reader)), Box::new(tty))
    };
    #[cfg(not(unix))]
    let (mut input, mut output): (Box<dyn std::io::BufRead>, Box<dyn std::io::Write>) = (
        Box::new(std::io::BufReader::new(std::io::stdin())),
        Box::new(std::io::stderr()),
    );
    write!(output, "MFA code for profile {profile} ({serial}): ")
        .and_then(|()| output.flush())
        .map_err(no_terminal)?;
    let mut line = String::new();
    input.read_line(&mut line).map_err(no_terminal)?;
    let code = line.trim().to_owned();
    if code.is_empty() {
        Err(format!("no MFA code was given for profile `{profile}`"))
    } else {
        Ok(code)
    }
}
