//! Session Manager port forwarding through the product's session driver, against the
//! simulator's agent with its real pacing (messages of at most 1024 bytes, 1 ms apart).
//!
//! ```sh
//! cargo bench -p bastionless-sim --bench ssm_throughput -- [--bytes 8M] [--echoes 200] \
//!     [--plugin /path/to/session-manager-plugin]
//! ```
//!
//! What it measures, each against its ceiling:
//! - **download**: one connection reading N bytes the instance's port sends. Ceiling: the
//!   agent's pacing, 1024 bytes per millisecond (1 024 000 B/s).
//! - **upload**: one connection writing N bytes to the instance. Ceiling: the product's own
//!   pacing within the service's message-rate limit, 900 messages/s of 1024 bytes
//!   (921 600 B/s).
//! - **parallel**: four connections each downloading N/4 bytes at once, through a
//!   [`PortSessionPool`] of four sessions and through one session; the pool should come close
//!   to four times one session's rate.
//! - **keystroke round trip**: one byte out and its echo back, one after the other, through a
//!   session, against the same echo over plain loopback TCP: the latency Session Manager adds.
//! - **client CPU**: CPU seconds per MB of the product's side (the client runtime's threads:
//!   driver, mux, WebSocket, TLS), while the simulator's relay and agent run on the other.
//!
//! With `--plugin`, the same run then measures the official session-manager-plugin the same
//! way (download, upload, keystroke round trip, its process's CPU per MB), driven as the AWS
//! CLI drives it: StartSession with `AWS-StartPortForwardingSession`, then the plugin started
//! with the response, region, profile, request and endpoint as arguments, listening on a local
//! port; its lines are prefixed `plugin_`. Build it from source (docs/benchmarks.md); the
//! simulator's tokens in its argv are the plugin's interface, not the product's.
//!
//! One line per measurement on stdout, `name=value` pairs.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bastionless_core::eic::ConnectOptions;
use bastionless_core::ssm::session::{
    DataChannelConnector, PortSession, PortSessionPool, SessionConfig, SsmSessionApi,
};
use bastionless_sim::{Scenario, SimOptions, Simulator};
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use support::{Cpu, INSTANCE_ID, PROFILE, REGION, process_cpu, runtime, scenario_toml};

/// The SDK clients the integration tests make: from the simulator's generated files, trusting
/// only its CA.
#[path = "../tests/support/mod.rs"]
mod sdk;

const DEFAULT_BYTES: usize = 8 << 20;
const DEFAULT_ECHOES: usize = 200;
/// The agent's pacing ceiling, bytes per second (spec §9).
const DOWNLOAD_CEILING: f64 = 1024.0 * 1000.0;
/// The product's upload pacing ceiling, bytes per second.
const UPLOAD_CEILING: f64 = 1024.0 * 900.0;
const PARALLEL: usize = 4;
const MB: f64 = 1_000_000.0;
const PATIENCE: Duration = Duration::from_secs(900);

/// What the instance's port does with each connection, chosen by its first byte.
const SEND_TO_CLIENT: u8 = b'S';
const DISCARD: u8 = b'D';
const ECHO: u8 = b'E';

struct Args {
    bytes: usize,
    echoes: usize,
    /// An official session-manager-plugin binary to measure after the product.
    plugin: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        bytes: DEFAULT_BYTES,
        echoes: DEFAULT_ECHOES,
        plugin: None,
    };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        let mut value = || given.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--bytes" => args.bytes = parse_size(&value()?)?,
            "--echoes" => {
                args.echoes = value()?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("--echoes: a count above 0")?;
            }
            "--plugin" => args.plugin = Some(PathBuf::from(value()?)),
            "--bench" => {}
            other => return Err(format!("unexpected argument `{other}`")),
        }
    }
    Ok(args)
}

/// `8388608`, `8M`, `512K`.
fn parse_size(text: &str) -> Result<usize, String> {
    let (digits, unit) = match text.chars().last() {
        Some('K' | 'k') => (&text[..text.len() - 1], 1 << 10),
        Some('M' | 'm') => (&text[..text.len() - 1], 1 << 20),
        _ => (text, 1),
    };
    digits
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .map(|n| n * unit)
        .ok_or_else(|| format!("--bytes {text}: expected a size such as 8M"))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("ssm_throughput: {error}");
            return ExitCode::from(2);
        }
    };
    let client = runtime("bench-client");
    let server = runtime("bench-server");
    let server_handle = server.handle().clone();
    let result = client.block_on(async move {
        tokio::spawn(async move { measure(&server_handle, &args).await })
            .await
            .unwrap_or_else(|e| Err(format!("the benchmark task failed: {e}")))
    });
    client.shutdown_timeout(Duration::from_secs(2));
    server.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ssm_throughput: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn measure(server_rt: &tokio::runtime::Handle, args: &Args) -> Result<(), String> {
    // The instance's port: on the server runtime, so its work is not counted as the client's.
    let listener = server_rt
        .spawn(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot bind the instance's port: {e}"))?;
    let backend = listener.local_addr().map_err(|e| e.to_string())?;
    server_rt.spawn(instance_port(listener, args.bytes));

    let scenario = Scenario::from_toml_str(&scenario_toml(backend))
        .map_err(|e| format!("the benchmark scenario: {e}"))?;
    let sim = server_rt
        .spawn(Simulator::start_with(scenario, SimOptions::default()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("the simulator did not start: {e:#}"))?;
    let api = Arc::new(SsmSessionApi::new(&sdk::sdk_config(&sim, PROFILE).await));
    let config = session_config(&sim)?;

    // One connection each way.
    let session = PortSession::start(Arc::clone(&api), INSTANCE_ID, 22, None, config.clone())
        .await
        .map_err(|e| format!("the session did not start: {e}"))?;
    let (seconds, cpu) = timed(download(&session, args.bytes)).await?;
    report("download", args.bytes, seconds, cpu, DOWNLOAD_CEILING);
    let (seconds, cpu) = timed(upload(&session, args.bytes)).await?;
    report("upload", args.bytes, seconds, cpu, UPLOAD_CEILING);

    // Keystrokes: through the session, then plain TCP to the same port.
    let through_session =
        echo_round_trips(session.open_stream().await.map_err(s)?, args.echoes).await?;
    let direct =
        echo_round_trips(TcpStream::connect(backend).await.map_err(s)?, args.echoes).await?;
    println!(
        "keystroke_rtt_ms_median={:.2} p90={:.2} direct_tcp_ms_median={:.3} added_ms={:.2} echoes={}",
        percentile(&through_session, 0.5),
        percentile(&through_session, 0.9),
        percentile(&direct, 0.5),
        percentile(&through_session, 0.5) - percentile(&direct, 0.5),
        args.echoes,
    );

    // Four downloads at once: all on the one session, then spread by a pool of four.
    let share = args.bytes / PARALLEL;
    let (one_session, _) = timed(async {
        let streams =
            futures_util::future::try_join_all((0..PARALLEL).map(|_| session.open_stream()))
                .await
                .map_err(s)?;
        drain_all(streams, share).await
    })
    .await?;
    session.close().await.map_err(s)?;
    let pool = PortSessionPool::new(
        Arc::clone(&api),
        INSTANCE_ID,
        22,
        None,
        config,
        NonZeroUsize::new(PARALLEL).expect("four"),
    );
    let (pooled, _) = timed(async {
        let mut streams = Vec::new();
        for _ in 0..PARALLEL {
            streams.push(pool.open_stream().await.map_err(|e| e.to_string())?);
        }
        drain_all(streams, share).await
    })
    .await?;
    let total = (share * PARALLEL) as f64;
    println!(
        "parallel connections={PARALLEL} one_session_mb_per_s={:.3} pool_mb_per_s={:.3} pool_speedup={:.2}",
        total / one_session / MB,
        total / pooled / MB,
        one_session / pooled,
    );
    pool.close().await.map_err(s)?;
    if let Some(plugin) = &args.plugin {
        measure_plugin(plugin, &sim, args, backend).await?;
    }
    Ok(())
}

/// The official plugin, measured like the product above: one connection each way through its
/// local listener, then keystrokes. Its CPU is its own process's; the simulator's is ours.
async fn measure_plugin(
    plugin: &Path,
    sim: &Simulator,
    args: &Args,
    backend: SocketAddr,
) -> Result<(), String> {
    let running = OfficialPlugin::start(plugin, sim).await?;
    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, running.local_port));
    let (seconds, cpu) = running
        .timed(async {
            let stream = TcpStream::connect(local).await.map_err(s)?;
            drain_all(vec![stream], args.bytes).await
        })
        .await?;
    report(
        "plugin_download",
        args.bytes,
        seconds,
        cpu,
        DOWNLOAD_CEILING,
    );
    let (seconds, cpu) = running
        .timed(async {
            let stream = TcpStream::connect(local).await.map_err(s)?;
            upload_to(stream, args.bytes).await
        })
        .await?;
    // The plugin's own pacing (1 ms per message) is its ceiling; the product's is reported
    // for comparison.
    report("plugin_upload", args.bytes, seconds, cpu, UPLOAD_CEILING);
    let through_plugin =
        echo_round_trips(TcpStream::connect(local).await.map_err(s)?, args.echoes).await?;
    let direct =
        echo_round_trips(TcpStream::connect(backend).await.map_err(s)?, args.echoes).await?;
    println!(
        "plugin_keystroke_rtt_ms_median={:.2} p90={:.2} direct_tcp_ms_median={:.3} added_ms={:.2} echoes={}",
        percentile(&through_plugin, 0.5),
        percentile(&through_plugin, 0.9),
        percentile(&direct, 0.5),
        percentile(&through_plugin, 0.5) - percentile(&direct, 0.5),
        args.echoes,
    );
    running.stop(sim).await
}

/// A running session-manager-plugin with its port-forwarding session.
struct OfficialPlugin {
    child: tokio::process::Child,
    pid: u32,
    session_id: String,
    local_port: u16,
}

impl OfficialPlugin {
    /// Starts a session and the plugin for it, as `aws ssm start-session` does, and waits
    /// until it listens.
    async fn start(plugin: &Path, sim: &Simulator) -> Result<OfficialPlugin, String> {
        const DOCUMENT: &str = "AWS-StartPortForwardingSession";
        let local_port = {
            let probe = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(s)?;
            probe.local_addr().map_err(s)?.port()
        };
        let ssm = aws_sdk_ssm::Client::new(&sdk::sdk_config(sim, PROFILE).await);
        let started = ssm
            .start_session()
            .target(INSTANCE_ID)
            .document_name(DOCUMENT)
            .parameters("portNumber", vec!["22".to_owned()])
            .parameters("localPortNumber", vec![local_port.to_string()])
            .send()
            .await
            .map_err(|e| format!("StartSession for the plugin: {e:?}"))?;
        let session_id = started.session_id().unwrap_or_default().to_owned();
        let response = json!({
            "SessionId": session_id,
            "TokenValue": started.token_value(),
            "StreamUrl": started.stream_url(),
        });
        let request = json!({
            "Target": INSTANCE_ID,
            "DocumentName": DOCUMENT,
            "Parameters": {"portNumber": ["22"], "localPortNumber": [local_port.to_string()]},
        });
        let mut command = tokio::process::Command::new(plugin);
        command
            .arg(response.to_string())
            .arg(REGION)
            .arg("StartSession")
            .arg(PROFILE)
            .arg(request.to_string())
            .arg(sim.endpoint_url())
            .envs(sim.env_vars())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true);
        // Go reads extra roots for the data channel's TLS from here (the SDK part reads
        // AWS_CA_BUNDLE).
        if let Some(ca) = sim.ca_bundle() {
            command.env("SSL_CERT_FILE", ca);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", plugin.display()))?;
        let pid = child.id().ok_or("the plugin exited at once")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let listening = async {
            while let Some(line) = lines.next_line().await.map_err(s)? {
                if line.contains("Waiting for connections") {
                    return Ok(());
                }
            }
            Err("the plugin ended before it listened".to_owned())
        };
        tokio::time::timeout(Duration::from_secs(30), listening)
            .await
            .map_err(|_| "the plugin did not listen within 30 s".to_owned())??;
        // Keep reading its output so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(OfficialPlugin {
            child,
            pid,
            session_id,
            local_port,
        })
    }

    /// Like [`timed`], with the plugin process's CPU as the client's and this process's (the
    /// simulator) as the server's.
    async fn timed(
        &self,
        work: impl std::future::Future<Output = Result<(), String>>,
    ) -> Result<(f64, Cpu), String> {
        let plugin_before = process_cpu(self.pid).unwrap_or(f64::NAN);
        let ours_before = Cpu::now();
        let started = Instant::now();
        tokio::time::timeout(PATIENCE, work)
            .await
            .map_err(|_| format!("no end within {PATIENCE:?}"))??;
        let seconds = started.elapsed().as_secs_f64();
        let ours = Cpu::now().since(ours_before).process;
        let plugin = process_cpu(self.pid).unwrap_or(f64::NAN) - plugin_before;
        Ok((
            seconds,
            Cpu {
                process: ours,
                client: plugin,
                server: ours,
            },
        ))
    }

    /// Ends the session through the API (the plugin has no way to be told) and the plugin.
    async fn stop(mut self, sim: &Simulator) -> Result<(), String> {
        let ssm = aws_sdk_ssm::Client::new(&sdk::sdk_config(sim, PROFILE).await);
        ssm.terminate_session()
            .session_id(&self.session_id)
            .send()
            .await
            .map_err(|e| format!("TerminateSession: {e:?}"))?;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        let _ = self.child.kill().await;
        Ok(())
    }
}

fn s(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Runs `work` and measures its wall time and the CPU it and everything else used meanwhile.
async fn timed(
    work: impl std::future::Future<Output = Result<(), String>>,
) -> Result<(f64, Cpu), String> {
    let cpu = Cpu::now();
    let started = Instant::now();
    tokio::time::timeout(PATIENCE, work)
        .await
        .map_err(|_| format!("no end within {PATIENCE:?}"))??;
    Ok((started.elapsed().as_secs_f64(), Cpu::now().since(cpu)))
}

fn report(name: &str, bytes: usize, seconds: f64, cpu: Cpu, ceiling: f64) {
    let rate = bytes as f64 / seconds;
    println!(
        "{name} bytes={bytes} seconds={seconds:.2} mb_per_s={:.3} of_ceiling={:.3} client_cpu_s_per_mb={:.4} server_cpu_s_per_mb={:.4}",
        rate / MB,
        rate / ceiling,
        cpu.client / (bytes as f64 / MB),
        cpu.server / (bytes as f64 / MB),
    );
}

/// Reads `bytes` the instance sends on a new stream.
async fn download(session: &PortSession, bytes: usize) -> Result<(), String> {
    let stream = session.open_stream().await.map_err(s)?;
    drain_all(vec![stream], bytes).await
}

/// Asks each stream's instance side for `bytes` and reads them all, concurrently.
async fn drain_all<S>(streams: Vec<S>, bytes: usize) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    futures_util::future::try_join_all(streams.into_iter().map(|mut stream| async move {
        stream.write_all(&[SEND_TO_CLIENT]).await.map_err(s)?;
        stream
            .write_all(&(bytes as u64).to_be_bytes())
            .await
            .map_err(s)?;
        let mut buffer = vec![0; 64 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = stream.read(&mut buffer).await.map_err(s)?;
            if n == 0 {
                return Err(format!("the download ended with {left} bytes to go"));
            }
            left = left.saturating_sub(n);
        }
        Ok(())
    }))
    .await
    .map(|_| ())
}

/// Writes `bytes` to a new stream and waits until the instance side has read them all.
async fn upload(session: &PortSession, bytes: usize) -> Result<(), String> {
    upload_to(session.open_stream().await.map_err(s)?, bytes).await
}

/// Writes `bytes` to `stream` and waits until the instance side has read them all.
async fn upload_to<S>(mut stream: S, bytes: usize) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream.write_all(&[DISCARD]).await.map_err(s)?;
    stream
        .write_all(&(bytes as u64).to_be_bytes())
        .await
        .map_err(s)?;
    let chunk = vec![0x5a; 64 * 1024];
    let mut left = bytes;
    while left > 0 {
        let part = left.min(chunk.len());
        stream.write_all(&chunk[..part]).await.map_err(s)?;
        left -= part;
    }
    // The instance side answers one byte once it has read everything.
    let mut done = [0];
    stream.read_exact(&mut done).await.map_err(s)?;
    Ok(())
}

/// Sends one byte and waits for its echo, `count` times; the round trips in milliseconds.
async fn echo_round_trips<S>(mut stream: S, count: usize) -> Result<Vec<f64>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream.write_all(&[ECHO]).await.map_err(s)?;
    let mut times = Vec::with_capacity(count);
    let mut byte = [0];
    for n in 0..count {
        let started = Instant::now();
        stream.write_all(&[n as u8]).await.map_err(s)?;
        stream.read_exact(&mut byte).await.map_err(s)?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.saturating_sub(1).min(sorted.len() - 1)]
}

/// The instance's port: each connection's first byte says what to do (see the constants);
/// sizes follow as 8 big-endian bytes.
async fn instance_port(listener: TcpListener, default_bytes: usize) {
    while let Ok((mut tcp, _)) = listener.accept().await {
        tokio::spawn(async move {
            let mut what = [0];
            if tcp.read_exact(&mut what).await.is_err() {
                return;
            }
            let mut size = [0; 8];
            let bytes = if what[0] == ECHO {
                default_bytes
            } else if tcp.read_exact(&mut size).await.is_ok() {
                u64::from_be_bytes(size) as usize
            } else {
                return;
            };
            let _ = match what[0] {
                SEND_TO_CLIENT => send(&mut tcp, bytes).await,
                DISCARD => discard(&mut tcp, bytes).await,
                _ => echo(&mut tcp).await,
            };
        });
    }
}

async fn send(tcp: &mut TcpStream, bytes: usize) -> std::io::Result<()> {
    let chunk = vec![0xa5; 64 * 1024];
    let mut left = bytes;
    while left > 0 {
        let part = left.min(chunk.len());
        tcp.write_all(&chunk[..part]).await?;
        left -= part;
    }
    Ok(())
}

async fn discard(tcp: &mut TcpStream, bytes: usize) -> std::io::Result<()> {
    let mut buffer = vec![0; 64 * 1024];
    let mut left = bytes;
    while left > 0 {
        match tcp.read(&mut buffer).await? {
            0 => return Ok(()),
            n => left = left.saturating_sub(n),
        }
    }
    tcp.write_all(&[1]).await
}

async fn echo(tcp: &mut TcpStream) -> std::io::Result<()> {
    let mut buffer = [0; 1024];
    loop {
        match tcp.read(&mut buffer).await? {
            0 => return Ok(()),
            n => tcp.write_all(&buffer[..n]).await?,
        }
    }
}

fn session_config(sim: &Simulator) -> Result<SessionConfig, String> {
    let connector = DataChannelConnector::new(ConnectOptions {
        ca_bundles: vec![sim.ca_bundle().ok_or("TLS")?.to_owned()],
        ..ConnectOptions::default()
    })
    .map_err(s)?;
    Ok(SessionConfig::new(connector))
}
