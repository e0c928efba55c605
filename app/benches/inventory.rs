//! The inventory at scale: a full refresh of a large generated organisation through the
//! simulator with AWS-like latency on every call, and the first paint of the window from the
//! disk cache that refresh left.
//!
//! ```sh
//! cargo bench -p bastionless --bench inventory                       # 30 profiles × 17 regions × 200
//! cargo bench -p bastionless --bench inventory -- --generate profiles=30,accounts=15,regions=17,instances=200 --latency-ms 120 --runs 5
//! ```
//!
//! - **refresh**: from `Engine::start` (no cache) until the snapshot says the refresh is over:
//!   every profile's identity, every account's enabled regions, and in each account and region
//!   the instances, EIC endpoints, managed-instance information and security groups, with the
//!   engine's real call budget and the SDK's real HTTPS clients. The simulator adds
//!   `--latency-ms` (120 by default) to every call, as a distant region would.
//! - **api calls**: what the simulator answered during that refresh, by action.
//! - **cached first paint**: from `Engine::start` with the cache file until the window's first
//!   frame has been laid out with the cached hosts in it (egui, headless: layout and
//!   tessellation, no GPU rasterisation). The engine's background refresh starts at the same
//!   time, as when the app opens.
//!
//! One line per run on stdout, then the medians:
//! `run=1 refresh_s=… hosts=… api_calls=… cached_first_paint_ms=…`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bastionless::ui::BastionlessApp;
use bastionless_core::engine::{Engine, EngineConfig};
use bastionless_core::profiles::AwsFiles;
use bastionless_sim::scenario::{GenerateSpec, generate_toml};
use bastionless_sim::{BackgroundSimulator, Scenario};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;

/// The app's allocator (`src/main.rs`), so the figures are the app's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEFAULT_SPEC: &str = "profiles=30,regions=17,instances=200";
const DEFAULT_LATENCY_MS: u64 = 120;
const DEFAULT_RUNS: usize = 3;
const PATIENCE: Duration = Duration::from_secs(600);

/// Every action a refresh may call, for the call count.
const ACTIONS: &[&str] = &[
    "GetCallerIdentity",
    "ListAccountAliases",
    "DescribeRegions",
    "DescribeInstances",
    "DescribeInstanceConnectEndpoints",
    "DescribeInstanceInformation",
    "DescribeSecurityGroups",
    "DescribeVpcs",
    "DescribeSubnets",
    "DescribeImages",
];

const USAGE: &str = "usage: inventory [--generate profiles=P,regions=R,instances=N[,accounts=A]] [--latency-ms MS] [--runs N]";

struct Args {
    spec: GenerateSpec,
    latency_ms: u64,
    runs: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        spec: DEFAULT_SPEC.parse()?,
        latency_ms: DEFAULT_LATENCY_MS,
        runs: DEFAULT_RUNS,
    };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        let mut value = || given.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--generate" => args.spec = value()?.parse()?,
            "--latency-ms" => {
                args.latency_ms = value()?.parse().map_err(|e| format!("--latency-ms: {e}"))?;
            }
            "--runs" => {
                args.runs = value()?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("--runs: a count above 0")?;
            }
            "--bench" => {}
            other => return Err(format!("unexpected argument `{other}`")),
        }
    }
    Ok(args)
}

struct Run {
    refresh: Duration,
    hosts: usize,
    calls: BTreeMap<&'static str, u64>,
    first_paint: Duration,
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("inventory: {error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut runs = Vec::new();
    for n in 1..=args.runs {
        match run(&args) {
            Ok(result) => {
                println!(
                    "run={n} refresh_s={:.3} hosts={} api_calls={} cached_first_paint_ms={:.1}",
                    result.refresh.as_secs_f64(),
                    result.hosts,
                    result.calls.values().sum::<u64>(),
                    result.first_paint.as_secs_f64() * 1000.0,
                );
                runs.push(result);
            }
            Err(error) => {
                eprintln!("inventory: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    let calls: Vec<String> = runs[0]
        .calls
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(action, n)| format!("{action}={n}"))
        .collect();
    println!(
        "median refresh_s={:.3} cached_first_paint_ms={:.1} hosts={} calls_by_action: {}",
        median(runs.iter().map(|r| r.refresh.as_secs_f64())),
        median(runs.iter().map(|r| r.first_paint.as_secs_f64() * 1000.0)),
        runs[0].hosts,
        calls.join(" "),
    );
    ExitCode::SUCCESS
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    (values[(n - 1) / 2] + values[n / 2]) / 2.0
}

fn run(args: &Args) -> Result<Run, String> {
    let mut toml = generate_toml(&args.spec);
    toml.push_str(&format!("\n[[faults]]\nlatency_ms = {}\n", args.latency_ms));
    let scenario = Scenario::from_toml_str(&toml).map_err(|e| e.to_string())?;
    let simulator = BackgroundSimulator::start(scenario).map_err(|e| format!("{e:#}"))?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = EngineConfig {
        cache_file: Some(dir.path().join("inventory.bin")),
        ..EngineConfig::new(AwsFiles::at(
            simulator.config_file(),
            simulator.credentials_file(),
        ))
    };

    // The full refresh, with no cache.
    let started = Instant::now();
    let engine = Engine::start(config.clone()).map_err(|e| e.to_string())?;
    let snapshot = engine.wait_until(PATIENCE, |s| !s.refreshing);
    let refresh = started.elapsed();
    if snapshot.refreshing {
        return Err(format!("the refresh did not end within {PATIENCE:?}"));
    }
    let failed: Vec<_> = snapshot.failed_profiles().collect();
    if !failed.is_empty() {
        return Err(format!("profiles failed: {failed:?}"));
    }
    let hosts = snapshot.hosts.len();
    let calls = ACTIONS
        .iter()
        .map(|action| (*action, simulator.calls(action)))
        .collect();
    let names: Vec<String> = snapshot
        .hosts
        .iter()
        .filter_map(|host| host.name.clone())
        .collect();
    drop(engine);

    // The window's first frame from the cache the refresh wrote.
    let started = Instant::now();
    let engine = Engine::start(config).map_err(|e| e.to_string())?;
    let mut harness = Harness::builder()
        .with_size([1280.0, 800.0])
        .build_eframe(|cc| BastionlessApp::new(engine, &cc.egui_ctx));
    harness.step();
    let first_paint = started.elapsed();
    let shown = names
        .iter()
        .any(|name| harness.query_all_by_label(name).next().is_some());
    if !shown {
        return Err("the first frame shows none of the cached hosts".to_owned());
    }
    Ok(Run {
        refresh,
        hosts,
        calls,
        first_paint,
    })
}
