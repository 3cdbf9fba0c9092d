//! `rill call`: stream files into and out of a function through channels.
//!
//! `--reader-from FIELD=PATH` creates a channel, puts its reader ref at FIELD of the
//! payload, and streams the file (or stdin, for `-`) into its writer. `--writer-to
//! FIELD=PATH` creates a channel, puts its writer ref at FIELD, and streams what the
//! function writes into the file (or stdout); text messages go to stderr. The result JSON
//! goes to stdout once every stream is done.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use clap::Args;
use rill::{CallError, ChannelError, ChannelOptions, Host, HostConfig, Item, Reader, Writer};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::task::JoinHandle;

pub(crate) const EXIT_FAILED: u8 = 1;
pub(crate) const EXIT_INPUT: u8 = 2;
pub(crate) const EXIT_TIMEOUT: u8 = 3;
pub(crate) const EXIT_LIMIT: u8 = 4;
pub(crate) const EXIT_HOST: u8 = 5;
pub(crate) const EXIT_STREAM: u8 = 6;
pub(crate) const EXIT_TRAPPED: u8 = 7;
pub(crate) const EXIT_MEMORY: u8 = 8;
pub(crate) const EXIT_FUEL: u8 = 9;

pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0  the function returned a result (printed to stdout)
  1  the function returned an error
  2  bad input: usage, payload JSON, unknown function, field paths
  3  the function did not finish before its deadline
  4  a limit was exceeded
  5  the host could not start or load the function (manifest, build, compile)
  6  a stream failed: a file could not be read or written, or the function aborted or
     abandoned a channel
  7  the function trapped (the trap and the guest backtrace are printed)
  8  the function exceeded its memory limit
  9  the function ran out of fuel";

/// Bytes read from standard input per channel write: one channel chunk, so the broker
/// queues each write without copying it again.
const FEED_CHUNK_BYTES: usize = rill::broker::MAX_CHUNK_BYTES;

/// How long a stream may take to finish after the function returned. Streams normally
/// finish before the function does; one still open after this was abandoned.
const STREAM_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// The function to call, as declared in the manifest.
    function_id: String,
    /// The JSON payload (default `{}`). Channel refs are added to it at the given fields.
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
}

/// What went wrong, with the exit code that says so.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        let error = error.into();
        let code = match error.downcast_ref::<CallError>() {
            Some(CallError::Failed { .. }) => EXIT_FAILED,
            Some(CallError::Trapped { .. }) => EXIT_TRAPPED,
            Some(CallError::MemoryLimitExceeded { .. }) => EXIT_MEMORY,
            Some(CallError::OutOfFuel { .. }) => EXIT_FUEL,
            Some(CallError::NotFound(_) | CallError::InvalidInput(_)) => EXIT_INPUT,
            Some(CallError::TimedOut { .. }) => EXIT_TIMEOUT,
            Some(CallError::LimitExceeded(_)) => EXIT_LIMIT,
            Some(_) => EXIT_HOST,
            None => EXIT_STREAM,
        };
        Failure { code, error }
    }
}

fn fail(code: u8, error: anyhow::Error) -> Failure {
    Failure { code, error }
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

async fn call(args: CallArgs) -> Result<(), Failure> {
    let mut payload: Value = match &args.payload {
        Some(text) => serde_json::from_str(text)
            .map_err(|e| fail(EXIT_INPUT, anyhow!(e).context("the payload is not valid JSON")))?,
        None => Value::Object(Default::default()),
    };
    if args.reader_from.iter().filter(|s| s.ends_with("=-")).count() > 1 {
        return Err(fail(EXIT_INPUT, anyhow!("only one --reader-from can read stdin")));
    }
    if args.writer_to.iter().filter(|s| s.ends_with("=-")).count() > 1 {
        return Err(fail(EXIT_INPUT, anyhow!("only one --writer-to can write stdout")));
    }
    let mut config = HostConfig::default();
    config.cache_dir = if args.no_cache { None } else { rill::default_cache_dir() };
    let host = Host::from_manifest_with(&args.manifest, config)
        .map_err(|e| fail(EXIT_HOST, anyhow!(e).context("cannot start the host")))?;
    // Build and compile the function before any channel exists: a channel's attach
    // deadline must not be spent compiling (a first build of a guest crate can take
    // minutes on a fresh machine).
    host.prepare(&args.function_id).await?;
    let mut options = ChannelOptions::default();
    options.buffer_bytes = args.buffer_bytes;

    let mut feeds = Vec::new();
    for spec in &args.reader_from {
        let (field, path) = split_spec(spec)?;
        let channel = host.create_channel(&options).map_err(|e| fail(EXIT_INPUT, anyhow!(e)))?;
        set_field(&mut payload, &field, channel.reader_ref.to_value())?;
        // The local reader is never used, so it never claims the end: the function does.
        drop(channel.reader);
        let input = open_input(&path).await?;
        feeds.push((field, tokio::spawn(feed(input, channel.writer))));
    }
    let mut drains = Vec::new();
    for spec in &args.writer_to {
        let (field, path) = split_spec(spec)?;
        let channel = host.create_channel(&options).map_err(|e| fail(EXIT_INPUT, anyhow!(e)))?;
        set_field(&mut payload, &field, channel.writer_ref.to_value())?;
        drop(channel.writer);
        let output = open_output(&path).await?;
        drains.push((field, tokio::spawn(drain(channel.reader, output))));
    }

    let timeout = args.timeout_ms.map(Duration::from_millis);
    let result = host.trigger_with_timeout(&args.function_id, payload.to_string(), timeout).await;
    let result = match result {
        Ok(result) => result,
        Err(err) => {
            for (_, task) in feeds.iter().map(|(f, t)| (f, t)).chain(drains.iter().map(|(f, t)| (f, t))) {
                task.abort();
            }
            return Err(err.into());
        }
    };
    let mut stream_failure = None;
    for (field, task) in feeds {
        match finish(task).await {
            Ok(()) => {}
            Err(err) => {
                stream_failure.get_or_insert(err.context(format!("streaming into {field}")));
            }
        }
    }
    for (field, task) in drains {
        match finish(task).await {
            Ok(()) => {}
            Err(err) => {
                stream_failure.get_or_insert(err.context(format!("streaming out of {field}")));
            }
        }
    }
    if let Some(err) = stream_failure {
        return Err(fail(EXIT_STREAM, err));
    }
    let mut stdout = tokio::io::stdout();
    let written = async {
        stdout.write_all(result.as_bytes()).await?;
        stdout.write_all(b"\n").await?;
        stdout.flush().await
    };
    match written.await {
        // A closed stdout (`rill call … | head`) is the reader's choice, not a failure.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing the result to stdout").map_err(|e| fail(EXIT_STREAM, e)),
    }
}

/// Wait for a stream task that should be about done; one that is not was abandoned.
async fn finish(mut task: JoinHandle<anyhow::Result<()>>) -> anyhow::Result<()> {
    match tokio::time::timeout(STREAM_GRACE, &mut task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(anyhow!(join).context("the stream task failed")),
        Err(_) => {
            task.abort();
            bail!("the function returned without finishing this stream (it never opened it, or left it open)")
        }
    }
}

fn split_spec(spec: &str) -> Result<(String, String), Failure> {
    match spec.split_once('=') {
        Some((field, path)) if !field.is_empty() && !path.is_empty() => {
            Ok((field.to_owned(), path.to_owned()))
        }
        _ => {
            Err(fail(EXIT_INPUT, anyhow!("expected FIELD=PATH (or FIELD=- for stdin/stdout), got {spec:?}")))
        }
    }
}

/// Put `value` at the dotted `path` of `payload`, creating objects on the way.
fn set_field(payload: &mut Value, path: &str, value: Value) -> Result<(), Failure> {
    let mut at = payload;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if part.is_empty() {
            return Err(fail(EXIT_INPUT, anyhow!("field path {path:?} has an empty part")));
        }
        let Value::Object(map) = at else {
            return Err(fail(
                EXIT_INPUT,
                anyhow!("cannot set {path:?}: the payload has a non-object on the way"),
            ));
        };
        if parts.peek().is_none() {
            map.insert(part.to_owned(), value);
            return Ok(());
        }
        at = map.entry(part.to_owned()).or_insert_with(|| Value::Object(Default::default()));
    }
    Ok(())
}

/// Where a `--reader-from` stream comes from.
pub(crate) enum Input {
    /// Standard input, a pipe, a device: read asynchronously, each read passed on as it
    /// arrives (a thread blocked reading it could not be stopped).
    Stream(Box<dyn AsyncRead + Send + Unpin>),
    /// A regular file, read on a blocking thread straight into the chunks handed to the
    /// channel.
    File(std::fs::File),
}
type Output = Box<dyn AsyncWrite + Send + Unpin>;

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
    opened.await.with_context(|| format!("cannot open {path} for reading")).map_err(|e| fail(EXIT_INPUT, e))
}

async fn open_output(path: &str) -> Result<Output, Failure> {
    if path == "-" {
        return Ok(Box::new(tokio::io::stdout()));
    }
    let file = tokio::fs::File::create(path)
        .await
        .with_context(|| format!("cannot create {path}"))
        .map_err(|e| fail(EXIT_INPUT, e))?;
    Ok(Box::new(file))
}

/// Copy `input` into the channel; a read error aborts the stream so the function sees a
/// failure, never a truncated clean end.
pub(crate) async fn feed(input: Input, writer: Writer) -> anyhow::Result<()> {
    match input {
        Input::Stream(stream) => feed_async(stream, writer).await,
        Input::File(file) => {
            let runtime = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || feed_file(&runtime, file, writer))
                .await
                .unwrap_or_else(|join| Err(anyhow!(join).context("the thread reading the input failed")))
        }
    }
}

/// Each read is copied out of one reused buffer: a chunk handed to the channel must own
/// its bytes, or a short read would pin a whole read buffer while being charged for a
/// few bytes.
async fn feed_async(mut input: impl AsyncRead + Unpin, mut writer: Writer) -> anyhow::Result<()> {
    let mut buf = vec![0u8; FEED_CHUNK_BYTES];
    loop {
        match input.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => writer
                .write(Bytes::copy_from_slice(&buf[..n]))
                .await
                .context("the function stopped reading")?,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(input_failed(&mut writer, err)),
        }
    }
    finish_feed(writer)
}

/// Read the file into chunks of exactly the size the channel has room for, one read
/// (the kernel's copy) per chunk and no copy after it. Runs on a blocking thread and
/// waits for the channel through `runtime`.
fn feed_file(
    runtime: &tokio::runtime::Handle,
    mut file: std::fs::File,
    mut writer: Writer,
) -> anyhow::Result<()> {
    loop {
        let room = runtime.block_on(writer.ready()).context("the function stopped reading")?;
        let mut chunk = Vec::with_capacity(room);
        // `take` + `read_to_end` fills the chunk without zeroing it first.
        match (&mut file).take(room as u64).read_to_end(&mut chunk) {
            Ok(0) => break,
            Ok(_) => runtime.block_on(writer.write(chunk)).context("the function stopped reading")?,
            Err(err) => return Err(input_failed(&mut writer, err)),
        }
    }
    finish_feed(writer)
}

/// Reading the input failed: abort the stream with why, so the function sees a failure
/// rather than a truncated clean end.
fn input_failed(writer: &mut Writer, err: std::io::Error) -> anyhow::Error {
    writer.abort(format!("reading the input failed: {err}"));
    anyhow!(err).context("reading the input")
}

fn finish_feed(mut writer: Writer) -> anyhow::Result<()> {
    match writer.close() {
        Ok(()) => Ok(()),
        Err(ChannelError::Closed) => bail!("the function stopped reading before the end"),
        Err(err) => Err(err.into()),
    }
}

/// Copy the channel into `output`; text messages go to stderr, one per line.
async fn drain(mut reader: Reader, mut output: Output) -> anyhow::Result<()> {
    loop {
        match reader.next().await {
            Ok(Some(Item::Bytes(bytes))) => output.write_all(&bytes).await.context("writing the output")?,
            Ok(Some(Item::Text(text))) => eprintln!("{}", rill::inert(&text)),
            Ok(None) => break,
            Err(err) => return Err(anyhow!(err)),
        }
    }
    output.flush().await.context("writing the output")?;
    output.shutdown().await.context("writing the output")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_set_at_dotted_paths() {
        let mut payload = serde_json::json!({"job": {"name": "x"}});
        set_field(&mut payload, "job.source", Value::from(1)).ok();
        set_field(&mut payload, "top", Value::from(2)).ok();
        assert_eq!(payload, serde_json::json!({"job": {"name": "x", "source": 1}, "top": 2}));
        assert!(set_field(&mut payload, "job.name.deeper", Value::Null).is_err());
        assert!(set_field(&mut payload, "a..b", Value::Null).is_err());
    }

    #[test]
    fn specs_need_a_field_and_a_path() {
        assert_eq!(split_spec("reader=-").ok(), Some(("reader".into(), "-".into())));
        assert_eq!(split_spec("a.b=/x=y").ok(), Some(("a.b".into(), "/x=y".into())));
        assert!(split_spec("reader").is_err());
        assert!(split_spec("=x").is_err());
        assert!(split_spec("x=").is_err());
    }
}
