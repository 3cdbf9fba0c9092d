//! The `rill` command line. Parsing lives here and the exit codes in `exit.rs`; the work
//! is done by the library's [`rill::Host`] (see `call.rs` for `rill call`).

#![allow(clippy::print_stdout, reason = "a command line prints its results")]

mod bench;
mod call;
mod exit;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// rill runs WebAssembly component functions that stream data through channels.
#[derive(Debug, Parser)]
#[command(name = "rill", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Call a function and print its JSON result.
    #[command(after_long_help = call::after_help())]
    Call(call::CallArgs),
    /// Serve the manifest's functions and rill's channels to iii SDK clients (an
    /// iii-compatible engine: worker protocol on `/`, channels on `/ws/channels/`).
    Serve(serve::ServeArgs),
    /// Measure rill's speed against this machine's limits (memcpy, a host-only stream).
    Bench(bench::BenchArgs),
    /// List the functions a manifest declares.
    Functions {
        /// The manifest to read.
        #[arg(long, default_value = "rill.toml", value_name = "PATH")]
        manifest: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(exit::HOST);
        }
    };
    // Run the command on a worker thread rather than on the thread blocked in
    // `block_on`: tasks it starts and joins then stay on that worker instead of waking
    // threads across the runtime.
    let command = runtime.spawn(async move {
        match cli.command {
            Command::Call(args) => call::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Functions { manifest } => list_functions(&manifest),
        }
    });
    let code = runtime.block_on(command).unwrap_or_else(|err| {
        eprintln!("error: the command failed unexpectedly: {err}");
        ExitCode::from(exit::HOST)
    });
    // The command is done: do not wait for threads still blocked (a read of standard
    // input cannot be cancelled, and would hold the exit until the user typed a line).
    runtime.shutdown_background();
    code
}

fn list_functions(manifest: &std::path::Path) -> ExitCode {
    match rill::manifest::Manifest::from_file(manifest) {
        Ok(manifest) => {
            for (id, function) in &manifest.functions {
                let path = manifest.base_dir.join(&function.component);
                let kind = if path.is_dir() { "guest crate" } else { "component" };
                println!("{id}\t{kind}\t{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {:#}", anyhow::Error::from(err));
            ExitCode::from(exit::HOST)
        }
    }
}

/// Log lines go to stderr. `RILL_LOG` takes `tracing` filter directives; by default only
/// warnings, plus what guests print (target `rill::guest`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RILL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rill::guest=info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}
