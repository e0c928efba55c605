//! EC2 Instance Connect tunnel throughput, against a raw TLS stream measured the same way.
//!
//! ```sh
//! cargo bench -p bastionless-sim --bench eic_throughput -- raw [--bytes N] [--setups K]
//! cargo bench -p bastionless-sim --bench eic_throughput -- eic [--bytes N] [--setups K]
//! ```
//!
//! One mode per process, so that each can also be timed as a whole (`/usr/bin/time -v`):
//!
//! - `raw`: a loopback TLS server (rustls, a certificate from a throwaway rcgen CA, as the
//!   simulator makes) reads and discards; the client writes N bytes over one TLS stream in
//!   64 KiB writes.
//! - `eic`: the simulator in-process, with one running instance behind an EC2 Instance Connect
//!   Endpoint whose port 22 is a local TCP server that reads and discards. The tunnel is the
//!   product's own: a [`Tunnels`] listener on 127.0.0.1, so the bytes take the path a user's
//!   `ssh` would see — local TCP → listener → pump → WSS → the simulator's relay → TCP → the
//!   instance's port. The client writes N bytes to the listener in 64 KiB writes.
//!
//! Throughput is timed from the first of the N bytes written until the receiving server has
//! read all N (the connection is set up and one byte has crossed it before the clock starts).
//! CPU is the process's user + system time over that same window (`/proc/self/stat`), split by
//! thread between the two tokio runtimes: `client` (the writer; in `eic` also the product's
//! listener and pump) and `server` (the TLS server; in `eic` the simulator and the discard
//! backend). Both ends run in this process, so `cpu_seconds` is the cost of both ends together.
//!
//! Setup time is measured K times (default 20), one connection after the other: from the local
//! connect (for `eic`, the listener then presigns the URL and opens the WebSocket; for `raw`,
//! TCP connect and the TLS handshake) until the first byte written arrives at the server. TLS
//! session resumption is on in both modes, as it is in the product (one `Connector` per
//! profile), so every setup after the first resumes.
//!
//! The result is one line on stdout:
//! `mode=eic bytes=… seconds=… mib_per_s=… cpu_seconds=… cpu_s_per_gib=… client_cpu_s_per_gib=…
//! server_cpu_s_per_gib=… setup_ms_first=… setup_ms_median=… setup_ms_p90=… setups=…`.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials as _, SharedCredentialsProvider};
use bastionless_core::eic::{
    ConnectOptions, Connector, EndpointAddress, TunnelRequest, TunnelStream,
};
use bastionless_core::inventory::HostKey;
use bastionless_core::tunnel::{Route, TunnelSettings, TunnelTarget, Tunnels};
use bastionless_sim::{Scenario, SimOptions, Simulator};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::{ClientConfig, HandshakeKind, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use support::{
    ACCESS_KEY_ID, ACCOUNT, Cpu, ENDPOINT_ID, INSTANCE_ID, INSTANCE_IP, PROFILE, REGION,
    SECRET_ACCESS_KEY, runtime, scenario_toml,
};

const GIB: f64 = (1u64 << 30) as f64;
const MIB: f64 = (1u64 << 20) as f64;
const DEFAULT_BYTES: u64 = 1 << 30;
const DEFAULT_SETUPS: usize = 20;
/// The client's write size.
const WRITE_CHUNK: usize = 64 * 1024;
/// The discard servers' read size.
const READ_CHUNK: usize = 256 * 1024;
/// Give up on any one wait after this long.
const PATIENCE: Duration = Duration::from_secs(600);

const USAGE: &str = "usage: eic_throughput raw|eic [--bytes N[K|M|G]] [--setups K]";

// ---------------------------------------------------------------------------------------------
// Arguments

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Raw,
    Eic,
}

#[derive(Debug)]
struct Args {
    mode: Mode,
    bytes: u64,
    setups: usize,
}

impl Args {
    fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut mode = None;
        let mut bytes = DEFAULT_BYTES;
        let mut setups = DEFAULT_SETUPS;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "raw" => mode = Some(Mode::Raw),
                "eic" => mode = Some(Mode::Eic),
                "--bytes" => {
                    let value = args.next().ok_or("--bytes needs a value")?;
                    bytes = parse_size(&value)?;
                }
                "--setups" => {
                    let value = args.next().ok_or("--setups needs a value")?;
                    setups = value
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| format!("--setups {value}: expected a count above 0"))?;
                }
                // `cargo bench` passes `--bench` to every bench binary.
                "--bench" => {}
                other => return Err(format!("unexpected argument `{other}`")),
            }
        }
        let mode = mode.ok_or("choose a mode: raw or eic")?;
        Ok(Args {
            mode,
            bytes,
            setups,
        })
    }
}

/// `1073741824`, `512M`, `1G`, `64K` (binary multiples; `KiB`/`MiB`/`GiB` also accepted).
fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim_end_matches("iB").trim_end_matches('B');
    let (digits, multiplier) = match trimmed.chars().last() {
        Some('K' | 'k') => (&trimmed[..trimmed.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&trimmed[..trimmed.len() - 1], 1 << 20),
        Some('G' | 'g') => (&trimmed[..trimmed.len() - 1], 1 << 30),
        _ => (trimmed, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("--bytes {text}: expected a size such as 1073741824 or 1G"))
}

// ---------------------------------------------------------------------------------------------
// Main

struct Measured {
    seconds: f64,
    cpu: Cpu,
    setups_ms: Vec<f64>,
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("eic_throughput: {error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let client = runtime("bench-client");
    let server = runtime("bench-server");
    let server_handle = server.handle().clone();
    let (mode, bytes, setups) = (args.mode, args.bytes, args.setups);
    let measured = client.block_on(async move {
        // The driver runs on the client runtime's workers, like everything client-side.
        tokio::spawn(async move {
            match mode {
                Mode::Raw => raw(&server_handle, bytes, setups).await,
                Mode::Eic => eic(&server_handle, bytes, setups).await,
            }
        })
        .await
        .unwrap_or_else(|e| Err(format!("the benchmark task failed: {e}")))
    });
    client.shutdown_timeout(Duration::from_secs(1));
    server.shutdown_timeout(Duration::from_secs(1));
    let measured = match measured {
        Ok(measured) => measured,
        Err(error) => {
            eprintln!("eic_throughput: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", summary(mode, bytes, &measured));
    ExitCode::SUCCESS
}

fn summary(mode: Mode, bytes: u64, measured: &Measured) -> String {
    let gib = bytes as f64 / GIB;
    let mut setups = measured.setups_ms.clone();
    setups.sort_by(f64::total_cmp);
    format!(
        "mode={} bytes={bytes} seconds={:.3} mib_per_s={:.1} cpu_seconds={:.2} cpu_s_per_gib={:.2} \
         client_cpu_s_per_gib={:.2} server_cpu_s_per_gib={:.2} setup_ms_first={:.2} \
         setup_ms_median={:.2} setup_ms_p90={:.2} setups={}",
        match mode {
            Mode::Raw => "raw",
            Mode::Eic => "eic",
        },
        measured.seconds,
        bytes as f64 / MIB / measured.seconds,
        measured.cpu.process,
        measured.cpu.process / gib,
        measured.cpu.client / gib,
        measured.cpu.server / gib,
        measured.setups_ms.first().copied().unwrap_or(f64::NAN),
        median(&setups),
        percentile(&setups, 0.9),
        setups.len(),
    )
}

/// The middle of sorted `values` (the mean of the two middle ones for an even count).
fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => (sorted[(n - 1) / 2] + sorted[n / 2]) / 2.0,
    }
}

/// Nearest-rank percentile of sorted `values`.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN)
}

// ---------------------------------------------------------------------------------------------
// The two modes

async fn raw(
    server_rt: &tokio::runtime::Handle,
    bytes: u64,
    setups: usize,
) -> Result<Measured, String> {
    let (server_config, client_config) = tls_pair()?;
    let (addr, mut connections) =
        start_discard_server(server_rt, Some(TlsAcceptor::from(server_config))).await?;
    let connector = TlsConnector::from(client_config);
    let connect = || async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to the TLS server: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        Ok::<_, String>(tls)
    };

    let mut setups_ms = Vec::with_capacity(setups);
    let mut resumed = 0;
    for _ in 0..setups {
        let started = Instant::now();
        let mut tls = connect().await?;
        let arrived = first_byte(&mut tls, &mut connections).await?;
        setups_ms.push(ms(arrived.duration_since(started)));
        if tls.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed) {
            resumed += 1;
        }
        let _ = tls.shutdown().await;
        // Read until the server hangs up: that processes the session tickets it sent after the
        // handshake, so the next connection can resume, as the product's do (its client reads
        // the upgrade response, and the tickets with it).
        let _ = tls.read_to_end(&mut Vec::new()).await;
        drop(tls);
        arrived.end().await?;
    }
    eprintln!("raw: {resumed} of {setups} setups resumed a TLS session");

    let mut tls = connect().await?;
    if let Some(suite) = tls.get_ref().1.negotiated_cipher_suite() {
        eprintln!("raw: TLS cipher suite {:?}", suite.suite());
    }
    let measured = bulk(&mut tls, &mut connections, bytes).await?;
    let _ = tls.shutdown().await;
    Ok(Measured {
        setups_ms,
        ..measured
    })
}

async fn eic(
    server_rt: &tokio::runtime::Handle,
    bytes: u64,
    setups: usize,
) -> Result<Measured, String> {
    // The instance's port 22: a local server that reads and discards.
    let (backend_addr, mut connections) = start_discard_server(server_rt, None).await?;

    let scenario = Scenario::from_toml_str(&scenario_toml(backend_addr))
        .map_err(|e| format!("the benchmark scenario: {e}"))?;
    let sim = server_rt
        .spawn(Simulator::start_with(scenario, SimOptions::default()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("the simulator did not start: {e:#}"))?;

    let ca_bundle = sim
        .ca_bundle()
        .ok_or("the simulator serves TLS")?
        .to_owned();
    let connector = tokio::task::spawn_blocking(move || {
        Connector::new(ConnectOptions {
            ca_bundles: vec![ca_bundle],
            ..ConnectOptions::default()
        })
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("the connector: {e}"))?;
    let request = TunnelRequest {
        endpoint: EndpointAddress::parse(sim.tunnel_endpoint())
            .map_err(|e| format!("the endpoint's DnsName: {e}"))?,
        endpoint_id: ENDPOINT_ID.to_owned(),
        private_ip: INSTANCE_IP.parse().map_err(|_| "the instance IP")?,
        remote_port: 22,
        max_tunnel_duration: None,
        region: REGION.to_owned(),
    };
    let credentials = SharedCredentialsProvider::new(Credentials::new(
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
        None,
        None,
        "benchmark",
    ));
    let route = Route::eic(
        PROFILE,
        request.clone(),
        connector.clone(),
        credentials.clone(),
    );
    let tunnels = Tunnels::start(
        &tokio::runtime::Handle::current(),
        TunnelSettings::default(),
        |_report| {},
    );
    let reservation = tunnels.reserve(TunnelTarget {
        host: HostKey {
            account_id: ACCOUNT.to_owned(),
            region: REGION.to_owned(),
            instance_id: INSTANCE_ID.to_owned(),
        },
        host_name: "bench-1".to_owned(),
        remote_port: 22,
    });
    let tunnel_id = reservation.id();
    let local = reservation
        .listen(route, None)
        .await
        .map_err(|e| format!("the tunnel listener: {e}"))?;
    let connect = || async {
        let tcp = TcpStream::connect(local)
            .await
            .map_err(|e| format!("cannot connect to the tunnel listener: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok::<_, String>(tcp)
    };

    let mut setups_ms = Vec::with_capacity(setups);
    for _ in 0..setups {
        let started = Instant::now();
        let mut tcp = connect().await?;
        let arrived = first_byte(&mut tcp, &mut connections).await?;
        setups_ms.push(ms(arrived.duration_since(started)));
        drop(tcp);
        arrived.end().await?;
        // Let both ends release the endpoint slot before the next connection.
        let deadline = Instant::now() + PATIENCE;
        while sim.open_tunnels(ENDPOINT_ID) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    // The same connector (and so the same TLS session cache) as the listener's connections:
    // does a tunnel opened after them resume, as the setup times assume?
    let credentials = credentials
        .provide_credentials()
        .await
        .map_err(|e| e.to_string())?;
    let ws = connector
        .open_tunnel(&request, &credentials, SystemTime::now())
        .await
        .map_err(|e| format!("a direct tunnel: {e}"))?;
    let resumed = match ws.get_ref() {
        TunnelStream::Tls(tls) => tls.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed),
        TunnelStream::Plain(_) => false,
    };
    eprintln!("eic: a tunnel opened after the setups resumed a TLS session: {resumed}");
    drop(ws);
    if let Some(conn) = connections.recv().await {
        let _ = conn.until(|c| c.ended.load(Ordering::Acquire)).await;
    }

    let mut tcp = connect().await?;
    let measured = bulk(&mut tcp, &mut connections, bytes).await?;
    drop(tcp);
    tunnels.close(tunnel_id);
    server_rt
        .spawn(sim.shutdown())
        .await
        .map_err(|e| e.to_string())?;
    Ok(Measured {
        setups_ms,
        ..measured
    })
}

/// Sends one byte on a fresh connection and waits until the discard server has it; returns
/// the server-side connection and when the byte arrived there.
async fn first_byte<S: AsyncWrite + Unpin>(
    stream: &mut S,
    connections: &mut mpsc::UnboundedReceiver<Arc<Arrivals>>,
) -> Result<ArrivedFirst, String> {
    stream
        .write_all(b"!")
        .await
        .map_err(|e| format!("writing the first byte: {e}"))?;
    stream.flush().await.map_err(|e| e.to_string())?;
    let conn = tokio::time::timeout(PATIENCE, connections.recv())
        .await
        .map_err(|_| "no connection reached the discard server")?
        .ok_or("the discard server stopped")?;
    conn.until(|c| c.first_byte_at.get().is_some()).await?;
    let at = *conn.first_byte_at.get().ok_or("no first byte")?;
    Ok(ArrivedFirst { conn, at })
}

struct ArrivedFirst {
    conn: Arc<Arrivals>,
    at: Instant,
}

impl ArrivedFirst {
    fn duration_since(&self, started: Instant) -> Duration {
        self.at.saturating_duration_since(started)
    }
}

impl ArrivedFirst {
    /// Waits until the server has seen the connection end.
    async fn end(&self) -> Result<(), String> {
        self.conn.until(|c| c.ended.load(Ordering::Acquire)).await
    }
}

/// Writes `bytes` in 64 KiB writes on an open connection (after one byte has crossed it) and
/// times it until the server has read them all.
async fn bulk<S: AsyncWrite + Unpin + Send>(
    stream: &mut S,
    connections: &mut mpsc::UnboundedReceiver<Arc<Arrivals>>,
    bytes: u64,
) -> Result<Measured, String> {
    let arrived = first_byte(stream, connections).await?;
    let want = bytes + 1;
    arrived.conn.wake_at.store(want, Ordering::Release);
    let chunk: Vec<u8> = (0..WRITE_CHUNK).map(|i| (i % 251) as u8).collect();

    let cpu_before = Cpu::now();
    let started = Instant::now();
    let writing = async {
        let mut left = bytes;
        while left > 0 {
            let n = left.min(WRITE_CHUNK as u64) as usize;
            stream
                .write_all(&chunk[..n])
                .await
                .map_err(|e| format!("writing: {e}"))?;
            left -= n as u64;
        }
        stream.flush().await.map_err(|e| format!("flushing: {e}"))
    };
    let receiving = arrived
        .conn
        .until(|c| c.bytes.load(Ordering::Acquire) >= want);
    let (written, received) = tokio::join!(writing, receiving);
    let seconds = started.elapsed().as_secs_f64();
    let cpu = Cpu::now().since(cpu_before);
    written?;
    received?;
    if arrived.conn.bytes.load(Ordering::Acquire) != want {
        return Err("the server received more bytes than were sent".into());
    }
    Ok(Measured {
        seconds,
        cpu,
        setups_ms: Vec::new(),
    })
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------------------------------------
// The discard server

/// What one accepted connection has received so far.
struct Arrivals {
    bytes: AtomicU64,
    first_byte_at: OnceLock<Instant>,
    ended: AtomicBool,
    /// Wake waiters when `bytes` reaches this (not on every read: that would cost the reader).
    wake_at: AtomicU64,
    changed: Notify,
}

impl Arrivals {
    fn new() -> Self {
        Arrivals {
            bytes: AtomicU64::new(0),
            first_byte_at: OnceLock::new(),
            ended: AtomicBool::new(false),
            wake_at: AtomicU64::new(u64::MAX),
            changed: Notify::new(),
        }
    }

    /// Waits until `done` holds (checked after each notification).
    async fn until(&self, done: impl Fn(&Self) -> bool) -> Result<(), String> {
        tokio::time::timeout(PATIENCE, async {
            loop {
                // Registered before the check, so no notification can slip between the two.
                let changed = self.changed.notified();
                if done(self) {
                    return Ok(());
                }
                if self.ended.load(Ordering::Acquire) {
                    return Err("the connection ended early".to_owned());
                }
                changed.await;
            }
        })
        .await
        .map_err(|_| "timed out waiting for the discard server".to_owned())?
    }
}

/// Starts a discard server on the server runtime (TLS when `tls` is given): its address, and
/// each accepted connection as it comes.
async fn start_discard_server(
    server_rt: &tokio::runtime::Handle,
    tls: Option<TlsAcceptor>,
) -> Result<(SocketAddr, mpsc::UnboundedReceiver<Arc<Arrivals>>), String> {
    let (arrivals, connections) = mpsc::unbounded_channel();
    // Bound on the server runtime, so that its I/O is that runtime's.
    let listener = server_rt
        .spawn(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot bind the discard server: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    server_rt.spawn(discard_server(listener, tls, arrivals));
    Ok((addr, connections))
}

/// Accepts connections, announces each on `arrivals` and reads everything each one sends,
/// discarding it.
async fn discard_server(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    arrivals: mpsc::UnboundedSender<Arc<Arrivals>>,
) {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(error) => {
                eprintln!("discard server: accept failed: {error}");
                return;
            }
        };
        let _ = tcp.set_nodelay(true);
        let conn = Arc::new(Arrivals::new());
        if arrivals.send(conn.clone()).is_err() {
            return;
        }
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(stream) => discard(stream, &conn).await,
                    Err(error) => eprintln!("discard server: TLS handshake failed: {error}"),
                },
                None => discard(tcp, &conn).await,
            }
            conn.ended.store(true, Ordering::Release);
            conn.changed.notify_waiters();
        });
    }
}

async fn discard<S: AsyncRead + Unpin>(mut stream: S, conn: &Arrivals) {
    let mut buffer = vec![0u8; READ_CHUNK];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let total = conn.bytes.fetch_add(n as u64, Ordering::AcqRel) + n as u64;
                if conn.first_byte_at.set(Instant::now()).is_ok()
                    || total >= conn.wake_at.load(Ordering::Acquire)
                {
                    conn.changed.notify_waiters();
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// TLS for the raw mode and the scenario for the EIC mode

/// A server certificate signed by a throwaway CA, as the simulator makes them, and a client
/// trusting that CA; aws-lc-rs and rustls's safe defaults on both sides, as in the product.
fn tls_pair() -> Result<(Arc<ServerConfig>, Arc<ClientConfig>), String> {
    let error = |e: &dyn std::fmt::Display| format!("the benchmark's TLS material: {e}");
    let ca_key = KeyPair::generate().map_err(|e| error(&e))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|e| error(&e))?;
    ca_params.distinguished_name = distinguished_name("eic_throughput CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(|e| error(&e))?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().map_err(|e| error(&e))?;
    let mut server_params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .map_err(|e| error(&e))?;
    server_params.distinguished_name = distinguished_name("localhost");
    server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .map_err(|e| error(&e))?;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| error(&e))?
        .with_no_client_auth()
        .with_single_cert(
            vec![
                CertificateDer::from(server_cert.der().to_vec()),
                CertificateDer::from(ca_cert.der().to_vec()),
            ],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .map_err(|e| error(&e))?;
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca_cert.der().to_vec()))
        .map_err(|e| error(&e))?;
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| error(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok((Arc::new(server), Arc::new(client)))
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}
