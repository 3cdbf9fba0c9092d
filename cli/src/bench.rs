//! `rill bench`: rill's speed measured against the physical limits of this machine, in
//! one run, so every figure is read as a ratio to a baseline taken moments before.
//!
//! Baselines: a DRAM `memcpy` (256 MiB buffers), and a host-only channel stream doing the
//! same two copies as the wasm path (guest memory → host chunk, host chunk → guest
//! memory). Measured: guest → broker → guest throughput per chunk size, the `rill call`
//! path from a file, trigger rate and latency for a trivial guest, cold start compiled vs
//! loaded from the cache, and memory (peak RSS added by a stream, cost of idle channels).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use bytes::Bytes;
use clap::Args;
use rill::{ChannelOptions, ComponentSource, Host, HostConfig, Item};
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Print one JSON object with every figure instead of a table.
    #[arg(long)]
    json: bool,
    /// Move 8x less data (for a quick look; ratios are noisier).
    #[arg(long)]
    quick: bool,
    /// The manifest declaring the `bench::*` functions.
    #[arg(long, default_value = "rill.toml", value_name = "PATH")]
    manifest: PathBuf,
}

const CHUNKS: [(&str, usize); 3] = [("4k", 4 << 10), ("64k", 64 << 10), ("1m", 1 << 20)];

/// Streams of each kind per chunk size. Where the writer and the reader run (one core or
/// two) changes a stream's speed by up to 3× on a small machine, so one run says little:
/// the report gives the median and every run.
const STREAM_RUNS: usize = 5;

/// The median of `runs` (stream speeds, cold-start times).
fn median_f64(runs: &[f64]) -> f64 {
    let mut sorted = runs.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// One row of the report.
struct Row {
    name: String,
    value: f64,
    unit: &'static str,
    baseline: Option<Baseline>,
    target: Option<String>,
}

/// What a row is compared with, measured in the same run.
struct Baseline {
    name: &'static str,
    value: f64,
    /// For times: the ratio shown is how many times faster than the baseline.
    lower_is_better: bool,
}

fn more(name: &'static str, value: f64) -> Option<Baseline> {
    Some(Baseline { name, value, lower_is_better: false })
}

pub(crate) async fn run(args: BenchArgs) -> ExitCode {
    match bench(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(crate::exit::HOST)
        }
    }
}

fn gbps(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / took.as_secs_f64() / 1e9
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Reset the process's peak RSS (`VmHWM`) to its current RSS, which is returned (KiB), so
/// that a later `VmHWM` is the peak of what ran in between. Where the peak cannot be
/// reset, returns the peak so far: growth beyond it is still measured, but a stream that
/// stays under an earlier peak then counts as adding nothing.
fn reset_peak_rss() -> u64 {
    match std::fs::write("/proc/self/clear_refs", "5") {
        Ok(()) => rss_kib("VmRSS:"),
        Err(err) => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                eprintln!("warning: cannot reset the peak RSS ({err}); peak RSS figures may read low");
            });
            rss_kib("VmHWM:")
        }
    }
}

/// DRAM bandwidth: the median of five copies between two buffers far larger than cache.
fn memcpy_gbps(bytes: usize) -> f64 {
    let src = vec![0x5au8; bytes];
    let mut dst = vec![0u8; bytes];
    let runs: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            dst.copy_from_slice(std::hint::black_box(&src));
            gbps(bytes as u64, start.elapsed())
        })
        .collect();
    std::hint::black_box(&dst);
    median_f64(&runs)
}

/// The wasm path's two copies without wasm: each write copies from the writer's buffer
/// straight into chunks of the size that fits (as a guest's `write` does from guest
/// memory), and the reader copies each chunk out into a reused buffer (as lowering into
/// guest memory does).
async fn host_two_copies_gbps(host: &Host, total: u64, chunk: usize) -> anyhow::Result<f64> {
    let channel = host.create_channel(&ChannelOptions::default())?;
    let (mut writer, mut reader) = (channel.writer, channel.reader);
    let source: Vec<u8> = (0..chunk).map(|i| i as u8).collect();
    let start = Instant::now();
    let produce = tokio::spawn(async move {
        let mut left = total;
        while left > 0 {
            let write = &source[..left.min(chunk as u64) as usize];
            let mut offset = 0;
            while offset < write.len() {
                let end = offset + writer.ready().await?.min(write.len() - offset);
                writer.write(Bytes::copy_from_slice(&write[offset..end])).await?;
                offset = end;
            }
            left -= write.len() as u64;
        }
        writer.close()
    });
    let mut sink = vec![0u8; chunk];
    let mut read = 0u64;
    while let Some(item) = reader.read(chunk).await? {
        if let Item::Bytes(bytes) = item {
            sink[..bytes.len()].copy_from_slice(&bytes);
            read += bytes.len() as u64;
        }
    }
    produce.await??;
    std::hint::black_box(&sink);
    anyhow::ensure!(read == total, "host stream lost bytes");
    Ok(gbps(total, start.elapsed()))
}

/// Guest → broker → guest: `bench::write` and `bench::read` in two instances.
async fn guest_to_guest_gbps(host: &Host, total: u64, chunk: usize) -> anyhow::Result<f64> {
    let channel = host.create_channel(&ChannelOptions::default())?;
    let write = json!({ "writer": channel.writer_ref, "total": total, "chunk": chunk });
    let read = json!({ "reader": channel.reader_ref, "chunk": chunk });
    let start = Instant::now();
    // Two calls from two callers, as two functions would run: each on its own task.
    let (written, read) = tokio::join!(
        tokio::spawn(host.trigger("bench::write", &write)),
        tokio::spawn(host.trigger("bench::read", &read))
    );
    let took = start.elapsed();
    written??;
    anyhow::ensure!(read??["read"] == total, "guest stream lost bytes");
    Ok(gbps(total, took))
}

/// The `rill call --reader-from` path: a file streamed by the host into a guest.
async fn call_path_gbps(host: &Host, total: u64) -> anyhow::Result<f64> {
    let dir = tempdir()?;
    let path = dir.join("bench-input.bin");
    {
        let block = vec![0xa5u8; 1 << 20];
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for _ in 0..total >> 20 {
            std::io::Write::write_all(&mut file, &block)?;
        }
        std::io::Write::flush(&mut file)?;
    }
    let channel = host.create_channel(&ChannelOptions::default())?;
    let read = json!({ "reader": channel.reader_ref, "chunk": rill::broker::MAX_CHUNK_BYTES });
    let start = Instant::now();
    let input = crate::call::Input::File(std::fs::File::open(&path)?);
    // As `rill call` does: the file is fed on its own task while the call runs.
    let feed = tokio::spawn(crate::call::feed(input, channel.writer));
    let read = host.trigger("bench::read", &read).await;
    let fed = feed.await;
    let took = start.elapsed();
    fed??;
    anyhow::ensure!(read?["read"] == total, "call path lost bytes");
    std::fs::remove_dir_all(&dir).ok();
    Ok(gbps(total, took))
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("rill-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Serial trigger latencies (fresh store + instantiate + call + drop each time).
async fn trigger_latencies(host: &Host, calls: usize) -> anyhow::Result<(f64, Vec<Duration>)> {
    for _ in 0..calls / 10 {
        host.trigger_json("bench::noop", "{}".into()).await?;
    }
    let mut latencies = Vec::with_capacity(calls);
    let start = Instant::now();
    for _ in 0..calls {
        let t = Instant::now();
        host.trigger_json("bench::noop", "{}".into()).await?;
        latencies.push(t.elapsed());
    }
    let rate = calls as f64 / start.elapsed().as_secs_f64();
    latencies.sort();
    Ok((rate, latencies))
}

/// Triggers from one task per core at once.
async fn trigger_parallel_rate(host: &Host, calls: usize) -> anyhow::Result<f64> {
    let tasks = std::thread::available_parallelism().map_or(2, usize::from);
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let host = host.clone();
            tokio::spawn(async move {
                for _ in 0..calls / tasks {
                    host.trigger_json("bench::noop", "{}".into()).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for handle in handles {
        handle.await??;
    }
    Ok((calls / tasks * tasks) as f64 / start.elapsed().as_secs_f64())
}

/// Cold starts of a component: compiled into an empty cache, and loaded from that cache,
/// each in a new host (the host itself is built before the clock starts). The median of
/// [`COLD_STARTS`] runs of each, in milliseconds.
async fn cold_start(component: &std::path::Path) -> anyhow::Result<(f64, f64)> {
    let dir = tempdir()?;
    let host = |cache: PathBuf| {
        let mut config = HostConfig::default();
        config.cache_dir = Some(cache);
        Host::builder()
            .config(config)
            .function("bench::noop", ComponentSource::File(component.to_path_buf()))
            .build()
    };
    let time_prepare = |host: Host| async move {
        let start = Instant::now();
        host.prepare("bench::noop").await?;
        anyhow::Ok(start.elapsed().as_secs_f64() * 1e3)
    };
    let mut compiled = Vec::new();
    for run in 0..COLD_STARTS {
        compiled.push(time_prepare(host(dir.join(format!("empty-{run}")))?).await?);
    }
    let mut loaded = Vec::new();
    for _ in 0..COLD_STARTS {
        loaded.push(time_prepare(host(dir.join("empty-0"))?).await?);
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok((median_f64(&compiled), median_f64(&loaded)))
}

/// Cold starts measured of each kind.
const COLD_STARTS: usize = 5;

async fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    let scale: u64 = if args.quick { 8 } else { 1 };
    let stream_total: u64 = (1 << 30) / scale;
    let calls = 20_000 / scale as usize;
    let mut config = HostConfig::default();
    config.cache_dir = crate::default_cache_dir();
    let host = Host::from_manifest_with(&args.manifest, config).context("cannot start the host")?;
    for id in ["bench::noop", "bench::write", "bench::read", "bench::call_loop"] {
        host.prepare(id).await.with_context(|| format!("the manifest must declare {id}"))?;
    }
    let manifest = rill::manifest::Manifest::from_file(&args.manifest)?;
    let component = match manifest.functions.get("bench::noop").map(|f| manifest.source(f)) {
        Some(ComponentSource::Crate(dir)) => rill::rust_guest::build(&dir)?,
        Some(ComponentSource::File(path)) => path,
        _ => return Err(anyhow!("bench::noop has no component")),
    };

    let mut rows = Vec::new();
    let memcpy = memcpy_gbps((256 << 20) / scale as usize);
    rows.push(Row {
        name: "memcpy (DRAM)".into(),
        value: memcpy,
        unit: "GB/s",
        baseline: None,
        target: None,
    });
    let mut report = serde_json::Map::new();
    report.insert("memcpy_gbps".into(), json!(memcpy));

    let targets = [("4k", 0.35), ("64k", 0.8), ("1m", 0.7)];
    for ((label, chunk), (_, target)) in CHUNKS.iter().zip(targets) {
        // Runs alternate between the baseline and the guest path, so both see the same
        // machine; each figure is the median of its runs.
        let (mut host_runs, mut guest_runs) = (Vec::new(), Vec::new());
        let mut peak_added_mib = 0.0f64;
        for _ in 0..STREAM_RUNS {
            host_runs.push(host_two_copies_gbps(&host, stream_total, *chunk).await?);
            let resident_before = reset_peak_rss();
            guest_runs.push(guest_to_guest_gbps(&host, stream_total, *chunk).await?);
            let added = rss_kib("VmHWM:").saturating_sub(resident_before) as f64 / 1024.0;
            peak_added_mib = peak_added_mib.max(added);
        }
        let (host_copy, guest) = (median_f64(&host_runs), median_f64(&guest_runs));
        rows.push(Row {
            name: format!("host-only 2 copies, {label} chunks"),
            value: host_copy,
            unit: "GB/s",
            baseline: more("memcpy", memcpy),
            target: None,
        });
        rows.push(Row {
            name: format!("guest→guest, {label} chunks"),
            value: guest,
            unit: "GB/s",
            baseline: more("memcpy", memcpy),
            target: Some(format!("≥ {target}×")),
        });
        report.insert(format!("host_two_copies_{label}_gbps"), json!(host_copy));
        report.insert(format!("guest_to_guest_{label}_gbps"), json!(guest));
        report.insert(format!("guest_to_guest_{label}_vs_memcpy"), json!(guest / memcpy));
        report.insert(format!("guest_to_guest_{label}_vs_host_two_copies"), json!(guest / host_copy));
        report.insert(format!("guest_to_guest_{label}_peak_rss_added_mib"), json!(peak_added_mib));
        if *label == "1m" {
            rows.push(Row {
                name: format!("peak RSS added by a {label} stream"),
                value: peak_added_mib,
                unit: "MiB",
                baseline: None,
                target: Some("≤ 16".into()),
            });
        }
        report.insert(format!("host_two_copies_{label}_runs_gbps"), json!(host_runs));
        report.insert(format!("guest_to_guest_{label}_runs_gbps"), json!(guest_runs));
    }

    let call_path = call_path_gbps(&host, (256 << 20) / scale).await?;
    rows.push(Row {
        name: "rill call path (file → guest)".into(),
        value: call_path,
        unit: "GB/s",
        baseline: more("memcpy", memcpy),
        target: None,
    });
    report.insert("call_path_gbps".into(), json!(call_path));

    let (serial, latencies) = trigger_latencies(&host, calls).await?;
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64() * 1e6
    };
    let (p50, p99) = (pct(0.50), pct(0.99));
    let parallel = trigger_parallel_rate(&host, calls).await?;
    rows.push(Row {
        name: "trigger, serial".into(),
        value: serial,
        unit: "calls/s",
        baseline: None,
        target: Some("≥ 40000".into()),
    });
    rows.push(Row { name: "trigger p50".into(), value: p50, unit: "µs", baseline: None, target: None });
    rows.push(Row {
        name: "trigger p99".into(),
        value: p99,
        unit: "µs",
        baseline: None,
        target: Some("≤ 100".into()),
    });
    rows.push(Row {
        name: "trigger, all cores".into(),
        value: parallel,
        unit: "calls/s",
        baseline: more("serial", serial),
        target: None,
    });
    report.insert("trigger_serial_per_sec".into(), json!(serial));
    report.insert("trigger_p50_us".into(), json!(p50));
    report.insert("trigger_p99_us".into(), json!(p99));
    report.insert("trigger_parallel_per_sec".into(), json!(parallel));

    // Function to function: a guest calling `bench::noop` in a loop (iii: ~4,300/s).
    let start = Instant::now();
    host.trigger("bench::call_loop", &json!({ "count": calls })).await?;
    let guest_calls = calls as f64 / start.elapsed().as_secs_f64();
    rows.push(Row {
        name: "trigger, function → function".into(),
        value: guest_calls,
        unit: "calls/s",
        baseline: more("host → function", serial),
        target: None,
    });
    report.insert("trigger_function_to_function_per_sec".into(), json!(guest_calls));

    let (compiled_ms, loaded_ms) = cold_start(&component).await?;
    rows.push(Row {
        name: "cold start, compiling".into(),
        value: compiled_ms,
        unit: "ms",
        baseline: None,
        target: None,
    });
    rows.push(Row {
        name: "cold start, from the cache".into(),
        value: loaded_ms,
        unit: "ms",
        baseline: Some(Baseline { name: "faster than compiling", value: compiled_ms, lower_is_better: true }),
        target: Some("≥ 100×".into()),
    });
    report.insert("cold_start_compile_ms".into(), json!(compiled_ms));
    report.insert("cold_start_cached_ms".into(), json!(loaded_ms));
    report.insert("cache_speedup".into(), json!(compiled_ms / loaded_ms));

    let before = rss_kib("VmRSS:");
    let idle: Vec<_> = (0..10_000)
        .map(|_| host.create_channel(&ChannelOptions::buffer_bytes(rill::broker::MIN_BUFFER_BYTES)))
        .collect::<Result<_, _>>()?;
    let idle_mib = rss_kib("VmRSS:").saturating_sub(before) as f64 / 1024.0;
    drop(idle);
    rows.push(Row {
        name: "10,000 idle channels".into(),
        value: idle_mib,
        unit: "MiB",
        baseline: None,
        target: Some("≤ 10".into()),
    });
    report.insert("idle_channels_10k_mib".into(), json!(idle_mib));

    if args.json {
        println!("{}", Value::Object(report));
    } else {
        println!(
            "{:<36} {:>12} {:<8} {:>18} {:>14}",
            "measure", "value", "unit", "ratio to baseline", "target"
        );
        for row in rows {
            let ratio = row
                .baseline
                .map(|b| {
                    let ratio = if b.lower_is_better { b.value / row.value } else { row.value / b.value };
                    format!("{ratio:.2}× {}", b.name)
                })
                .unwrap_or_default();
            println!(
                "{:<36} {:>12.2} {:<8} {:>18} {:>14}",
                row.name,
                row.value,
                row.unit,
                ratio,
                row.target.unwrap_or_default()
            );
        }
    }
    Ok(())
}
