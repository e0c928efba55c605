//! `bastionless-sim`: a faithful AWS stand-in on loopback.
//!
//! The app's `--demo` mode and every end-to-end test run against it. It speaks the real wire
//! protocols — EC2 query/XML, STS `awsQuery`, EC2 Instance Connect and Systems Manager JSON,
//! the EC2 Instance Connect Endpoint `openTunnel` WebSocket and the Session Manager data
//! channel with an SSM Agent behind it — over HTTPS/WSS on `127.0.0.1` with a CA made for the
//! run, verifies SigV4 on every request with its own implementation, and writes AWS config and
//! credentials files whose profiles carry `endpoint_url` and `ca_bundle`, so an unmodified SDK
//! talks to it. Tunnels and sessions reach real local services: a real OpenSSH `sshd` per
//! instance whose authorized keys are the ones pushed with `SendSSHPublicKey`, and `/bin/sh` on
//! a pseudo-terminal for shell sessions. Passing against it should mean working against AWS.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use bastionless_sim::{Scenario, Simulator};
//! let sim = Simulator::start(Scenario::demo()).await?;
//! for (name, value) in sim.env_vars() {
//!     println!("export {name}={value}");
//! }
//! # Ok(()) }
//! ```
//!
//! What a simulated AWS contains comes from a [`Scenario`]; how it runs (TLS or plain text, a
//! fast clock for expiry tests) from [`SimOptions`]; [`BackgroundSimulator`] runs one on its own
//! thread for synchronous callers.

mod auth;
mod background;
mod clock;
mod ec2;
mod eic;
mod error;
mod faults;
mod iam;
mod instance_connect;
mod key_pairs;
mod kms;
mod listener;
mod query;
pub mod scenario;
mod server;
mod service;
mod shared_config;
mod sigv4;
mod sshd;
mod ssm;
mod sso;
mod sts;
mod temporary_credentials;
mod tls;
mod world;
mod xml;
#[cfg(unix)]
pub mod xrdp;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

pub use background::BackgroundSimulator;
pub use clock::Clock;
pub use faults::FaultRule;
pub use scenario::Scenario;
pub use ssm::SessionState;
pub use ssm::link_faults::DataChannelFaults;
pub use world::SignedCall;

use listener::Listener;
use scenario::Backend;
use shared_config::SharedConfigFiles;
use sshd::SshdHarness;
use tls::TlsMaterial;
use world::{EndpointNames, World};

/// The instance tag that names the OS user to log in as: a Bastionless convention, set by the
/// simulator on instances whose port 22 is a real sshd (which can only log in a local user).
pub const LOGIN_USER_TAG: &str = "bastionless:user";

/// How a simulator runs.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Serve HTTPS and WSS with a CA made for the run (the default), or plain HTTP and WS.
    /// Plain text exists for loopback debugging with tools that cannot take a CA bundle; the
    /// product accepts it only for loopback addresses.
    pub tls: bool,
    /// The clock AWS-side lifetimes run on: pushed keys (60 s), `maxTunnelDuration`, Session
    /// Manager timeouts and rotation, and temporary credentials.
    pub clock: Clock,
    /// Whether the SSM agent paces its output as the real one does — messages of at most
    /// 1024 bytes, 1 ms apart, about 1 MB/s (the default) — or sends as fast as acknowledgements
    /// allow (for tests that move a lot of data).
    pub agent_pacing: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            tls: true,
            clock: Clock::real(),
            agent_pacing: true,
        }
    }
}

impl SimOptions {
    /// Plain HTTP and WS instead of TLS.
    pub fn plain_text(mut self) -> Self {
        self.tls = false;
        self
    }

    /// Runs AWS-side lifetimes on `clock`.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Turns the SSM agent's output pacing on or off.
    pub fn agent_pacing(mut self, pacing: bool) -> Self {
        self.agent_pacing = pacing;
        self
    }
}

/// A running simulator on the current tokio runtime. Dropping it stops the servers, kills the
/// sshd servers it started and removes the generated files.
#[derive(Debug)]
pub struct Simulator {
    world: Arc<World>,
    control_plane: Listener,
    tunnels: Listener,
    data_channel: Listener,
    tls: bool,
    files: SharedConfigFiles,
    /// The private key of each key pair a Windows instance uses, by key pair name.
    key_pair_files: BTreeMap<String, PathBuf>,
    /// The private key of each key pair a Linux instance uses, by key pair name.
    ssh_key_pair_files: BTreeMap<String, PathBuf>,
}

impl Simulator {
    /// [`Simulator::start_with`] the default options: TLS, real time.
    pub async fn start(scenario: Scenario) -> anyhow::Result<Simulator> {
        Simulator::start_with(scenario, SimOptions::default()).await
    }

    /// Validates `scenario`, binds three ports on `127.0.0.1` (the control plane, the EC2
    /// Instance Connect Endpoint and the SSM data channel), and writes the AWS config,
    /// credentials and CA bundle into a private temporary directory.
    pub async fn start_with(
        mut scenario: Scenario,
        options: SimOptions,
    ) -> anyhow::Result<Simulator> {
        // The caller may have changed the lists since loading.
        scenario.reindex();
        scenario.validate()?;
        let files =
            SharedConfigFiles::create().context("cannot create the simulator's directory")?;
        let sshd = SshdHarness::detect(files.dir().join("sshd"));
        advertise_login_user(&mut scenario, &sshd);
        let tls = options
            .tls
            .then(TlsMaterial::generate)
            .transpose()
            .context("cannot make the simulator's TLS certificates")?;

        let control_listener = listener::bind()
            .await
            .context("cannot bind the control plane on 127.0.0.1")?;
        let tunnel_listener = listener::bind()
            .await
            .context("cannot bind the EC2 Instance Connect Endpoint on 127.0.0.1")?;
        let data_channel_listener = listener::bind()
            .await
            .context("cannot bind the SSM data channel on 127.0.0.1")?;
        let control_addr = control_listener.local_addr()?;
        let tunnel_addr = tunnel_listener.local_addr()?;
        let endpoint_names = endpoint_names(tunnel_addr, options.tls);
        let sessions = ssm::SessionManager::new(
            data_channel_base(data_channel_listener.local_addr()?, options.tls),
            session_preferences(&scenario, &options),
        );
        let world = Arc::new(World::new(
            Arc::new(scenario),
            endpoint_names,
            options.clock,
            sshd,
            sessions,
        ));
        let acceptor = tls.as_ref().map(TlsMaterial::acceptor);
        let control_plane = server::serve(control_listener, acceptor.clone(), Arc::clone(&world))?;
        let tunnels = eic::serve(tunnel_listener, acceptor.clone(), Arc::clone(&world))?;
        let data_channel =
            ssm::data_channel::serve(data_channel_listener, acceptor, Arc::clone(&world))?;
        let endpoint_url = endpoint_url(control_addr, options.tls);
        world.sso.set_base_url(endpoint_url.clone());
        let mut files = files;
        files
            .write(
                &world.scenario,
                &endpoint_url,
                tls.as_ref().map(TlsMaterial::ca_pem),
            )
            .context("cannot write the simulator's AWS config files")?;
        let key_pair_files = world
            .passwords
            .write_key_files(&files.dir().join("key-pairs"))
            .context("cannot write the simulator's key pair files")?;
        let ssh_key_pairs = key_pairs::SshKeyPairs::for_scenario(
            &world.scenario,
            &world.passwords,
            &key_pair_files,
            &files.dir().join("key-pairs"),
        )
        .context("cannot write the simulator's Linux key pair files")?;
        for instance in &world.scenario.instances {
            let key = instance
                .key_name
                .as_deref()
                .and_then(|name| ssh_key_pairs.public_key(name));
            if let Some(key) = key {
                world.sshd.authorize_key_pair(&instance.instance_id, key);
            }
        }
        Ok(Simulator {
            world,
            control_plane,
            tunnels,
            data_channel,
            tls: options.tls,
            files,
            key_pair_files,
            ssh_key_pair_files: ssh_key_pairs.files().clone(),
        })
    }

    /// `https://127.0.0.1:PORT` (or `http://…` in plain text), the `endpoint_url` of every
    /// generated profile.
    pub fn endpoint_url(&self) -> String {
        endpoint_url(self.control_plane.local_addr(), self.tls)
    }

    /// The EC2 Instance Connect Endpoint listener, as every endpoint's `DnsName` reports it.
    pub fn tunnel_endpoint(&self) -> &str {
        &self.world.endpoint_names.dns_name
    }

    /// The generated AWS config file (`AWS_CONFIG_FILE`).
    pub fn config_file(&self) -> &Path {
        self.files.config_file()
    }

    /// The generated AWS credentials file (`AWS_SHARED_CREDENTIALS_FILE`).
    pub fn credentials_file(&self) -> &Path {
        self.files.credentials_file()
    }

    /// The CA certificate (PEM) to trust, when serving TLS: `ca_bundle` in every generated
    /// profile and `AWS_CA_BUNDLE` in [`Simulator::env_vars`].
    pub fn ca_bundle(&self) -> Option<&Path> {
        self.files.ca_bundle()
    }

    /// The private key (PEM, PKCS#1, mode 0600) of the key pair `name` that Windows instances
    /// were launched with, as a user keeps the `.pem` file EC2 gave them: what decrypts
    /// `GetPasswordData`. `None` for a name no Windows instance uses.
    pub fn key_pair_file(&self, name: &str) -> Option<&Path> {
        self.key_pair_files.get(name).map(PathBuf::as_path)
    }

    /// The private key file of the key pair `name` that Linux instances were launched with, as
    /// the user keeps it: their sshd accepts it for the login user, as EC2 puts the key pair in
    /// the default user's `authorized_keys`. Ed25519 in OpenSSH's format, or the RSA `.pem` when
    /// a Windows instance uses the same key pair. `None` for a name no Linux instance uses.
    pub fn ssh_key_pair_file(&self, name: &str) -> Option<&Path> {
        self.ssh_key_pair_files.get(name).map(PathBuf::as_path)
    }

    /// Every key pair file ([`Simulator::key_pair_file`]), by key pair name.
    pub fn key_pair_files(&self) -> impl Iterator<Item = (&str, &Path)> {
        self.key_pair_files
            .iter()
            .map(|(name, path)| (name.as_str(), path.as_path()))
    }

    /// The Administrator password of a Windows instance, in the clear: what a test expects
    /// `GetPasswordData` to decrypt to, and what an RDP server behind the instance should take.
    pub fn windows_password(&self, instance_id: &str) -> Option<&str> {
        self.world.passwords.password(instance_id)
    }

    /// The environment that points an AWS SDK or CLI at this simulator.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        env_vars(
            self.config_file(),
            self.credentials_file(),
            self.ca_bundle(),
        )
    }

    /// The scenario being simulated, as served: with the `bastionless:user` tags added.
    pub fn scenario(&self) -> &Scenario {
        &self.world.scenario
    }

    /// The clock AWS-side lifetimes run on.
    pub fn clock(&self) -> Clock {
        self.world.clock
    }

    /// The local user the sshd backends log in (also the `bastionless:user` tag), or `None`
    /// when OpenSSH is not installed here.
    pub fn login_user(&self) -> Option<&str> {
        self.world.sshd.login_user()
    }

    /// Makes the next `calls` calls of `action` (`SendSSHPublicKey`, `DescribeInstances`, …)
    /// fail with the service's throttling error.
    pub fn throttle(&self, action: &str, calls: u32) {
        self.world.faults.throttle(action, calls);
    }

    /// Adds a fault rule (latency, throttling, 5xx or dropped connections at a rate) for the
    /// calls it names, from the next call on.
    pub fn inject(&self, rule: FaultRule) {
        self.world.faults.inject(rule);
    }

    /// Removes every fault rule, the scenario's too, and pending throttling.
    pub fn clear_faults(&self) {
        self.world.faults.clear();
    }

    /// From now on, requests signed with `profile`'s credentials fail as expired
    /// (`ExpiredToken`), as when a session token runs out, until [`Simulator::renew_credentials`].
    pub fn expire_credentials(&self, profile: &str) {
        self.world.faults.expire_credentials(profile);
    }

    /// Sets message-level faults (loss, duplicates, reordering) on every Session Manager data
    /// channel, both directions, from the next message on; `DataChannelFaults::default()` ends
    /// them.
    pub fn set_data_channel_faults(&self, faults: DataChannelFaults) {
        self.world.faults.set_data_channel(faults);
    }

    /// Cuts every EIC tunnel open through `endpoint_id` without a Close frame, as a network
    /// failure would; returns how many were open.
    pub fn cut_tunnels(&self, endpoint_id: &str) -> usize {
        let open = self.world.tunnels.count(endpoint_id);
        self.world.faults.cut_tunnels(endpoint_id);
        open
    }

    /// Undoes [`Simulator::expire_credentials`].
    pub fn renew_credentials(&self, profile: &str) {
        self.world.faults.renew_credentials(profile);
    }

    /// The current six-digit code of the MFA device `serial` (a profile's `mfa.serial`), as
    /// the user's authenticator app shows it; `None` for a device the scenario does not have.
    pub fn mfa_code(&self, serial: &str) -> Option<String> {
        let device = self.world.scenario.mfa_owner(serial)?.mfa.as_ref()?;
        Some(sts::totp(&device.secret, chrono::Utc::now().timestamp()))
    }

    /// Approves the SSO device authorization showing `user_code`, as the signed-in user does in
    /// the browser. Returns whether such a request was pending.
    pub fn approve_sso_device(&self, user_code: &str) -> bool {
        self.world.sso.approve(user_code)
    }

    /// The SSO user codes waiting for approval.
    pub fn pending_sso_user_codes(&self) -> Vec<String> {
        self.world.sso.pending_user_codes()
    }

    /// Ends every session of the SSO instance `name` (its access and refresh tokens stop
    /// working), so the next use needs a new sign-in.
    pub fn sign_out_sso(&self, name: &str) {
        self.world.sso.sign_out(name);
    }

    /// Makes the access tokens of the SSO instance `name` expire now; refresh tokens still work.
    pub fn expire_sso_access_tokens(&self, name: &str) {
        self.world.sso.expire_access_tokens(name);
    }

    /// How many authenticated calls of `action` (`DescribeInstances`, `GetCallerIdentity`, …)
    /// the simulator has answered, throttled ones included.
    pub fn calls(&self, action: &str) -> u64 {
        self.world.calls.get(action)
    }

    /// The most recent authenticated calls of `action`, oldest first, with the credentials
    /// that signed each (as CloudTrail shows them).
    pub fn signed_calls(&self, action: &str) -> Vec<SignedCall> {
        self.world.trail.of(action)
    }

    /// The keys pushed with `SendSSHPublicKey` that authorize `os_user` on `instance_id` now.
    pub fn pushed_keys(&self, instance_id: &str, os_user: &str) -> Vec<String> {
        self.world
            .keys
            .valid(instance_id, os_user, self.world.clock.now())
    }

    /// How many tunnels `endpoint_id` carries now.
    pub fn open_tunnels(&self, endpoint_id: &str) -> usize {
        self.world.tunnels.count(endpoint_id)
    }

    /// Where a Session Manager session stands (`None` for an id StartSession never returned).
    pub fn ssm_session(&self, session_id: &str) -> Option<SessionState> {
        self.world.ssm.state(session_id)
    }

    /// The id of every Session Manager session StartSession has granted, in no particular
    /// order (for a test that cuts a session it did not start itself).
    pub fn ssm_session_ids(&self) -> Vec<String> {
        self.world.ssm.ids()
    }

    /// Drops a session's data-channel WebSocket without a Close frame, as a network failure
    /// does (fault injection). The session lives on for the client to resume. Returns whether
    /// a client was connected.
    pub fn cut_data_channel(&self, session_id: &str) -> bool {
        self.world.ssm.cut(session_id)
    }

    /// Stops serving, closes tunnels and waits for in-flight requests, then stops the sshd
    /// servers and removes the generated files.
    pub async fn shutdown(self) {
        self.control_plane.stop().await;
        self.tunnels.stop().await;
        self.data_channel.stop().await;
        self.world.sshd.stop();
    }
}

/// Tags every instance whose port 22 is a real sshd with the local user it logs in, unless the
/// scenario names a user itself. Without OpenSSH there is no such user to name.
fn advertise_login_user(scenario: &mut Scenario, sshd: &SshdHarness) {
    let Some(user) = sshd.login_user() else {
        if scenario
            .instances
            .iter()
            .any(|instance| instance.backends.iter().any(|(_, b)| b == Backend::Sshd))
        {
            tracing::warn!(
                "instances have sshd backends, but they will refuse connections: OpenSSH's sshd is not available here"
            );
        }
        return;
    };
    for instance in &mut scenario.instances {
        if instance.backends.iter().any(|(_, b)| b == Backend::Sshd) {
            instance
                .tags
                .entry(LOGIN_USER_TAG.to_owned())
                .or_insert_with(|| user.to_owned());
        }
    }
}

/// `wss://127.0.0.1:PORT` (or `ws://…`): the start of every StreamUrl.
fn data_channel_base(address: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "wss" } else { "ws" };
    format!("{scheme}://{address}")
}

/// The scenario's Session Manager preferences, and the agent pacing the options ask for.
fn session_preferences(scenario: &Scenario, options: &SimOptions) -> ssm::Preferences {
    let minutes = |m: u32| chrono::TimeDelta::minutes(i64::from(m));
    let preferences = &scenario.session_manager;
    ssm::Preferences {
        idle_timeout: minutes(preferences.idle_session_timeout_minutes),
        max_duration: preferences.max_session_duration_minutes.map(minutes),
        pacing: options.agent_pacing,
    }
}

fn endpoint_url(address: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{address}")
}

/// The endpoint names for a tunnel listener at `address`: `127.0.0.1:PORT`, and
/// `localhost:PORT` as the FIPS name (the certificate covers both). In plain text the names
/// carry `ws://`, the only way to tell a client not to use TLS.
fn endpoint_names(address: SocketAddr, tls: bool) -> EndpointNames {
    let scheme = if tls { "" } else { "ws://" };
    EndpointNames {
        dns_name: format!("{scheme}{address}"),
        fips_dns_name: format!("{scheme}localhost:{}", address.port()),
    }
}

fn env_vars(
    config_file: &Path,
    credentials_file: &Path,
    ca_bundle: Option<&Path>,
) -> Vec<(String, String)> {
    let mut vars = vec![
        (
            "AWS_CONFIG_FILE".to_owned(),
            config_file.display().to_string(),
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE".to_owned(),
            credentials_file.display().to_string(),
        ),
        // No instance metadata service exists here; don't let an SDK wait for one.
        ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
    ];
    if let Some(bundle) = ca_bundle {
        // For tools that read the bundle only from the environment (boto3, AWS CLI v1).
        vars.push(("AWS_CA_BUNDLE".to_owned(), bundle.display().to_string()));
    }
    vars
}
