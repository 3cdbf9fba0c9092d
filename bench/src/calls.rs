//! Call figures: trigger rate and latency for a trivial guest, function-to-function
//! calls, and cold starts compiled vs loaded from the cache.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rill::{ComponentSource, Host, HostConfig};
use serde_json::json;

use crate::report::{Report, Row};
use crate::{Scale, median};

/// Cold starts measured of each kind.
const COLD_STARTS: usize = 5;

/// `bench::noop` triggered serially (rate, p50, p99) and from one task per core. Returns
/// the serial rate, the baseline of function-to-function calls.
pub(crate) async fn triggers(report: &mut Report, host: &Host, scale: Scale) -> anyhow::Result<f64> {
    let (serial, latencies) = trigger_latencies(host, scale.calls()).await?;
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64() * 1e6
    };
    let (p50, p99) = (pct(0.50), pct(0.99));
    let parallel = trigger_parallel_rate(host, scale.calls()).await?;
    report.row(Row::new("trigger, serial", serial, "calls/s").target("≥ 40000"));
    report.row(Row::new("trigger p50", p50, "µs"));
    report.row(Row::new("trigger p99", p99, "µs").target("≤ 100"));
    report.row(Row::new("trigger, all cores", parallel, "calls/s").vs("serial", serial));
    report.field("trigger_serial_per_sec", serial);
    report.field("trigger_p50_us", p50);
    report.field("trigger_p99_us", p99);
    report.field("trigger_parallel_per_sec", parallel);
    Ok(serial)
}

/// A guest calling `bench::noop` in a loop (`bench::call_loop`; iii: ~4,300/s), against
/// the `serial` host → function rate.
pub(crate) async fn function_to_function(
    report: &mut Report,
    host: &Host,
    scale: Scale,
    serial: f64,
) -> anyhow::Result<()> {
    let calls = scale.calls();
    let start = Instant::now();
    host.trigger("bench::call_loop", &json!({ "count": calls })).await?;
    let guest_calls = calls as f64 / start.elapsed().as_secs_f64();
    report
        .row(Row::new("trigger, function → function", guest_calls, "calls/s").vs("host → function", serial));
    report.field("trigger_function_to_function_per_sec", guest_calls);
    Ok(())
}

/// Starting `component` by compiling it, and by loading it from the cache.
pub(crate) async fn cold_start(report: &mut Report, component: &Path) -> anyhow::Result<()> {
    let (compiled_ms, loaded_ms) = cold_start_ms(component).await?;
    report.row(Row::new("cold start, compiling", compiled_ms, "ms"));
    report.row(
        Row::new("cold start, from the cache", loaded_ms, "ms")
            .faster_than("faster than compiling", compiled_ms)
            .target("≥ 100×"),
    );
    report.field("cold_start_compile_ms", compiled_ms);
    report.field("cold_start_cached_ms", loaded_ms);
    report.field("cache_speedup", compiled_ms / loaded_ms);
    Ok(())
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
pub(crate) async fn cold_start_ms(component: &Path) -> anyhow::Result<(f64, f64)> {
    let dir = tempfile::tempdir()?;
    let host = |cache: PathBuf| {
        let config = HostConfig::default().with_cache_dir(Some(cache));
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
        compiled.push(time_prepare(host(dir.path().join(format!("empty-{run}")))?).await?);
    }
    let mut loaded = Vec::new();
    for _ in 0..COLD_STARTS {
        loaded.push(time_prepare(host(dir.path().join("empty-0"))?).await?);
    }
    Ok((median(&compiled), median(&loaded)))
}
