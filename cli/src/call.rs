//! `rill call`: stream files into and out of a function through channels.
//!
//! `--reader-from FIELD=PATH` creates a channel, puts its reader ref at FIELD of the
//! payload, and streams the file (or stdin, for `-`) into its writer. `--writer-to
//! FIELD=PATH` creates a channel, puts its writer ref at FIELD, and streams what the
//! function writes into the file (or stdout); text messages go to stderr. The result JSON
//! goes to stdout once every stream is done, unless a stream owns stdout: then it goes to
//! stderr, or to `--result-to`. The payload ([`payload`]) reaches the function as the user
//! wrote it, refs added; the streams ([`streams`]) lose, mix and rewrite nothing.

mod payload;
mod progress;
mod remote;
mod streams;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Args;
use rill::manifest::Manifest;
use rill::{CallError, CallOptions, ChannelOptions, Host, HostConfig, ReaderStatus};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::exit;

use streams::Input;

/// The end of `rill call --help`: where results, streams and messages go, and the exit
/// codes ([`exit`]).
pub(crate) fn after_help() -> String {
    format!("{WHERE_THINGS_GO}\n\n{}", exit::help())
}

const WHERE_THINGS_GO: &str = "\
Where things go:
  The result JSON goes to stdout; when a --writer-to stream writes stdout (FIELD=-), the
  result goes to stderr instead, or to --result-to PATH. Text messages and warnings go to
  stderr. A function that returns without reading all of a --reader-from input gets a
  warning naming the field; the exit code is still 0. If the consumer of a stdout stream
  closes the pipe (`rill call ... | head`), rill stops streaming, the function's writes
  see `closed`, and rill exits 0 with a one-line note. An output that accepts nothing for
  60 s fails the call (exit 6).";

#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// The function to call, as declared in the manifest.
    function_id: String,
    /// The JSON payload (default `{}`), or `@PATH` to read it from a file, `@-` from stdin.
    /// It reaches the function exactly as written, with channel refs added at the given
    /// fields.
    payload: Option<String>,
    /// The manifest declaring the functions.
    #[arg(long, default_value = "rill.toml", value_name = "PATH")]
    manifest: PathBuf,
    /// Stream PATH (or stdin for `-`) to the function: a reader ref goes at FIELD (a
    /// dotted path such as `input` or `job.source`).
    #[arg(long = "reader-from", value_name = "FIELD=PATH")]
    reader_from: Vec<String>,
    /// Stream what the function writes into PATH (or stdout for `-`): a writer ref goes
    /// at FIELD. Text messages are printed to stderr.
    #[arg(long = "writer-to", value_name = "FIELD=PATH")]
    writer_to: Vec<String>,
    /// Write the result JSON to PATH (created before the call, like a shell redirection).
    /// Default: stdout, or stderr when a --writer-to stream writes stdout.
    #[arg(long = "result-to", value_name = "PATH")]
    result_to: Option<PathBuf>,
    /// Buffer size of each channel, in bytes (default 1 MiB).
    #[arg(long, value_name = "BYTES")]
    buffer_bytes: Option<usize>,
    /// Wall-clock budget of the call, in milliseconds (default: the manifest's, or 30 s).
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// Compile the function in memory only, without the on-disk cache of compiled
    /// components ($RILL_CACHE_DIR, else $XDG_CACHE_HOME/rill, else ~/.cache/rill).
    #[arg(long)]
    no_cache: bool,
    /// Build every function of the manifest before the call. By default only the Rust
    /// crates and the called function are built: guests in other languages need their
    /// toolchains, so build them too when the called function triggers one.
    #[arg(long)]
    build_all: bool,
    /// Call the function on a running `rill serve` (e.g. ws://127.0.0.1:49134) instead of
    /// in this process; streams go over its channel WebSockets.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// The server's token (with --server), sent as `Authorization: Bearer`.
    #[arg(long, env = "RILL_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// What went wrong, with the exit code that says so.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        let error = error.into();
        // What is not a call's error is a stream's: reading or writing a file or a channel.
        let code = error.downcast_ref::<CallError>().map_or(exit::STREAM, exit::of_call_error);
        Failure { code, error }
    }
}

fn fail(code: u8, error: anyhow::Error) -> Failure {
    Failure { code, error }
}

fn usage(message: String) -> Failure {
    fail(exit::INPUT, anyhow!(message))
}

/// Run `rill call` and turn its outcome into an exit code.
pub(crate) async fn run(args: CallArgs) -> ExitCode {
    match call(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, error }) => {
            // `{:#}` prints the error and its causes on one line.
            eprintln!("error: {error:#}");
            ExitCode::from(code)
        }
    }
}

/// Where the result JSON goes.
enum ResultTo {
    Stdout,
    /// A stream owns stdout.
    Stderr,
    File(PathBuf, tokio::fs::File),
}

impl ResultTo {
    /// `--result-to PATH` (created now, like a shell redirection; `-` is stdout), else
    /// stdout unless a stream owns it, then stderr.
    async fn choose(result_to: Option<&Path>, stream_owns_stdout: bool) -> Result<ResultTo, Failure> {
        Ok(match result_to {
            Some(path) if path.as_os_str() == "-" => ResultTo::Stdout,
            Some(path) => {
                let file = tokio::fs::File::create(path)
                    .await
                    .with_context(|| format!("cannot create the result file {}", path.display()))
                    .map_err(|e| fail(exit::INPUT, e))?;
                ResultTo::File(path.to_path_buf(), file)
            }
            None if stream_owns_stdout => ResultTo::Stderr,
            None => ResultTo::Stdout,
        })
    }
}

/// A `--reader-from` or `--writer-to` stream: its field, its file, and its task.
struct Stream<T> {
    field: String,
    path: String,
    task: JoinHandle<anyhow::Result<T>>,
}

/// A stream's file, as a user names it.
fn shown<'a>(path: &'a str, stdio: &'static str) -> &'a str {
    if path == "-" { stdio } else { path }
}

async fn call(args: CallArgs) -> Result<(), Failure> {
    if let Some(server) = args.server.clone() {
        return remote::call(args, &server).await;
    }
    let source = payload::Source::of(args.payload.as_deref());
    let readers = args.reader_from.iter().map(|s| split_spec(s)).collect::<Result<Vec<_>, _>>()?;
    let writers = args.writer_to.iter().map(|s| split_spec(s)).collect::<Result<Vec<_>, _>>()?;
    let stdin_readers = readers.iter().filter(|(_, path)| path == "-").count();
    if stdin_readers > 1 {
        return Err(usage("only one --reader-from can read stdin".into()));
    }
    if stdin_readers == 1 && source == payload::Source::Stdin {
        return Err(usage("the payload (`@-`) and a --reader-from stream cannot both read stdin".into()));
    }
    let stream_owns_stdout = match writers.iter().filter(|(_, path)| path == "-").count() {
        0 => false,
        1 => true,
        _ => return Err(usage("only one --writer-to can write stdout".into())),
    };
    if stream_owns_stdout && args.result_to.as_deref() == Some(Path::new("-")) {
        return Err(usage("--result-to - and a --writer-to stream cannot both write stdout".into()));
    }

    let config = HostConfig::default().with_cache_dir(if args.no_cache {
        None
    } else {
        rill_build::default_cache_dir()
    });
    let cannot_start = |e: anyhow::Error| fail(exit::HOST, e.context("cannot start the host"));
    let mut manifest = Manifest::from_file(&args.manifest).map_err(|e| cannot_start(e.into()))?;
    // The guests are built first (the runtime only loads components).
    let wanted = |id: &str| args.build_all || id == args.function_id;
    rill_build::build_manifest_for(&mut manifest, wanted).map_err(|e| cannot_start(e.into()))?;
    let host = Host::with_manifest(&manifest, config.clone()).map_err(|e| cannot_start(e.into()))?;
    // Compile the function before any channel exists: a channel's attach deadline must
    // not be spent compiling.
    host.prepare(&args.function_id).await?;
    // The payload is checked against the limits the host applies to the function before
    // it is read whole.
    let limits =
        manifest.function_limits(&args.function_id, &config.limits).map_err(|e| cannot_start(e.into()))?;
    let mut payload = payload::read(&source, &limits).await?;
    let mut result_to = ResultTo::choose(args.result_to.as_deref(), stream_owns_stdout).await?;

    let mut options = ChannelOptions::default();
    options.buffer_bytes = args.buffer_bytes;
    // Raised when the call has returned: the stream tasks then learn what the function
    // did with their channels.
    let (returned, returned_rx) = watch::channel(false);
    let consumer_closed = Arc::new(AtomicBool::new(false));
    let mut feeds = Vec::new();
    for (field, path) in readers {
        let channel = host.create_channel(&options).map_err(|e| fail(exit::INPUT, anyhow!(e)))?;
        payload = put_ref(&payload, &field, &channel.reader_ref.to_value())?;
        // The local reader is never used, so it never claims the end: the function does.
        drop(channel.reader);
        let input = open_input(&path).await?;
        let task = tokio::spawn(streams::feed_until_return(input, channel.writer, returned_rx.clone()));
        feeds.push(Stream { field, path, task });
    }
    let mut drains = Vec::new();
    for (field, path) in writers {
        let channel = host.create_channel(&options).map_err(|e| fail(exit::INPUT, anyhow!(e)))?;
        payload = put_ref(&payload, &field, &channel.writer_ref.to_value())?;
        drop(channel.writer);
        let output = open_output(&path).await?;
        let task = tokio::spawn(streams::drain(
            channel.reader,
            output,
            returned_rx.clone(),
            Arc::clone(&consumer_closed),
        ));
        drains.push(Stream { field, path, task });
    }

    let mut options = CallOptions::new();
    if let Some(ms) = args.timeout_ms {
        options = options.timeout(Duration::from_millis(ms));
    }
    let result = host.trigger_with(&args.function_id, payload, &options).await;
    returned.send_replace(true);
    let result = match result {
        Ok(result) => result,
        Err(err) => {
            for task in feeds
                .iter()
                .map(|s| s.task.abort_handle())
                .chain(drains.iter().map(|s| s.task.abort_handle()))
            {
                task.abort();
            }
            // A consumer that closed its pipe cut the function's output short; what the
            // function did next (usually fail on a `closed` write) is its consequence.
            if consumer_closed.load(Ordering::SeqCst) {
                eprintln!(
                    "note: the output's consumer closed the pipe, so streaming stopped; the function then ended with: {:#}",
                    anyhow!(err)
                );
                return Ok(());
            }
            return Err(err.into());
        }
    };

    let mut stream_failure = None;
    for Stream { field, path, task } in drains {
        let file = shown(&path, "stdout");
        match task.await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                stream_failure.get_or_insert(err.context(format!("streaming {field} out to {file}")));
            }
            Err(join) => {
                stream_failure.get_or_insert(anyhow!(join).context(format!("streaming {field} out")));
            }
        }
    }
    let consumer_closed = consumer_closed.load(Ordering::SeqCst);
    for Stream { field, path, task } in feeds {
        let file = shown(&path, "stdin");
        match task.await {
            Ok(Ok(ReaderStatus::Finished)) => {}
            // The function stopped reading because its output's consumer went away.
            Ok(Ok(_)) if consumer_closed => {}
            Ok(Ok(ReaderStatus::Unattached)) => eprintln!(
                "warning: the function did not read its input {field} ({file}): it returned without opening it"
            ),
            Ok(Ok(_)) => eprintln!(
                "warning: the function did not read all of its input {field} ({file}): it returned before the end of the stream"
            ),
            Ok(Err(err)) => {
                stream_failure.get_or_insert(err.context(format!("streaming {file} into {field}")));
            }
            Err(join) => {
                stream_failure.get_or_insert(anyhow!(join).context(format!("streaming into {field}")));
            }
        }
    }
    if let Some(err) = stream_failure {
        return Err(fail(exit::STREAM, err));
    }
    if consumer_closed {
        eprintln!("note: the output's consumer closed the pipe, so streaming stopped before the end");
    }
    write_result(&mut result_to, &result).await
}

/// Write the result JSON, and a newline, where it goes.
async fn write_result(to: &mut ResultTo, result: &str) -> Result<(), Failure> {
    let line = format!("{result}\n");
    let written = match to {
        ResultTo::Stderr => {
            eprint!("{line}");
            return Ok(());
        }
        ResultTo::Stdout => {
            let mut stdout = tokio::io::stdout();
            let written = async {
                stdout.write_all(line.as_bytes()).await?;
                stdout.flush().await
            };
            match written.await {
                // A closed stdout (`rill call … | head`) is the reader's choice, not a failure.
                Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.context("writing the result to stdout"),
            }
        }
        ResultTo::File(path, file) => {
            let written = async {
                file.write_all(line.as_bytes()).await?;
                file.flush().await
            };
            written.await.with_context(|| format!("writing the result to {}", path.display()))
        }
    };
    written.map_err(|e| fail(exit::STREAM, e))
}

/// Put a ref at the dotted `field` of the payload text.
fn put_ref(payload: &str, field: &str, channel_ref: &serde_json::Value) -> Result<String, Failure> {
    payload::set_field(payload, field, &channel_ref.to_string()).map_err(|e| usage(e.describe(field)))
}

fn split_spec(spec: &str) -> Result<(String, String), Failure> {
    match spec.split_once('=') {
        Some((field, path)) if !field.is_empty() && !path.is_empty() => {
            Ok((field.to_owned(), path.to_owned()))
        }
        _ => Err(usage(format!("expected FIELD=PATH (or FIELD=- for stdin/stdout), got {spec:?}"))),
    }
}

async fn open_input(path: &str) -> Result<Input, Failure> {
    if path == "-" {
        return Ok(Input::Stream(Box::new(tokio::io::stdin())));
    }
    let opened = async {
        let file = tokio::fs::File::open(path).await?;
        let regular = file.metadata().await?.is_file();
        Ok::<_, std::io::Error>(if regular {
            Input::File(file.into_std().await)
        } else {
            Input::Stream(Box::new(file))
        })
    };
    opened.await.with_context(|| format!("cannot open {path} for reading")).map_err(|e| fail(exit::INPUT, e))
}

async fn open_output(path: &str) -> Result<streams::Output, Failure> {
    if path == "-" {
        return Ok(Box::new(tokio::io::stdout()));
    }
    let file = tokio::fs::File::create(path)
        .await
        .with_context(|| format!("cannot create {path}"))
        .map_err(|e| fail(exit::INPUT, e))?;
    Ok(Box::new(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_need_a_field_and_a_path() {
        assert_eq!(split_spec("reader=-").ok(), Some(("reader".into(), "-".into())));
        assert_eq!(split_spec("a.b=/x=y").ok(), Some(("a.b".into(), "/x=y".into())));
        assert!(split_spec("reader").is_err());
        assert!(split_spec("=x").is_err());
        assert!(split_spec("x=").is_err());
    }

    #[test]
    fn the_help_states_the_stall_timeout() {
        let stated = format!("{} s fails the call", rill::pipe::STALLED_OUTPUT_TIMEOUT.as_secs());
        assert!(after_help().contains(&stated), "the help must say {stated:?}");
    }
}
