//! Guests in other languages than Rust, beside the Rust figures of the same run: each
//! language's component size, its cold start compiled and from the cache, its serial
//! trigger rate, and its guest → guest stream at 64 KiB. The functions (`py::bench::*`)
//! come from the bench's manifest if it declares them, else from the language's manifest
//! next to it (`guests/python/rill.toml`), built by rill-build as `rill call` builds
//! them.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use rill::manifest::Manifest;
use rill::{Host, HostConfig};

use crate::report::{Report, Row};
use crate::{Options, Scale, median};

/// Runs of the Python stream figure; the median is reported.
const STREAM_RUNS: usize = 3;

/// The Python rows; `rust` holds the same run's Rust figures (serial trigger rate and
/// 64 KiB guest → guest GB/s) they are set beside.
pub(crate) async fn python(
    report: &mut Report,
    options: &Options,
    scale: Scale,
    rust: (f64, f64),
) -> anyhow::Result<()> {
    // The bench's manifest, if it declares the Python bench functions, else the Python
    // guests' manifest next to it (the repository's layout).
    let own = Manifest::from_file(&options.manifest)?;
    let mut manifest = if own.functions.contains_key("py::bench::noop") {
        own
    } else {
        let base = options.manifest.parent().unwrap_or(Path::new("."));
        let path = base.join("guests/python/rill.toml");
        if !path.is_file() {
            eprintln!(
                "note: the Python rows are left out: no py::bench::noop in the manifest, and no {}",
                path.display()
            );
            return Ok(());
        }
        Manifest::from_file(&path)?
    };
    rill_build::build_manifest(&mut manifest)
        .context("cannot build the Python guests (python3, venv and PyPI are needed)")?;
    let host =
        Host::with_manifest(&manifest, HostConfig::default().with_cache_dir(options.cache_dir.clone()))?;
    for id in ["py::bench::noop", "py::bench::write", "py::bench::read"] {
        host.prepare(id).await?;
    }
    let component = manifest
        .functions
        .get("py::bench::noop")
        .map(|f| manifest.base_dir.join(&f.component))
        .context("guests/python/rill.toml declares py::bench::noop")?;
    let size_mib = std::fs::metadata(&component)?.len() as f64 / (1 << 20) as f64;
    report.row(Row::new("Python component size", size_mib, "MiB"));
    report.field("python_component_mib", size_mib);

    let (compiled_ms, loaded_ms) = crate::calls::cold_start_ms(&component).await?;
    report.row(Row::new("Python cold start, compiling", compiled_ms, "ms"));
    report.row(
        Row::new("Python cold start, from the cache", loaded_ms, "ms")
            .faster_than("faster than compiling", compiled_ms)
            .target("≤ 20 ms, ≥ 100×"),
    );
    report.field("python_cold_start_compile_ms", compiled_ms);
    report.field("python_cold_start_cached_ms", loaded_ms);

    let calls = scale.calls() / 10;
    for _ in 0..calls / 10 {
        host.trigger_json("py::bench::noop", "{}".into()).await?;
    }
    let start = Instant::now();
    for _ in 0..calls {
        host.trigger_json("py::bench::noop", "{}".into()).await?;
    }
    let rate = calls as f64 / start.elapsed().as_secs_f64();
    report.row(Row::new("Python trigger, serial", rate, "calls/s").vs("Rust", rust.0));
    report.field("python_trigger_serial_per_sec", rate);

    let total = scale.stream_bytes() / 4;
    let mut runs = Vec::new();
    for _ in 0..STREAM_RUNS {
        let ids = ("py::bench::write", "py::bench::read");
        runs.push(crate::streams::stream_between(&host, ids, total, 64 << 10, 64 << 10).await?);
    }
    let stream = median(&runs);
    report.row(
        Row::new("Python guest→guest, 64k chunks", stream, "GB/s").vs("Rust", rust.1).target("≥ 1 GB/s"),
    );
    report.field("python_guest_to_guest_64k_gbps", stream);
    report.field("python_guest_to_guest_64k_vs_rust", stream / rust.1);
    Ok(())
}
