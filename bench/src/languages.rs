//! Guests in other languages than Rust, beside the Rust figures of the same run: each
//! language's component size, its cold start compiled and from the cache, its serial
//! trigger rate, and its guest → guest stream at 64 KiB. The functions (`py::bench::*`,
//! `js::bench::*`, `c::bench::*`, twins of the Rust `bench::*`) come from the bench's
//! manifest if it declares them, else from the language's manifest next to it
//! (`guests/python/rill.toml`, ...), built by rill-build as `rill call` builds them.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use rill::manifest::Manifest;
use rill::{Host, HostConfig};

use crate::report::{Report, Row};
use crate::{Options, Scale, median};

/// Runs of each language's stream figure; the median is reported.
const STREAM_RUNS: usize = 3;

/// One guest language's bench functions and targets.
struct Language {
    /// As the rows name it.
    name: &'static str,
    /// Its function ids' prefix: `<prefix>::bench::noop`, `::write`, `::read`.
    prefix: &'static str,
    /// Its manifest, relative to the bench manifest's directory.
    manifest: &'static str,
    /// What building it needs, for the error when it cannot.
    needs: &'static str,
    /// The JSON fields' prefix.
    field: &'static str,
    /// The cached start target, for interpreter-carrying components.
    cached_target: Option<&'static str>,
    /// The 64 KiB stream target.
    stream_target: &'static str,
    /// The most its stream figure moves in one call, if less than the Rust rows'.
    max_stream_bytes: Option<u64>,
}

const LANGUAGES: [Language; 3] = [
    Language {
        name: "Python",
        prefix: "py",
        manifest: "guests/python/rill.toml",
        needs: "python3 with venv, and PyPI for componentize-py",
        field: "python",
        cached_target: Some("≤ 20 ms, ≥ 100×"),
        stream_target: "≥ 1 GB/s",
        // componentize-py 0.25.1's bindings keep the memory of every write's bytes, as
        // componentize-js's do, so one call writes at most about its memory limit (64 MiB
        // by default; `a_python_call_writes_at_most_about_its_memory_limit` pins it).
        max_stream_bytes: Some(32 << 20),
    },
    Language {
        name: "JavaScript",
        prefix: "js",
        manifest: "guests/javascript/rill.toml",
        needs: "node and npm, and the npm registry for componentize-js",
        field: "javascript",
        cached_target: Some("≤ 20 ms, ≥ 100×"),
        stream_target: "≥ 1 GB/s",
        // componentize-js 0.23's bindings never free the copy of a write's bytes, so one
        // call writes at most about its memory limit (64 MiB by default; see
        // guests/javascript/README.md).
        max_stream_bytes: Some(32 << 20),
    },
    Language {
        name: "C",
        prefix: "c",
        manifest: "guests/c/rill.toml",
        needs: "clang-19 with wasi-libc (apt-get install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32)",
        field: "c",
        cached_target: None,
        stream_target: "≥ 0.8× Rust",
        max_stream_bytes: None,
    },
];

/// Every language's rows; `rust` holds the same run's Rust figures (serial trigger rate
/// and 64 KiB guest → guest GB/s) they are set beside.
pub(crate) async fn rows(
    report: &mut Report,
    options: &Options,
    scale: Scale,
    rust: (f64, f64),
) -> anyhow::Result<()> {
    for language in &LANGUAGES {
        language_rows(language, report, options, scale, rust)
            .await
            .with_context(|| format!("the {} rows", language.name))?;
    }
    Ok(())
}

async fn language_rows(
    language: &Language,
    report: &mut Report,
    options: &Options,
    scale: Scale,
    rust: (f64, f64),
) -> anyhow::Result<()> {
    let (name, field) = (language.name, language.field);
    let [noop, write, read] = ["noop", "write", "read"].map(|f| format!("{}::bench::{f}", language.prefix));
    let own = Manifest::from_file(&options.manifest)?;
    let mut manifest = if own.functions.contains_key(&noop) {
        own
    } else {
        let base = options.manifest.parent().unwrap_or(Path::new("."));
        let path = base.join(language.manifest);
        if !path.is_file() {
            eprintln!(
                "note: the {name} rows are left out: no {noop} in the manifest, and no {}",
                path.display()
            );
            return Ok(());
        }
        Manifest::from_file(&path)?
    };
    let bench_prefix = format!("{}::bench::", language.prefix);
    rill_build::build_manifest_for(&mut manifest, |id| id.starts_with(&bench_prefix))
        .with_context(|| format!("cannot build the {name} guests ({} are needed)", language.needs))?;
    let host =
        Host::with_manifest(&manifest, HostConfig::default().with_cache_dir(options.cache_dir.clone()))?;
    for id in [&noop, &write, &read] {
        host.prepare(id).await?;
    }
    let component = manifest
        .functions
        .get(&noop)
        .map(|f| manifest.base_dir.join(&f.component))
        .with_context(|| format!("{} declares {noop}", language.manifest))?;
    let size_mib = std::fs::metadata(&component)?.len() as f64 / (1 << 20) as f64;
    report.row(Row::new(format!("{name} component size"), size_mib, "MiB"));
    report.field(format!("{field}_component_mib"), size_mib);

    let (compiled_ms, loaded_ms) = crate::calls::cold_start_ms(&component).await?;
    report.row(Row::new(format!("{name} cold start, compiling"), compiled_ms, "ms"));
    let cached = Row::new(format!("{name} cold start, from the cache"), loaded_ms, "ms")
        .faster_than("faster than compiling", compiled_ms);
    report.row(match language.cached_target {
        Some(target) => cached.target(target),
        None => cached,
    });
    report.field(format!("{field}_cold_start_compile_ms"), compiled_ms);
    report.field(format!("{field}_cold_start_cached_ms"), loaded_ms);

    let calls = scale.calls() / 10;
    for _ in 0..calls / 10 {
        host.trigger_json(&noop, "{}".into()).await?;
    }
    let start = Instant::now();
    for _ in 0..calls {
        host.trigger_json(&noop, "{}".into()).await?;
    }
    let rate = calls as f64 / start.elapsed().as_secs_f64();
    report.row(Row::new(format!("{name} trigger, serial"), rate, "calls/s").vs("Rust", rust.0));
    report.field(format!("{field}_trigger_serial_per_sec"), rate);

    let total = (scale.stream_bytes() / 4).min(language.max_stream_bytes.unwrap_or(u64::MAX));
    let mut runs = Vec::new();
    for _ in 0..STREAM_RUNS {
        runs.push(crate::streams::stream_between(&host, (&write, &read), total, 64 << 10, 64 << 10).await?);
    }
    let stream = median(&runs);
    report.row(
        Row::new(format!("{name} guest→guest, 64k chunks"), stream, "GB/s")
            .vs("Rust", rust.1)
            .target(language.stream_target),
    );
    report.field(format!("{field}_guest_to_guest_64k_gbps"), stream);
    report.field(format!("{field}_guest_to_guest_64k_vs_rust"), stream / rust.1);
    Ok(())
}
