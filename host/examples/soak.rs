//! Soak: stream for minutes while hostile guests attack, and print host memory as it goes.
//!
//! ```sh
//! cargo run --release -p rill-host --example soak -- 5      # minutes (default 2)
//! ```
//!
//! Every round streams 64 MiB from the host through `files::process` (checking the
//! digest) and runs a seed flow inside wasm (`files::produce`), while hostile guests
//! spin, bomb their memory, flood channels and handles, and write one huge buffer. Every
//! 10 seconds it prints the process RSS and the broker's counts; at the end it checks
//! that nothing is left in the broker and that RSS stayed flat after the first round
//! (within 64 MiB), and exits non-zero otherwise.

#![allow(clippy::print_stdout, reason = "an example prints its progress")]

use std::path::Path;
use std::time::{Duration, Instant};

use rill::{BrokerConfig, CallOptions, ComponentSource, Host, HostConfig};
use serde_json::json;
use tokio::io::AsyncWriteExt;

fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let minutes: u64 = std::env::args().nth(1).map(|m| m.parse()).transpose()?.unwrap_or(2);
    let guests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/rust");
    let build = |dir: &str| rill::rust_guest::build(&guests.join(dir)).map(ComponentSource::File);
    let (files, producer, hostile) =
        (build("examples/files")?, build("examples/producer")?, build("test-guests/hostile")?);
    let mut config = HostConfig::default();
    config.broker = BrokerConfig::default().attach_timeout(Duration::from_secs(5));
    let mut builder = Host::builder().config(config);
    builder = builder.function("files::process", files).function("files::produce", producer);
    for id in [
        "hostile::loop",
        "hostile::memory_bomb",
        "hostile::channel_flood",
        "hostile::handle_flood",
        "hostile::huge_write",
    ] {
        builder = builder.function(id, hostile.clone());
    }
    let host = builder.build()?;
    for id in host.function_ids() {
        host.prepare(&id).await?;
    }

    let started = Instant::now();
    let end = started + Duration::from_secs(minutes * 60);
    let mut last_report = Instant::now();
    let (mut rounds, mut streamed, mut baseline, mut peak_after) = (0u64, 0u64, None, 0u64);
    println!("soaking for {minutes} min; RSS at start {} MiB", rss_mib());
    while Instant::now() < end {
        let attacks = async {
            let timeout = Duration::from_millis(200);
            let _ =
                host.trigger_with("hostile::loop", "{}".into(), &CallOptions::new().timeout(timeout)).await;
            let _ = host.trigger("hostile::memory_bomb", &json!({})).await;
            let _ = host.trigger("hostile::channel_flood", &json!({ "count": 100_000 })).await;
            let _ = host.trigger("hostile::handle_flood", &json!({ "count": 100_000 })).await;
            let channel = host.create_channel(&Default::default())?;
            let _ = host
                .trigger("hostile::huge_write", &json!({ "writer": channel.writer_ref, "bytes": 8 << 20 }))
                .await;
            anyhow::Ok(())
        };
        let stream = async {
            let channel = host.create_channel(&Default::default())?;
            let call = host.trigger("files::process", &json!({ "reader": channel.reader_ref }));
            let mut writer = channel.writer;
            let block = vec![0xa5u8; 1 << 20];
            let feed = async {
                for _ in 0..64 {
                    writer.write_all(&block).await?;
                }
                writer.shutdown().await
            };
            let (result, fed) = tokio::join!(call, feed);
            fed?;
            anyhow::ensure!(result?["bytes"] == 64 << 20, "stream lost bytes");
            let produced = host.trigger("files::produce", &json!({ "bytes": 16 << 20 })).await?;
            anyhow::ensure!(produced["consumer"]["sha256"] == produced["sha256"], "seed flow corrupted data");
            anyhow::Ok(80u64 << 20)
        };
        let (attacked, bytes) = tokio::join!(attacks, stream);
        attacked?;
        streamed += bytes?;
        rounds += 1;
        let rss = rss_mib();
        match baseline {
            None => baseline = Some(rss),
            Some(_) => peak_after = peak_after.max(rss),
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            let stats = host.broker().stats();
            println!(
                "{:>5.0} s  rounds {rounds:>5}  streamed {:>7} MiB  RSS {rss:>4} MiB  live channels {:>5}  buffered {:>8} B",
                started.elapsed().as_secs_f64(),
                streamed >> 20,
                stats.live_channels,
                stats.buffered_bytes,
            );
            last_report = Instant::now();
        }
    }
    tokio::time::sleep(Duration::from_secs(6)).await; // let flooded channels expire
    let stats = host.broker().stats();
    let baseline = baseline.unwrap_or(0);
    println!(
        "done: {rounds} rounds, {} MiB streamed; RSS after round 1 {baseline} MiB, peak after {peak_after} MiB; broker {stats:?}",
        streamed >> 20
    );
    anyhow::ensure!(
        stats.live_channels == 0 && stats.buffered_bytes == 0,
        "the broker still holds {stats:?}"
    );
    anyhow::ensure!(peak_after <= baseline + 64, "RSS grew from {baseline} MiB to {peak_after} MiB");
    Ok(())
}
