//! A pipeline of three functions that pass channel refs, driven from an application.
//!
//! ```text
//! file ──▶ transform::uppercase ──▶ words::count ──▶ files::process
//!   (host)     channel 1          channel 2         channel 3
//! ```
//!
//! The application creates three channels, hands each function the refs of the two it
//! sits between (a reader ref in, a writer ref out), starts all three calls at once and
//! streams the file into the first channel. The bytes move function to function through
//! the host's broker; only refs and small JSON results go through the payloads. It prints
//! each function's result as one JSON object.
//!
//! Run it from the repository root (it reads `rill.toml`, which builds the example guests
//! before the host starts):
//!
//! ```sh
//! cargo run -p rill-examples --bin pipeline -- README.md
//! ```

#![allow(clippy::print_stdout, reason = "an example program prints its result")]

use anyhow::{Context, bail};
use rill::{ChannelOptions, HostConfig};
use serde_json::json;
use tokio::io::AsyncWriteExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(path), None) = (args.next(), args.next()) else {
        bail!("usage: pipeline FILE (run from the repository root, where rill.toml is)");
    };
    let input = tokio::fs::read(&path).await.with_context(|| format!("cannot read {path}"))?;

    // Only the three functions of the pipeline are needed (they are Rust guests, which
    // are always built; the manifest's guests in other languages are not).
    let stages = ["transform::uppercase", "words::count", "files::process"];
    let host = rill_build::host_from_manifest_for("rill.toml".as_ref(), HostConfig::default(), |id| {
        stages.contains(&id)
    })
    .context("cannot load rill.toml")?;
    // Compile first, so that the channels' attach deadline is not spent building guests.
    for id in stages {
        host.prepare(id).await?;
    }

    // channel 1: the file, from this program to `transform::uppercase`;
    // channel 2: uppercased text, to `words::count`;
    // channel 3: progress messages and the count, to `files::process`.
    let options = ChannelOptions::default();
    let (first, second, third) =
        (host.create_channel(&options)?, host.create_channel(&options)?, host.create_channel(&options)?);
    let uppercase = host
        .trigger("transform::uppercase", &json!({ "input": first.reader_ref, "output": second.writer_ref }));
    let count =
        host.trigger("words::count", &json!({ "input": second.reader_ref, "output": third.writer_ref }));
    let process = host.trigger("files::process", &json!({ "reader": third.reader_ref }));

    // The local ends this program does not use are dropped unused: the functions attach
    // them through the refs. Only the first writer is ours.
    let mut writer = first.writer;
    let feed = async move {
        writer.write_all(&input).await?;
        writer.shutdown().await // the clean end
    };
    let (fed, uppercase, count, process) = tokio::join!(feed, uppercase, count, process);
    fed.context("streaming the file into the pipeline")?;
    let report = json!({
        "transform::uppercase": uppercase?,
        "words::count": count?,
        "files::process": process?,
    });
    println!("{report}");
    Ok(())
}
