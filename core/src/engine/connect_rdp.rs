//! RDP to a Windows host: its password fetched and decrypted, a tunnel to port 3389, and the
//! system RDP client pointed at the tunnel (the `Rdp` arm of `Command::Connect`, and the
//! blocking helpers `bastionless rdp` uses).
//!
//! The password comes first: when Windows has not set it yet, or no key is in the keyring for
//! the instance's key pair, nothing is opened and the notice says what to do. The password is
//! fetched with `GetPasswordData` by the first of the host's profiles that may, decrypted with
//! the key pair's private key from the OS keyring, and handed to the client on its stdin (or
//! the clipboard, or the Windows Credential Manager: `launch::rdp::hand_over_password`).
//!
//! The login user, the route and the RDP command template come from the settings
//! (`launch::settings::LaunchPlan`), read at connect time.

use std::sync::Arc;

use aws_types::region::Region;

use super::launch::close_when_done;
use super::{Engine, RouteChoice, Shared, connect};
use crate::inventory::{Host, HostKey};
use crate::launch::rdp::{
    RdpEnv, RdpSession, choose_rdp_client, hand_over_password, rdp_file_contents, rdp_launch,
    spawn_rdp_client,
};
use crate::launch::settings::LaunchPlan;
use crate::launch::windows_password::{
    PasswordError, WindowsPassword, decrypt_password, fetch_password_data,
};
use crate::secrets::KeyPairKeys;

/// The RDP port Windows listens on.
pub const RDP_PORT: u16 = 3389;

/// Opens an RDP session to `key` in the platform's client; the text says how it went.
pub(super) async fn rdp(
    shared: &Arc<Shared>,
    key: &HostKey,
    route: RouteChoice,
    plan: LaunchPlan,
) -> Result<String, String> {
    let host = host(shared, key)?;
    let password = windows_password(shared, &host).await?;
    let template = plan.rdp_template.clone();
    let client = tokio::task::spawn_blocking(move || {
        choose_rdp_client(template.as_deref(), None, &RdpEnv::current())
    })
    .await
    .map_err(|e| format!("could not look for an RDP client: {e}"))?
    .map_err(|e| e.to_string())?;
    let (tunnel, addr) = connect::open_forward(shared, key, RDP_PORT, None, None, route).await?;
    let session = RdpSession {
        local_port: addr.port(),
        username: plan.user.clone(),
        host_name: host.display_name().to_owned(),
    };
    let instance_id = host.instance_id.clone();
    // Writes a file and starts a program: off the async threads.
    let launched = tokio::task::spawn_blocking(move || {
        let dir = rdp_file_dir()?;
        let file = dir.path().join(format!("{instance_id}.rdp"));
        std::fs::write(&file, rdp_file_contents(&session))
            .map_err(|e| format!("could not write {}: {e}", file.display()))?;
        let launch = rdp_launch(&client, &session, &file).map_err(|e| e.to_string())?;
        let handover = hand_over_password(&launch, &session, &password);
        let child = spawn_rdp_client(&launch, Some(&password))
            .map_err(|e| format!("could not start {}: {e}", launch.program.to_string_lossy()))?;
        Ok::<_, String>((dir, child, launch, handover))
    })
    .await
    .map_err(|e| format!("could not start the RDP client: {e}"))
    .and_then(|launched| launched);
    let (dir, mut child, launch, handover) = match launched {
        Ok(launched) => launched,
        Err(error) => {
            shared.tunnels.close(tunnel);
            return Err(error);
        }
    };
    let said = handover.said.clone();
    // The .rdp file and a stored credential live as long as the client; the tunnel until its
    // connections end.
    tokio::task::spawn_blocking(move || {
        let _ = child.wait();
        drop(handover);
        drop(dir);
    });
    tokio::spawn(close_when_done(shared.clone(), tunnel));
    let mut text = format!(
        "RDP to {} as {} opened in {} on {addr}",
        host.display_name(),
        plan.user,
        launch.program.to_string_lossy()
    );
    if let Some(said) = said {
        text.push_str(&format!("; {said}"));
    }
    Ok(text)
}

/// The Windows password of `host`: `GetPasswordData` by the first profile that may call it,
/// decrypted with the key pair's private key from the OS keyring. "Not ready yet" is said
/// before the keyring is asked anything.
pub(super) async fn windows_password(
    shared: &Shared,
    host: &Host,
) -> Result<WindowsPassword, String> {
    let name = host.display_name();
    let key_pair = host.key_name.clone().ok_or_else(|| {
        PasswordError::NoKeyPair {
            instance: name.to_owned(),
        }
        .to_string()
    })?;
    let data = password_data(shared, host).await?;
    if data.trim().is_empty() {
        return Err(PasswordError::NotReady {
            instance: name.to_owned(),
        }
        .to_string());
    }
    let account = host.account_id.clone();
    let wanted = key_pair.clone();
    // The keyring talks to the session bus: off the async threads.
    let private_key = tokio::task::spawn_blocking(move || {
        KeyPairKeys::os().and_then(|keys| keys.private_key(&account, &wanted))
    })
    .await
    .map_err(|e| format!("could not read the OS keyring: {e}"))?
    .map_err(|e| e.to_string())?
    .ok_or_else(|| {
        format!(
            "no private key for key pair {key_pair} (account {}) is in the OS keyring; import \
             the .pem once with `bastionless keypair import {key_pair} --file {key_pair}.pem \
             --profile {}`",
            host.account_id, host.profile
        )
    })?;
    decrypt_password(&data, &private_key, name, &key_pair).map_err(|e| e.to_string())
}

/// `PasswordData` from the first of the host's profiles whose call succeeds.
async fn password_data(shared: &Shared, host: &Host) -> Result<String, String> {
    let catalog = shared.catalog.load_full().ok_or_else(|| {
        "the AWS profiles have not been read yet; wait for the host list and retry".to_owned()
    })?;
    let snapshot = shared.publisher.current();
    let mut first_error = None;
    for profile in snapshot
        .profiles_for(host)
        .filter_map(|name| catalog.get(name))
    {
        let sdk = match catalog.sdk_config(profile).await {
            Ok(sdk) => sdk
                .to_builder()
                .region(Region::new(host.region.clone()))
                .build(),
            Err(error) => {
                first_error.get_or_insert_with(|| format!("profile {}: {error}", profile.name));
                continue;
            }
        };
        match fetch_password_data(&aws_sdk_ec2::Client::new(&sdk), &host.instance_id).await {
            Ok(data) => return Ok(data),
            Err(error) => {
                first_error.get_or_insert_with(|| format!("profile {}: {error}", profile.name));
            }
        }
    }
    Err(first_error.unwrap_or_else(|| {
        format!(
            "{} is not in the host list of any usable profile; refresh, or check the instance id",
            host.instance_id
        )
    }))
}

fn host(shared: &Shared, key: &HostKey) -> Result<Host, String> {
    shared
        .publisher
        .current()
        .host(key)
        .cloned()
        .ok_or_else(|| format!("{key} is not in the host list; refresh and retry"))
}

/// A directory only this user can read, removed when dropped, for one `.rdp` file.
fn rdp_file_dir() -> Result<tempfile::TempDir, String> {
    tempfile::Builder::new()
        .prefix("bastionless-rdp-")
        .tempdir()
        .map_err(|e| format!("could not create a private directory for the .rdp file: {e}"))
}

impl Engine {
    /// The decrypted Windows password of `host` (see the module docs). For the CLI; not from
    /// the engine's runtime.
    pub fn windows_password_blocking(&self, host: &HostKey) -> Result<WindowsPassword, String> {
        let host = self::host(&self.shared, host)?;
        self.block_on(windows_password(&self.shared, &host))
    }
}
