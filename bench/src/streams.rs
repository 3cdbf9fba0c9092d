//! Stream throughput: the `memcpy` baseline, guest → broker → guest per chunk size beside
//! a host-only stream doing the same copies, and the `rill call --reader-from` path.

use std::io::Write;
use std::time::Instant;

use bytes::Bytes;
use rill::{ChannelOptions, Host, Item};
use serde_json::json;

use crate::memory::{peak_added_mib, reset_peak_rss};
use crate::report::{Report, Row};
use crate::{Scale, gbps, median};

/// The chunk sizes streamed, and the guest → guest ratio to `memcpy` aimed for at each.
const CHUNKS: [(&str, usize, f64); 3] = [("4k", 4 << 10, 0.35), ("64k", 64 << 10, 0.8), ("1m", 1 << 20, 0.7)];

/// Streams of each kind per chunk size. Where the writer and the reader run (one core or
/// two) changes a stream's speed by up to 3× on a small machine, so one run says little:
/// the report gives the median and every run.
const STREAM_RUNS: usize = 5;

/// What a reader asks for in the small-writes stream: as much as one read returns (the
/// guest SDK's reader asks for this much).
const READ_MORE_BYTES: u32 = 64 << 10;

/// DRAM bandwidth, the physical limit every stream is compared with (returned, GB/s).
pub(crate) fn memcpy(report: &mut Report, scale: Scale) -> f64 {
    let memcpy = memcpy_gbps(scale.copy_bytes() as usize);
    report.row(Row::new("memcpy (DRAM)", memcpy, "GB/s"));
    report.field("memcpy_gbps", memcpy);
    memcpy
}

/// Guest → broker → guest per chunk size, each beside the host-only baseline, and the
/// peak RSS a stream adds.
pub(crate) async fn guest_to_guest(
    report: &mut Report,
    host: &Host,
    scale: Scale,
    memcpy: f64,
) -> anyhow::Result<f64> {
    let mut at_64k = 0.0;
    for (label, chunk, target) in CHUNKS {
        // Runs alternate between the baseline and the guest path, so both see the same
        // machine; each figure is the median of its runs.
        let (mut host_runs, mut guest_runs) = (Vec::new(), Vec::new());
        let mut peak_added = 0.0f64;
        for _ in 0..STREAM_RUNS {
            host_runs.push(host_two_copies_gbps(host, scale.stream_bytes(), chunk).await?);
            let resident_before = reset_peak_rss();
            guest_runs.push(guest_to_guest_gbps(host, scale.stream_bytes(), chunk, chunk).await?);
            peak_added = peak_added.max(peak_added_mib(resident_before));
        }
        let (host_copy, guest) = (median(&host_runs), median(&guest_runs));
        report.row(
            Row::new(format!("host-only 2 copies, {label} chunks"), host_copy, "GB/s").vs("memcpy", memcpy),
        );
        report.row(
            Row::new(format!("guest→guest, {label} chunks"), guest, "GB/s")
                .vs("memcpy", memcpy)
                .target(format!("≥ {target}×")),
        );
        report.field(format!("host_two_copies_{label}_gbps"), host_copy);
        report.field(format!("guest_to_guest_{label}_gbps"), guest);
        if label == "64k" {
            at_64k = guest;
        }
        report.field(format!("guest_to_guest_{label}_vs_memcpy"), guest / memcpy);
        report.field(format!("guest_to_guest_{label}_vs_host_two_copies"), guest / host_copy);
        report.field(format!("guest_to_guest_{label}_peak_rss_added_mib"), peak_added);
        if label == "1m" {
            report.row(
                Row::new(format!("peak RSS added by a {label} stream"), peak_added, "MiB").target("≤ 16"),
            );
        }
        report.field(format!("host_two_copies_{label}_runs_gbps"), host_runs);
        report.field(format!("guest_to_guest_{label}_runs_gbps"), guest_runs);
        if label == "4k" {
            small_writes(report, host, scale, memcpy, host_copy).await?;
        }
    }
    Ok(at_64k)
}

/// A writer sending 4 KiB pieces to a reader that asks for more at a time (as the guest
/// SDK's reader does): the broker joins adjacent small writes for it, so this is the
/// figure for writers that send lines, records or progress.
async fn small_writes(
    report: &mut Report,
    host: &Host,
    scale: Scale,
    memcpy: f64,
    host_copy: f64,
) -> anyhow::Result<()> {
    let mut runs = Vec::new();
    for _ in 0..STREAM_RUNS {
        runs.push(guest_to_guest_gbps(host, scale.stream_bytes(), 4 << 10, READ_MORE_BYTES as usize).await?);
    }
    let guest = median(&runs);
    report.row(
        Row::new("guest→guest, 4k writes, 64k reads", guest, "GB/s").vs("memcpy", memcpy).target("≥ 0.5×"),
    );
    report.field("guest_to_guest_4k_writes_gbps", guest);
    report.field("guest_to_guest_4k_writes_vs_memcpy", guest / memcpy);
    report.field("guest_to_guest_4k_writes_vs_host_two_copies", guest / host_copy);
    report.field("guest_to_guest_4k_writes_runs_gbps", runs);
    Ok(())
}

/// The `rill call --reader-from` path: a file fed by the host into a guest.
pub(crate) async fn call_path(
    report: &mut Report,
    host: &Host,
    scale: Scale,
    memcpy: f64,
) -> anyhow::Result<()> {
    let call_path = call_path_gbps(host, scale.copy_bytes()).await?;
    report.row(Row::new("rill call path (file → guest)", call_path, "GB/s").vs("memcpy", memcpy));
    report.field("call_path_gbps", call_path);
    Ok(())
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
    median(&runs)
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
async fn guest_to_guest_gbps(
    host: &Host,
    total: u64,
    chunk: usize,
    read_chunk: usize,
) -> anyhow::Result<f64> {
    stream_between(host, ("bench::write", "bench::read"), total, chunk, read_chunk).await
}

/// `total` bytes from the writing function to the reading one (both taking the bench
/// guests' payloads: `{"writer", "total", "chunk"}` and `{"reader", "chunk"}`), each
/// call on its own task as two functions would run; GB/s.
pub(crate) async fn stream_between(
    host: &Host,
    (writer, reader): (&str, &str),
    total: u64,
    chunk: usize,
    read_chunk: usize,
) -> anyhow::Result<f64> {
    let channel = host.create_channel(&ChannelOptions::default())?;
    let write = json!({ "writer": channel.writer_ref, "total": total, "chunk": chunk });
    let read = json!({ "reader": channel.reader_ref, "chunk": read_chunk });
    let start = Instant::now();
    let (written, read) =
        tokio::join!(tokio::spawn(host.trigger(writer, &write)), tokio::spawn(host.trigger(reader, &read)));
    let took = start.elapsed();
    written??;
    anyhow::ensure!(read??["read"] == total, "the stream from {writer} to {reader} lost bytes");
    Ok(gbps(total, took))
}

/// A file of `total` bytes fed into `bench::read` as `rill call` feeds one.
async fn call_path_gbps(host: &Host, total: u64) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench-input.bin");
    {
        let block = vec![0xa5u8; 1 << 20];
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for _ in 0..total >> 20 {
            file.write_all(&block)?;
        }
        file.flush()?;
    }
    let channel = host.create_channel(&ChannelOptions::default())?;
    let read = json!({ "reader": channel.reader_ref, "chunk": rill::broker::MAX_CHUNK_BYTES });
    let start = Instant::now();
    let input = std::fs::File::open(&path)?;
    // As `rill call` does: the file is fed on its own task while the call runs.
    let feed = tokio::spawn(rill::pipe::feed_file(input, channel.writer, std::future::pending()));
    let read = host.trigger("bench::read", &read).await;
    let fed = feed.await;
    let took = start.elapsed();
    fed??;
    anyhow::ensure!(read?["read"] == total, "call path lost bytes");
    Ok(gbps(total, took))
}
