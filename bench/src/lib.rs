//! # rill-bench: rill's speed against this machine's limits
//!
//! The measuring code behind `rill bench`, kept out of the `rill` binary's crate: the
//! CLI parses the flags, calls [`run`] and prints the [`Report`].
//!
//! Everything is measured in one process and one run, so each figure reads as a ratio to
//! a baseline taken moments before (the machines rill is developed on are shared and
//! noisy: compare ratios, not absolute numbers). The scenarios, in the order they run:
//!
//! - **Baselines**: a DRAM `memcpy` (256 MiB buffers), and per chunk size a host-only
//!   channel stream doing the same two copies as the wasm path (guest memory → host
//!   chunk, host chunk → guest memory).
//! - **Streams**: guest → broker → guest throughput per chunk size, alternating with the
//!   host-only baseline, and the peak RSS a stream adds; the `rill call --reader-from`
//!   path (a file fed into a guest by [`rill::pipe::feed_file`]).
//! - **Calls**: trigger rate and latency for a trivial guest, serially and from one task
//!   per core, and a guest calling a function in a loop.
//! - **Cold start**: compiling a component vs loading it from the cache of compiled
//!   components.
//! - **Memory**: the resident size of 10,000 idle channels.
//! - **Server**: `rill serve` over loopback: a WebSocket client's stream into a wasm
//!   function and a wasm function's stream out to a client (beside a same-run loopback
//!   TCP copy), and serial call round trips through the worker protocol and plain HTTP.
//! - **Server memory**: the RSS `rill serve` (a child process running this binary) adds
//!   for 10,000 idle channel WebSockets, and at its peak while a 1 GiB stream runs.
//!
//! The guests are the `bench::*` functions of the manifest (`rill.toml` declares them,
//! from `guests/rust/examples/bench`). This is a measuring tool, not an API to build on:
//! its errors are reported, not handled, so it uses `anyhow` as the CLI does.

#![deny(missing_docs)]

mod calls;
mod languages;
mod memory;
mod report;
mod server;
mod server_memory;
mod streams;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow};
use rill::manifest::Manifest;
use rill::{ComponentSource, Host, HostConfig};

pub use report::Report;

/// What [`run`] measures with.
#[derive(Debug, Clone)]
pub struct Options {
    /// Move 8× less data (for a quick look; ratios are noisier).
    pub quick: bool,
    /// The manifest declaring the `bench::noop`, `bench::write`, `bench::read` and
    /// `bench::call_loop` functions.
    pub manifest: PathBuf,
    /// Where the host keeps compiled components (see [`HostConfig::cache_dir`]). The cold
    /// start scenario uses caches of its own.
    pub cache_dir: Option<PathBuf>,
}

/// How much work a run does: the full amounts, or 8× less with [`Options::quick`].
#[derive(Debug, Clone, Copy)]
struct Scale {
    divisor: u64,
}

impl Scale {
    /// Bytes of each guest → guest and host-only stream.
    fn stream_bytes(self) -> u64 {
        (1 << 30) / self.divisor
    }

    /// Bytes of the `memcpy` buffers and of the file streamed on the call path.
    fn copy_bytes(self) -> u64 {
        (256 << 20) / self.divisor
    }

    /// Calls of each trigger scenario.
    fn calls(self) -> usize {
        20_000 / self.divisor as usize
    }
}

/// The functions every scenario calls.
const FUNCTIONS: [&str; 4] = ["bench::noop", "bench::write", "bench::read", "bench::call_loop"];

/// Run every scenario and return the figures.
///
/// # Errors
///
/// The host cannot start from the manifest, a `bench::*` function is missing or fails,
/// or a stream loses bytes.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let scale = Scale { divisor: if options.quick { 8 } else { 1 } };
    let config = HostConfig::default().with_cache_dir(options.cache_dir.clone());
    let mut manifest = Manifest::from_file(&options.manifest).context("cannot read the manifest")?;
    // The Rust `bench::*` guests; the language rows build their own.
    rill_build::build_manifest_for(&mut manifest, |id| FUNCTIONS.contains(&id))?;
    let host = Host::with_manifest(&manifest, config).context("cannot start the host")?;
    for id in FUNCTIONS {
        host.prepare(id).await.with_context(|| format!("the manifest must declare {id}"))?;
    }
    let component = noop_component(&manifest)?;

    let mut report = Report::default();
    let memcpy = streams::memcpy(&mut report, scale);
    let rust_64k = streams::guest_to_guest(&mut report, &host, scale, memcpy).await?;
    streams::call_path(&mut report, &host, scale, memcpy).await?;
    let serial = calls::triggers(&mut report, &host, scale).await?;
    calls::function_to_function(&mut report, &host, scale, serial).await?;
    calls::cold_start(&mut report, &component).await?;
    memory::idle_channels(&mut report, &host)?;
    // A server takes over its host's calls of unknown ids, so it gets a host of its own.
    let served =
        Host::with_manifest(&manifest, HostConfig::default().with_cache_dir(options.cache_dir.clone()))
            .context("cannot start the server's host")?;
    for id in FUNCTIONS {
        served.prepare(id).await?;
    }
    server::serve(&mut report, served, scale, serial).await?;
    server_memory::measure(&mut report, options, scale).await?;
    languages::rows(&mut report, options, scale, (serial, rust_64k)).await?;
    Ok(report)
}

/// The `.wasm` file of `bench::noop` (its crate already built), which the cold start
/// scenario loads in hosts of its own.
fn noop_component(manifest: &Manifest) -> anyhow::Result<PathBuf> {
    match manifest.functions.get("bench::noop").map(|f| manifest.source(f)) {
        Some(ComponentSource::File(path)) => Ok(path),
        _ => Err(anyhow!("bench::noop has no component")),
    }
}

/// The median of `runs` (stream speeds, cold-start times).
fn median(runs: &[f64]) -> f64 {
    let mut sorted = runs.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

fn gbps(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / took.as_secs_f64() / 1e9
}
