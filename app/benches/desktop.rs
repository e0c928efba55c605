//! The desktop window with 10,000 hosts, headless (no GPU): how long until the first frame
//! shows the cached hosts, how long a frame takes while scrolling the table, how long a search
//! keystroke takes to show its result, how many repaints an idle window does, and the
//! process's RSS.
//!
//! The hosts come from a disk cache, as on a real start: 10,000 instances over 10 regions and 50
//! VPCs of one account, reached through a profile whose endpoint does not answer, so no scan replaces them
//! and the window shows them all, marked stale.
//!
//! The first frame is measured twice, each from `Engine::start` (the cache read included):
//! - as a window draws it: the app's creation and one frame of an `egui::Context` set up as
//!   eframe sets it up (AccessKit off, as on a desktop without an assistive technology), laid
//!   out and tessellated, and checked to show the cached rows. eframe keeps its window hidden
//!   until this frame is painted, so it is also what the window shows when it maps; the GPU's
//!   painting and the window system's set-up are not in it (see docs/benchmarks.md for the
//!   real window under Xvfb).
//! - through egui_kittest (AccessKit on, as kittest always has it), until the window settles:
//!   the figure earlier rounds quoted. Second in the process, so warm, unless `--kittest-first`
//!   skips the first measurement.
//!
//! Frame times after that cover egui's layout of the whole window (what the UI thread does
//! each frame), not the GPU's painting.
//!
//! Run: `cargo bench -p bastionless --bench desktop` (figures in docs/benchmarks.md);
//! `-- --write-files DIR` writes the AWS files and the cache to DIR and exits, for running the
//! real window over the same hosts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bastionless::ui::BastionlessApp;
use bastionless_core::engine::{Engine, EngineConfig};
use bastionless_core::inventory::{
    CachedRegion, Host, InstanceState, InventoryCache, Listing, Platform, RegionFacts,
};
use bastionless_core::profiles::AwsFiles;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable};

#[path = "../src/ui/frame_texts.rs"]
mod frame_texts;

/// The app's allocator (`src/main.rs`), so the figures are the app's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const HOSTS: usize = 10_000;
const REGIONS: usize = 10;
const ACCOUNT: &str = "123456789012";
const WINDOW: egui::Vec2 = egui::vec2(1280.0, 800.0);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let write_to = args
        .iter()
        .position(|a| a == "--write-files")
        .map(|at| PathBuf::from(args.get(at + 1).expect("--write-files DIR")));
    let files = write_files(write_to.as_deref().unwrap_or(dir.path()));
    if let Some(dir) = write_to {
        println!(
            "wrote {HOSTS} cached hosts: AWS_CONFIG_FILE={} AWS_SHARED_CREDENTIALS_FILE={} \
             XDG_CACHE_HOME={}",
            files.config.display(),
            files.credentials.display(),
            dir.join("cache").display()
        );
        return;
    }

    println!("hosts: {HOSTS}");
    if !args.iter().any(|a| a == "--kittest-first") {
        let first = window_first_frame(&files);
        println!("engine started: {:.1} ms", ms(first.engine_started));
        println!(
            "app created (cached hosts read and shown): {:.1} ms",
            ms(first.created)
        );
        println!(
            "engine start to first frame with the cached rows, as a window draws it \
             (layout + tessellation, AccessKit off): {:.1} ms",
            ms(first.drawn)
        );
    }

    let started = Instant::now();
    let engine = Engine::start(files.engine_config()).expect("engine starts");
    let mut harness = Harness::builder()
        .with_size(WINDOW)
        .with_step_dt(1.0 / 60.0)
        .with_max_steps(100)
        .build_eframe(|cc| BastionlessApp::new(engine, &cc.egui_ctx));
    let first_frame = started.elapsed();
    // Let the (failing) refresh finish, so what follows measures a settled window.
    let deadline = Instant::now() + Duration::from_secs(30);
    while harness.query_by_label(&format!("{HOSTS} hosts")).is_none()
        || harness.query_by_label_contains("Refreshing").is_some()
    {
        if Instant::now() > deadline {
            let labels: Vec<String> = harness
                .query_all_by_label_contains("host")
                .chain(harness.query_all_by_label_contains("rofile"))
                .filter_map(|n| n.accesskit_node().value().or(n.accesskit_node().label()))
                .collect();
            panic!("the window never showed {HOSTS} hosts settled: {labels:?}");
        }
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    harness.run();

    let scrolling = scroll_frames(&mut harness);
    let keystrokes = search_keystrokes(&mut harness);
    let idle = idle_repaints(&mut harness, Duration::from_secs(3));
    let rss = rss_mib();

    println!(
        "engine start to first frame (kittest, AccessKit on, until settled): {:.1} ms",
        ms(first_frame)
    );
    println!("frame while scrolling the table: {}", summary(&scrolling));
    println!(
        "search keystroke to frame (filters {HOSTS} hosts): {}",
        summary(&keystrokes)
    );
    println!("repaints in 3 s idle: {idle}");
    println!("RSS: {rss:.0} MiB");
}

/// The AWS files and the cache the bench starts from.
struct Files {
    config: PathBuf,
    credentials: PathBuf,
    cache: PathBuf,
}

impl Files {
    fn engine_config(&self) -> EngineConfig {
        let mut config = EngineConfig::new(AwsFiles::at(&self.config, &self.credentials));
        config.cache_file = Some(self.cache.clone());
        config
    }
}

/// Writes the AWS files and the cache into `dir`; the cache where the app looks for it when
/// `XDG_CACHE_HOME` is `dir/cache`.
fn write_files(dir: &Path) -> Files {
    std::fs::create_dir_all(dir).expect("the directory for the files");
    let files = Files {
        config: dir.join("config"),
        credentials: dir.join("credentials"),
        cache: dir.join("cache").join("bastionless").join("inventory.bin"),
    };
    // Nothing listens on the discard port: the profile's scan fails at once, and a failed scan
    // keeps the cached hosts of its account (stale).
    std::fs::write(
        &files.config,
        "[profile bench]\nregion = us-east-1\nendpoint_url = http://127.0.0.1:9\n",
    )
    .unwrap();
    std::fs::write(
        &files.credentials,
        "[bench]\naws_access_key_id = AKIDBENCHMARK\naws_secret_access_key = not-a-secret\n",
    )
    .unwrap();
    write_cache(&files.cache);
    files
}

/// From `Engine::start` to the end of the first frame an eframe window would draw: the app's
/// creation, the frame's layout and its tessellation. Panics unless that frame shows the
/// cached hosts' rows.
fn window_first_frame(files: &Files) -> FirstFrame {
    let started = Instant::now();
    let engine = Engine::start(files.engine_config()).expect("engine starts");
    let engine_started = started.elapsed();
    let ctx = egui::Context::default();
    let mut app = BastionlessApp::new(engine, &ctx);
    let created = started.elapsed();
    let input = egui::RawInput {
        screen_rect: Some(egui::Rect::from_min_size(egui::Pos2::ZERO, WINDOW)),
        ..Default::default()
    };
    let mut output = ctx.run_ui(input, |ui| app.show(ui));
    let texts = frame_texts::texts(&output.shapes);
    let primitives = ctx.tessellate(output.shapes, output.pixels_per_point);
    let first_frame = started.elapsed();
    // A window would upload these (the font atlas) to the GPU; there is none here.
    output.textures_delta.clear();
    assert!(!primitives.is_empty());
    let rows = texts.iter().filter(|t| t.starts_with("svc-")).count();
    assert!(
        rows >= 20 && texts.iter().any(|t| t == &format!("{HOSTS} hosts")),
        "the first frame shows {rows} host rows, not a screenful of the {HOSTS} cached hosts: \
         {texts:?}"
    );
    FirstFrame {
        engine_started,
        created,
        drawn: first_frame,
    }
}

/// Times from `Engine::start` in [`window_first_frame`].
struct FirstFrame {
    engine_started: Duration,
    /// The app created: the engine's cache read and shown.
    created: Duration,
    /// The first frame laid out and tessellated.
    drawn: Duration,
}

/// 10,000 running Linux hosts, their cache as a real scan would have left it.
fn write_cache(path: &std::path::Path) {
    let mut regions = Vec::new();
    for r in 0..REGIONS {
        let region = format!("bench-{r}");
        let hosts: Vec<Host> = (0..HOSTS / REGIONS)
            .map(|i| {
                let n = r * (HOSTS / REGIONS) + i;
                Host {
                    instance_id: format!("i-{n:017x}"),
                    name: Some(format!(
                        "svc-{}-{n}",
                        ["web", "api", "db", "cache", "batch"][n % 5]
                    )),
                    tags: [(
                        "Env".to_owned(),
                        ["prod", "staging", "dev"][n % 3].to_owned(),
                    )]
                    .into(),
                    state: InstanceState::Running,
                    platform: Platform::Linux,
                    private_ip: Some(format!("10.{}.{}.{}", r, (i / 250) % 256, i % 250 + 1)),
                    public_ip: None,
                    vpc_id: Some(format!("vpc-{r}{}", i % 5)),
                    subnet_id: Some(format!("subnet-{r}{}", i % 5)),
                    availability_zone: Some(format!("{region}a")),
                    key_name: None,
                    image: None,
                    security_group_ids: vec![format!("sg-{r}")],
                    profile: "bench".to_owned(),
                    account_id: ACCOUNT.to_owned(),
                    region: region.clone(),
                    stale: false,
                }
            })
            .collect();
        regions.push(CachedRegion {
            account_id: ACCOUNT.to_owned(),
            region,
            facts: RegionFacts {
                profile: "bench".to_owned(),
                eic_endpoints: Listing::Listed(Vec::new()),
                security_groups: Listing::Listed(Vec::new()),
                ssm: Listing::Listed(Vec::new()),
            },
            hosts,
        });
    }
    let accounts = BTreeMap::from([("bench".to_owned(), ACCOUNT.to_owned())]);
    InventoryCache::new(accounts, regions)
        .save(path)
        .expect("cache written");
}

/// Scrolls the table down a screen per frame, 300 frames, timing each.
fn scroll_frames(harness: &mut Harness<'_, BastionlessApp>) -> Vec<Duration> {
    let table = harness
        .query_by_label("Name")
        .expect("the table has a header")
        .rect()
        .center();
    harness.event(egui::Event::PointerMoved(egui::pos2(
        table.x,
        table.y + 200.0,
    )));
    harness.step();
    (0..300)
        .map(|_| {
            harness.event(egui::Event::MouseWheel {
                unit: egui::MouseWheelUnit::Point,
                delta: egui::vec2(0.0, -600.0),
                modifiers: egui::Modifiers::NONE,
                phase: egui::TouchPhase::Move,
                source: egui::MouseWheelSource::Wheel,
            });
            let started = Instant::now();
            harness.step();
            started.elapsed()
        })
        .collect()
}

/// Types a search a character at a time, timing the frame that shows each result.
fn search_keystrokes(harness: &mut Harness<'_, BastionlessApp>) -> Vec<Duration> {
    let field = harness.get_by_label("Search");
    field.focus();
    harness.run();
    let mut times = Vec::new();
    for _ in 0..10 {
        for c in "web prod".chars() {
            harness.event(egui::Event::Text(c.to_string()));
            let started = Instant::now();
            harness.step();
            times.push(started.elapsed());
        }
        for _ in 0.."web prod".len() {
            harness.key_press(egui::Key::Backspace);
            harness.step();
        }
    }
    harness.run();
    times
}

/// Frames an event loop would draw in `span` of idleness: one whenever egui has asked for a
/// repaint (any request is counted as immediate, so this can only overcount).
fn idle_repaints(harness: &mut Harness<'_, BastionlessApp>, span: Duration) -> u32 {
    harness.remove_cursor();
    harness.run();
    let ctx = harness.ctx.clone();
    let end = Instant::now() + span;
    let mut frames = 0;
    while Instant::now() < end {
        if ctx.has_requested_repaint() {
            harness.step();
            frames += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    frames
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// "mean 1.2 ms, p95 2.0 ms, max 3.1 ms (n=300)".
fn summary(times: &[Duration]) -> String {
    let mut sorted = times.to_vec();
    sorted.sort();
    let mean = sorted.iter().sum::<Duration>() / sorted.len() as u32;
    let p95 = sorted[(sorted.len() * 95 / 100).min(sorted.len() - 1)];
    let max = sorted[sorted.len() - 1];
    format!(
        "mean {:.2} ms, p95 {:.2} ms, max {:.2} ms (n={})",
        ms(mean),
        ms(p95),
        ms(max),
        sorted.len()
    )
}
