//! `bastionless keypair import NAME --file KEY.pem` / `keypair remove NAME`: the private key
//! of an EC2 key pair, kept in the OS keyring per key pair name and account, for decrypting
//! Windows passwords.
//!
//! The account is `--account`, else `--profile`'s, else the one account whose instances use
//! the key pair (found by listing them). Nothing is written to disk; with no OS keyring the
//! command fails and says so.

use crate::aws_source::AwsSource;
use crate::cli::target;
use anyhow::{Context as _, bail};
use bastionless_core::secrets::KeyPairKeys;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct KeypairArgs {
    #[command(subcommand)]
    pub command: KeypairCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum KeypairCommand {
    /// Store a key pair's private key (the .pem EC2 gave you) in the OS keyring.
    Import {
        /// The key pair's name in EC2.
        name: String,
        /// The private key file (PEM, RSA).
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        account: AccountArgs,
    },
    /// Forget a key pair's private key.
    Remove {
        /// The key pair's name in EC2.
        name: String,
        #[command(flatten)]
        account: AccountArgs,
    },
}

/// Which account the key pair belongs to.
#[derive(Debug, clap::Args)]
pub struct AccountArgs {
    /// The 12-digit AWS account id.
    #[arg(long, conflicts_with = "profile")]
    pub account: Option<String>,
    /// A profile of the account.
    #[arg(long)]
    pub profile: Option<String>,
}

pub fn run(args: &KeypairArgs, source: &AwsSource) -> anyhow::Result<ExitCode> {
    match &args.command {
        KeypairCommand::Import {
            name,
            file,
            account,
        } => {
            let pem = zeroize::Zeroizing::new(
                std::fs::read_to_string(file)
                    .with_context(|| format!("could not read {}", file.display()))?,
            );
            let account = account_of(name, account, source)?;
            KeyPairKeys::os()?.import(&account, name, &pem)?;
            eprintln!(
                "bastionless: the private key of key pair {name} (account {account}) is in the OS keyring; {} is no longer needed by Bastionless",
                file.display()
            );
        }
        KeypairCommand::Remove { name, account } => {
            let account = account_of(name, account, source)?;
            if !KeyPairKeys::os()?.remove(&account, name)? {
                bail!("no private key of key pair {name} (account {account}) is in the OS keyring");
            }
            eprintln!("bastionless: forgot the private key of key pair {name} (account {account})");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The account a key pair named on the command line belongs to.
fn account_of(name: &str, args: &AccountArgs, source: &AwsSource) -> anyhow::Result<String> {
    if let Some(account) = &args.account {
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            bail!("`{account}` is not an AWS account id (12 digits)");
        }
        return Ok(account.clone());
    }
    let (_engine, snapshot) = target::inventory(source, None)?;
    if let Some(profile) = &args.profile {
        let status = snapshot
            .profiles
            .iter()
            .find(|p| &p.name == profile)
            .with_context(|| format!("there is no profile named {profile}"))?;
        return status.account_id.clone().with_context(|| {
            format!("the account of profile {profile} is not known (it could not sign in); give --account")
        });
    }
    let accounts: BTreeSet<&str> = snapshot
        .hosts
        .iter()
        .filter(|h| h.key_name.as_deref() == Some(name))
        .map(|h| h.account_id.as_str())
        .collect();
    match accounts.into_iter().collect::<Vec<_>>().as_slice() {
        [account] => Ok((*account).to_owned()),
        [] => {
            bail!("no instance uses key pair {name}; name its account with --profile or --account")
        }
        several => bail!(
            "instances in several accounts use a key pair named {name} ({}); choose one with --profile or --account",
            several.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser as _;

    #[test]
    fn import_takes_a_file_and_either_an_account_or_a_profile() {
        let cli = Cli::try_parse_from([
            "bastionless",
            "keypair",
            "import",
            "prod-windows",
            "--file",
            "k.pem",
            "--profile",
            "prod",
        ])
        .unwrap();
        assert!(matches!(cli.command, Some(Command::Keypair(_))));
        assert!(
            Cli::try_parse_from([
                "bastionless",
                "keypair",
                "import",
                "kp",
                "--file",
                "k.pem",
                "--profile",
                "p",
                "--account",
                "111122223333",
            ])
            .is_err()
        );
        assert!(Cli::try_parse_from(["bastionless", "keypair", "import", "kp"]).is_err());
    }
}
