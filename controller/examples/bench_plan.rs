//! Benchmark of the dry-run path on the simulator: observe + plan (+ render) against a sim
//! directory with 64 nodes and many guests (issue 3 §8; results in BENCHMARKS.md).
//!
//! ```sh
//! cargo run --release -p pve-gitops --example bench_plan              # 10,000 and 100,000
//! cargo run --release -p pve-gitops --example bench_plan -- 10000     # one size
//! BENCH_RUNS=30 BENCH_DIR=/var/tmp cargo run --release -p pve-gitops --example bench_plan
//! BENCH_KEEP=1 BENCH_REUSE=1 ...   # keep the directories / reuse them (for profiling)
//! ```
//!
//! The directory is built the way an operator would: `sim init` with 64 hosts, a 64-node
//! cluster formed by reconciling a manifest (create + 63 joins through the simulator), then
//! the guests written as config files spread over the nodes (qemu and lxc, sizes 512 MiB to
//! 16 GiB, two thirds running), then `.vmlist` re-rendered. Two manifests are timed:
//!
//! - `in-sync`: the manifest matches (migration settings, 1,000 guests placed where they
//!   are): the daemon's steady state;
//! - `remove-node`: pve64 is `state: absent` (its ~1/64 of the guests are evacuated, spread
//!   by free memory) and 100 guests move: a plan with a few hundred steps.
//!
//! The last column is the I/O floor: listing the guest directories and reading every guest
//! config with plain std::fs (no parsing), i.e. what any file-based observe must pay.
//!
//! Each timing is the median of BENCH_RUNS runs (default 15; first run discarded as warm-up).
//! The page cache is warm, as it is for a daemon re-reading /etc/pve (a FUSE file system).

use pve_gitops::plan::plan;
use pve_gitops::reconcile::{self, Mode};
use pve_gitops::render;
use pve_gitops::target::sim::{self, InitOptions, SimState, SimTarget, EXTRA_FILE};
use pve_gitops::target::Target;
use pve_gitops_schema::pmxcfs::{GuestConfig, GuestType};
use pve_gitops_schema::spec::Cluster;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const NODES: usize = 64;

fn manifest(absent: Option<usize>, guests: &[(u32, &str, usize)]) -> Cluster {
    let mut y = String::from(
        "apiVersion: pve-gitops.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: bench\nspec:\n  nodes:\n",
    );
    for i in 1..=NODES {
        let _ = write!(
            y,
            "    - name: pve{i}\n      nodeid: {i}\n      ring0_addr: 10.10.{}.{}\n      addresses: [10.1.{}.{}/16]\n",
            i / 200,
            i % 200 + 1,
            i / 200,
            i % 200 + 1
        );
        if absent == Some(i) {
            y.push_str("      state: absent\n");
        }
    }
    y.push_str("  migration:\n    type: secure\n    network: 10.1.0.0/16\n    max_workers: 4\n");
    if !guests.is_empty() {
        y.push_str("  guests:\n");
        for (vmid, t, node) in guests {
            let _ = writeln!(y, "    - {{vmid: {vmid}, type: {t}, node: pve{node}}}");
        }
    }
    match pve_gitops_schema::validate::parse_cluster("bench.yaml", &y) {
        Ok((c, _)) => c,
        Err(d) => panic!("bench manifest invalid: {d:?}"),
    }
}

/// Guest `i` (0-based): vmid, type, node (1-based), memory, running.
fn guest(i: usize) -> (u32, GuestType, usize, u64, bool) {
    let vmid = 100 + i as u32;
    let t = if i % 5 == 4 {
        GuestType::Lxc
    } else {
        GuestType::Qemu
    };
    let node = i % NODES + 1;
    let memory = [512u64, 1024, 2048, 4096, 8192, 16384][i % 6];
    (vmid, t, node, memory, i % 3 != 2)
}

fn build(dir: &Path, guests: usize) {
    let t0 = Instant::now();
    let _ = std::fs::remove_dir_all(dir);
    let names: Vec<String> = (1..=NODES).map(|i| format!("pve{i}")).collect();
    sim::init(
        dir,
        &InitOptions {
            names,
            guests: 0,
            memory_mib: 1 << 20,
            force: false,
        },
    )
    .expect("sim init");
    let mut t = SimTarget::new(dir);
    let r = reconcile::run(
        &manifest(None, &[]),
        &mut t,
        Mode::Apply { max_steps: 1000 },
        &|| false,
        &mut |_| {},
    )
    .expect("form the cluster");
    assert_eq!(r.outcome, reconcile::Outcome::InSync, "cluster formed");
    let mut state = SimState::load(dir).expect("state").expect("extra file");
    for i in 0..guests {
        let (vmid, gtype, node, memory, running) = guest(i);
        let sub = match gtype {
            GuestType::Qemu => "qemu-server",
            _ => "lxc",
        };
        let path = dir
            .join("nodes")
            .join(format!("pve{node}"))
            .join(sub)
            .join(format!("{vmid}.conf"));
        let text = GuestConfig::render_minimal(gtype, memory, 2, Some(&format!("g{vmid}")))
            .expect("guest config");
        std::fs::write(path, text).expect("write guest");
        if running {
            state.running_guests.insert(vmid);
        }
    }
    std::fs::write(dir.join(EXTRA_FILE), state.render()).expect("extra file");
    // A no-op power change re-renders .members and .vmlist, as after any change.
    sim::set_power(dir, "pve1", true).expect("re-render");
    eprintln!(
        "built {} ({NODES} nodes, {guests} guests) in {:.1} s",
        dir.display(),
        t0.elapsed().as_secs_f64()
    );
}

/// A stopwatch mark.
#[derive(Clone, Copy)]
struct Mark(Instant);

impl Mark {
    fn now() -> Mark {
        Mark(Instant::now())
    }

    fn since(self, later: Mark) -> Duration {
        later.0 - self.0
    }
}

/// The I/O floor of observe: list every `nodes/*/{qemu-server,lxc}` directory and read every
/// guest config into one reused buffer with plain std::fs, parsing nothing.
fn io_floor(dir: &Path) -> Duration {
    use std::io::Read as _;
    let start = Mark::now();
    let mut buf = Vec::with_capacity(4096);
    let mut n = 0usize;
    for node in std::fs::read_dir(dir.join("nodes")).expect("nodes") {
        let node = node.expect("entry").path();
        for sub in ["qemu-server", "lxc"] {
            let Ok(rd) = std::fs::read_dir(node.join(sub)) else {
                continue;
            };
            for e in rd {
                let e = e.expect("entry");
                buf.clear();
                std::fs::File::open(e.path())
                    .and_then(|mut f| f.read_to_end(&mut buf))
                    .expect("read");
                n += buf.len();
            }
        }
    }
    std::hint::black_box(n);
    start.since(Mark::now())
}

/// Per measured part: the wall-clock time of every run.
#[derive(Default)]
struct Times {
    floor: Vec<Duration>,
    observe: Vec<Duration>,
    plan: Vec<Duration>,
    render: Vec<Duration>,
    total: Vec<Duration>,
    steps: usize,
}

/// (median, min) in ms.
fn stats(v: &[Duration]) -> (f64, f64) {
    let mut w = v.to_vec();
    w.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(w[w.len() / 2]), ms(w[0]))
}

fn time(dir: &Path, cluster: &Cluster, runs: usize) -> Times {
    let mut t = Times::default();
    for run in 0..=runs {
        let floor = io_floor(dir);
        let start = Mark::now();
        let mut target = SimTarget::open(dir).expect("open");
        let observed = target.observe().expect("observe");
        let a = Mark::now();
        let p = plan(cluster, &observed);
        let b = Mark::now();
        let text = render::plan_text(&p, &cluster.metadata.name);
        let json =
            serde_json::to_string(&render::plan_json(&p, "sim:bench", &cluster.metadata.name))
                .expect("json");
        let c = Mark::now();
        std::hint::black_box((&text, &json));
        assert!(p.errors.is_empty(), "plan refused: {:?}", p.errors);
        if run == 0 {
            t.steps = p.steps.len();
            continue; // warm-up
        }
        t.floor.push(floor);
        t.observe.push(start.since(a));
        t.plan.push(a.since(b));
        t.render.push(b.since(c));
        t.total.push(start.since(c));
    }
    t
}

fn main() {
    let sizes: Vec<usize> = match std::env::args().nth(1) {
        Some(s) => vec![s.parse().expect("guest count")],
        None => vec![10_000, 100_000],
    };
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let base: PathBuf = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    println!("Each cell: median / min wall-clock ms.\n");
    println!(
        "| guests | manifest | steps | observe | plan | render | dry run (observe+plan+render) | I/O floor (1 thread) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    let mut totals = Vec::new();
    for g in &sizes {
        let dir = base.join(format!("pve-gitops-bench-{g}"));
        if std::env::var_os("BENCH_REUSE").is_none() || !dir.join(EXTRA_FILE).exists() {
            build(&dir, *g);
        }
        // 1,000 guests listed where they are (in sync), and the same list with 100 moved.
        let listed: Vec<(u32, &str, usize)> = (0..(*g).min(1000))
            .map(|i| {
                let (vmid, t, node, _, _) = guest(i);
                (vmid, if t == GuestType::Lxc { "lxc" } else { "qemu" }, node)
            })
            .collect();
        let moved: Vec<(u32, &str, usize)> = listed
            .iter()
            .enumerate()
            .map(|(i, (v, t, n))| {
                if i < 100 && *n != NODES {
                    (*v, *t, n % (NODES - 1) + 1)
                } else {
                    (*v, *t, *n)
                }
            })
            .filter(|(_, _, n)| *n != NODES)
            .collect();
        for (label, cluster) in [
            ("in-sync", manifest(None, &listed)),
            ("remove-node", manifest(Some(NODES), &moved)),
        ] {
            let t = time(&dir, &cluster, runs);
            let cell = |v: &[Duration]| {
                let (m, lo) = stats(v);
                format!("{m:.1} / {lo:.1}")
            };
            println!(
                "| {g} | {label} | {} | {} | {} | {} | {} | {} |",
                t.steps,
                cell(&t.observe),
                cell(&t.plan),
                cell(&t.render),
                cell(&t.total),
                cell(&t.floor),
            );
            totals.push((*g, label, stats(&t.total)));
        }
        if std::env::var_os("BENCH_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    if sizes.len() == 2 {
        for label in ["in-sync", "remove-node"] {
            let f = |g: usize| {
                totals
                    .iter()
                    .find(|(s, l, _)| *s == g && *l == label)
                    .map(|(_, _, d)| *d)
                    .unwrap_or((f64::NAN, f64::NAN))
            };
            let (a, b) = (f(sizes[0]), f(sizes[1]));
            println!(
                "\n{label}: growth {}k -> {}k guests (10x): median x{:.2}, min x{:.2}",
                sizes[0] / 1000,
                sizes[1] / 1000,
                b.0 / a.0,
                b.1 / a.1
            );
        }
    }
    println!("\n(median of {runs} runs each, after one warm-up run)");
}
