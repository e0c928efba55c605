//! A simulator on a thread of its own, for callers without a tokio runtime: the app's
//! synchronous `--demo` start-up and GUI tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use anyhow::{Context as _, anyhow};
use tokio::sync::oneshot;

use crate::world::CallCounts;
use crate::{Scenario, SimOptions, Simulator};

/// A [`Simulator`] running on its own thread and tokio runtime. Dropping it stops the servers,
/// waits for the thread and removes the generated files.
#[derive(Debug)]
pub struct BackgroundSimulator {
    started: Started,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What the simulator thread reports once it is serving.
#[derive(Debug)]
struct Started {
    endpoint_url: String,
    tunnel_endpoint: String,
    config_file: PathBuf,
    credentials_file: PathBuf,
    ca_bundle: Option<PathBuf>,
    login_user: Option<String>,
    scenario: Arc<Scenario>,
    calls: CallCounts,
    key_pair_files: BTreeMap<String, PathBuf>,
    ssh_key_pair_files: BTreeMap<String, PathBuf>,
    /// Windows instances' passwords, by instance id.
    windows_passwords: BTreeMap<String, String>,
}

impl BackgroundSimulator {
    /// Starts the simulator with the default options (TLS, real time) and returns once it is
    /// accepting requests.
    pub fn start(scenario: Scenario) -> anyhow::Result<BackgroundSimulator> {
        BackgroundSimulator::start_with(scenario, SimOptions::default())
    }

    /// Starts the simulator with `options` and returns once it is accepting requests.
    pub fn start_with(
        scenario: Scenario,
        options: SimOptions,
    ) -> anyhow::Result<BackgroundSimulator> {
        let (started_tx, started_rx) = mpsc::channel::<anyhow::Result<Started>>();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("bastionless-sim".to_owned())
            .spawn(move || {
                // Two workers: tunnels pump bytes while the control plane keeps answering.
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = started_tx
                            .send(Err(anyhow!(error).context("cannot start a tokio runtime")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let simulator = match Simulator::start_with(scenario, options).await {
                        Ok(simulator) => simulator,
                        Err(error) => {
                            let _ = started_tx.send(Err(error));
                            return;
                        }
                    };
                    let _ = started_tx.send(Ok(Started {
                        endpoint_url: simulator.endpoint_url(),
                        tunnel_endpoint: simulator.tunnel_endpoint().to_owned(),
                        config_file: simulator.config_file().to_owned(),
                        credentials_file: simulator.credentials_file().to_owned(),
                        ca_bundle: simulator.ca_bundle().map(Path::to_owned),
                        login_user: simulator.login_user().map(str::to_owned),
                        scenario: Arc::clone(&simulator.world.scenario),
                        calls: simulator.world.calls.clone(),
                        key_pair_files: simulator.key_pair_files.clone(),
                        ssh_key_pair_files: simulator.ssh_key_pair_files.clone(),
                        windows_passwords: simulator
                            .world
                            .scenario
                            .instances
                            .iter()
                            .filter_map(|instance| {
                                let password = simulator.windows_password(&instance.instance_id)?;
                                Some((instance.instance_id.clone(), password.to_owned()))
                            })
                            .collect(),
                    }));
                    // Serve until told to stop, or until the handle is dropped.
                    let _ = stopped.await;
                    simulator.shutdown().await;
                });
            })
            .context("cannot spawn the simulator thread")?;
        let started = started_rx
            .recv()
            .context("the simulator thread ended before it started serving")??;
        Ok(BackgroundSimulator {
            started,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `https://127.0.0.1:PORT`, the `endpoint_url` of every generated profile.
    pub fn endpoint_url(&self) -> String {
        self.started.endpoint_url.clone()
    }

    /// The EC2 Instance Connect Endpoint listener, as every endpoint's `DnsName` reports it.
    pub fn tunnel_endpoint(&self) -> &str {
        &self.started.tunnel_endpoint
    }

    /// The generated AWS config file (`AWS_CONFIG_FILE`).
    pub fn config_file(&self) -> &Path {
        &self.started.config_file
    }

    /// The generated AWS credentials file (`AWS_SHARED_CREDENTIALS_FILE`).
    pub fn credentials_file(&self) -> &Path {
        &self.started.credentials_file
    }

    /// The CA certificate to trust, when serving TLS.
    pub fn ca_bundle(&self) -> Option<&Path> {
        self.started.ca_bundle.as_deref()
    }

    /// The environment that points an AWS SDK or CLI at this simulator.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        crate::env_vars(
            &self.started.config_file,
            &self.started.credentials_file,
            self.ca_bundle(),
        )
    }

    /// The local user the sshd backends log in, when OpenSSH is installed.
    pub fn login_user(&self) -> Option<&str> {
        self.started.login_user.as_deref()
    }

    /// The scenario being simulated, as served.
    pub fn scenario(&self) -> &Scenario {
        &self.started.scenario
    }

    /// The private key file of a key pair (see [`Simulator::key_pair_file`]).
    pub fn key_pair_file(&self, name: &str) -> Option<&Path> {
        self.started.key_pair_files.get(name).map(PathBuf::as_path)
    }

    /// The private key file of a Linux instances' key pair (see
    /// [`Simulator::ssh_key_pair_file`]).
    pub fn ssh_key_pair_file(&self, name: &str) -> Option<&Path> {
        self.started
            .ssh_key_pair_files
            .get(name)
            .map(PathBuf::as_path)
    }

    /// A Windows instance's password in the clear (see [`Simulator::windows_password`]).
    pub fn windows_password(&self, instance_id: &str) -> Option<&str> {
        self.started
            .windows_passwords
            .get(instance_id)
            .map(String::as_str)
    }

    /// How many authenticated calls of `action` the simulator has answered (see
    /// [`Simulator::calls`]).
    pub fn calls(&self, action: &str) -> u64 {
        self.started.calls.get(action)
    }
}

impl Drop for BackgroundSimulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the simulator thread panicked");
        }
    }
}
