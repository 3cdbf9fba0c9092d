//! `rill bench`: its flags. What it measures, and how, is the [`rill_bench`] crate's.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::exit;

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

/// Run every scenario and print the report: a table, or one JSON object with `--json`.
pub(crate) async fn run(args: BenchArgs) -> ExitCode {
    let options = rill_bench::Options {
        quick: args.quick,
        manifest: args.manifest,
        cache_dir: rill_build::default_cache_dir(),
    };
    match rill_bench::run(&options).await {
        Ok(report) => {
            if args.json {
                println!("{}", report.json());
            } else {
                print!("{report}");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(exit::HOST)
        }
    }
}
