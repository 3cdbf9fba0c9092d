//! `iii-sdk-bench`: `rill serve`'s channel streams as iii's own Rust SDK client sees them.
//!
//! In one process and one run, against a running `rill serve`:
//!
//! 1. the baseline: N bytes through a loopback TCP connection in 64 KiB writes;
//! 2. iii-sdk `ChannelWriter` → `rill serve` → wasm `files::process`: a channel made with
//!    `iii_sdk::helpers::create_channel`, its reader ref handed to `files::process` with
//!    `IIIClient::call`, N bytes written in 64 KiB frames with `ChannelWriter::write` and
//!    ended with `ChannelWriter::close`; the guest's byte count and SHA-256 must match
//!    what was sent;
//! 3. wasm `bench::write` → `rill serve` → iii-sdk `ChannelReader`: a channel whose writer
//!    ref goes to `bench::write` (N bytes in 64 KiB writes), read to its end with
//!    `ChannelReader::next_binary`; the count must be N;
//! 4. the writer of 2 again, into wasm `bench::read` (which only counts): the same
//!    transport without the guest's SHA-256, which bounds `files::process` (about
//!    0.2 GB/s in wasm on the machine this was written on), so that the transport's
//!    speed and the consumer's are told apart.
//!
//! Each figure is GB/s (10^9 bytes per second) and a ratio to the TCP copy of the same
//! run. A wrong count or digest, or any failure, is an error and a non-zero exit.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use iii_sdk::channel::{ChannelReader, ChannelWriter};
use iii_sdk::{CallRequest, IIIClient, InitOptions, register_worker};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bytes per write and per WebSocket frame: 64 KiB, the iii SDKs' own frame size.
const FRAME: usize = 64 << 10;
/// The SDK written against; `Cargo.toml` pins it exactly.
const SDK: &str = "iii-sdk 0.26.0-rc.4";
/// Issue 10's target for both streams.
const TARGET_GBPS: f64 = 1.5;
/// How long a call may take before the client gives up (rill's own per-call limit,
/// 30 s by default, applies on the server's side as well).
const CALL_TIMEOUT: Duration = Duration::from_secs(600);
/// The written data repeats every 251 bytes (a prime, so consecutive 64 KiB frames
/// differ, and a frame lost, repeated or reordered changes the digest).
const PERIOD: usize = 251;

const USAGE: &str = "\
usage: iii-sdk-bench [--url ws://ADDR] [--bytes N] [--runs N] [--buffer-frames N] [--json]

  --url URL            the engine (rill serve); default $III_URL, else ws://127.0.0.1:49134
  --bytes N            bytes per stream (suffixes K, M, G = KiB, MiB, GiB); default 1G
  --runs N             measure each figure N times, alternating, and report medians; default 1
  --buffer-frames N    buffer_size passed to engine::channels::create (iii counts frames;
                       rill turns it into bytes); default none, the engine's default
  --json               print one JSON object of fields instead of the table";

struct Args {
    url: String,
    bytes: u64,
    runs: usize,
    buffer_frames: Option<usize>,
    json: bool,
}

fn parse_size(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let (digits, shift) = match text.as_bytes().last() {
        Some(b'k' | b'K') => (&text[..text.len() - 1], 10),
        Some(b'm' | b'M') => (&text[..text.len() - 1], 20),
        Some(b'g' | b'G') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    let n: u64 = digits.parse().with_context(|| format!("not a size: {text:?}"))?;
    n.checked_mul(1 << shift).ok_or_else(|| anyhow!("size too large: {text:?}"))
}

fn parse_args() -> anyhow::Result<Option<Args>> {
    let mut args = Args {
        url: std::env::var("III_URL")
            .ok()
            .filter(|url| !url.trim().is_empty())
            .unwrap_or_else(|| "ws://127.0.0.1:49134".to_owned()),
        bytes: 1 << 30,
        runs: 1,
        buffer_frames: None,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_owned(), Some(value.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value =
            || inline.clone().or_else(|| it.next()).ok_or_else(|| anyhow!("{name} needs a value\n{USAGE}"));
        match name.as_str() {
            "--url" => args.url = value()?,
            "--bytes" => args.bytes = parse_size(&value()?).context("--bytes")?,
            "--runs" => args.runs = value()?.parse().context("--runs")?,
            "--buffer-frames" => args.buffer_frames = Some(value()?.parse().context("--buffer-frames")?),
            "--json" => args.json = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if args.bytes == 0 {
        bail!("--bytes must be at least 1");
    }
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    Ok(Some(args))
}

fn gbps(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / took.as_secs_f64() / 1e9
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]) / 2.0 }
}

/// The bytes the writer sends: frame `k` is `pattern[offset(k)..][..len]`.
struct Data {
    pattern: Vec<u8>,
    bytes: u64,
}

impl Data {
    fn new(bytes: u64) -> Data {
        Data { pattern: (0..FRAME + PERIOD).map(|i| ((i * 31 + 7) % PERIOD) as u8).collect(), bytes }
    }

    /// The frames in order, each at most 64 KiB.
    fn frames(&self) -> impl Iterator<Item = &[u8]> {
        let mut sent = 0u64;
        std::iter::from_fn(move || {
            if sent >= self.bytes {
                return None;
            }
            let len = (self.bytes - sent).min(FRAME as u64) as usize;
            let start = (sent % PERIOD as u64) as usize;
            sent += len as u64;
            Some(&self.pattern[start..start + len])
        })
    }

    /// Lowercase hex SHA-256 of everything [`Data::frames`] yields.
    fn sha256(&self) -> String {
        let mut digest = Sha256::new();
        for frame in self.frames() {
            digest.update(frame);
        }
        format!("{:x}", digest.finalize())
    }
}

/// The baseline: `bytes` through a loopback TCP connection, 64 KiB writes, a task each
/// side, timed at the reader from the accept to the last byte.
async fn loopback_tcp_gbps(bytes: u64) -> anyhow::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the TCP baseline's listener")?;
    let address = listener.local_addr()?;
    let sender = tokio::spawn(async move {
        let mut stream = TcpStream::connect(address).await.context("connecting the TCP baseline")?;
        let buffer = vec![0x5au8; FRAME];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(FRAME as u64) as usize;
            stream.write_all(&buffer[..n]).await.context("writing the TCP baseline")?;
            left -= n as u64;
        }
        anyhow::Ok(())
    });
    let (mut stream, _) = listener.accept().await.context("accepting the TCP baseline")?;
    let start = Instant::now();
    let mut buffer = vec![0u8; FRAME];
    let mut got = 0u64;
    while got < bytes {
        let n = stream.read(&mut buffer).await.context("reading the TCP baseline")?;
        if n == 0 {
            bail!("the TCP baseline got {got} of {bytes} bytes");
        }
        got += n as u64;
    }
    let took = start.elapsed();
    sender.await.context("the TCP baseline's writer panicked")??;
    Ok(gbps(bytes, took))
}

/// A call of `function_id` with `payload` on a task of its own, so that the stream it
/// reads or writes can be driven meanwhile.
fn spawn_call(
    iii: &IIIClient,
    function_id: &'static str,
    payload: Value,
) -> tokio::task::JoinHandle<anyhow::Result<Value>> {
    let iii = iii.clone();
    tokio::spawn(async move {
        let request = CallRequest {
            function_id: function_id.to_owned(),
            payload,
            action: None,
            timeout_ms: Some(CALL_TIMEOUT.as_millis() as u64),
        };
        iii.call(request).await.with_context(|| format!("calling {function_id}"))
    })
}

async fn join_call(call: tokio::task::JoinHandle<anyhow::Result<Value>>) -> anyhow::Result<Value> {
    call.await.context("the call's task panicked")?
}

/// iii-sdk `ChannelWriter` → `rill serve` → wasm `function_id`: a channel whose reader
/// ref goes to the function in `payload` (under `"reader"`), `data` written with
/// `ChannelWriter::write` and ended with `ChannelWriter::close`; timed from the call to
/// its result (which comes after the guest read the stream's clean end), and the result
/// checked by `check`.
async fn writer_to_wasm_gbps(
    iii: &IIIClient,
    data: &Data,
    buffer: Option<usize>,
    function_id: &'static str,
    mut payload: Value,
    check: impl FnOnce(&Value) -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    let channel = iii_sdk::helpers::create_channel(iii, buffer)
        .await
        .context("creating a channel (engine::channels::create)")?;
    let writer: ChannelWriter = channel.writer;
    payload["reader"] = serde_json::to_value(&channel.reader_ref)?;
    let start = Instant::now();
    let mut call = spawn_call(iii, function_id, payload);
    let writing = async {
        for frame in data.frames() {
            writer.write(frame).await.context("ChannelWriter::write")?;
        }
        writer.close().await.context("ChannelWriter::close")
    };
    tokio::select! {
        written = writing => written?,
        early = &mut call => bail!(
            "{function_id} returned before the writer had finished: {}",
            match early.context("the call's task panicked")? { Ok(result) => result.to_string(), Err(error) => format!("{error:#}") }
        ),
    }
    let result = join_call(call).await?;
    let took = start.elapsed();
    check(&result)?;
    Ok(gbps(data.bytes, took))
}

/// Into wasm `files::process`, which counts and SHA-256-hashes what it reads: its count
/// and digest must be the writer's.
async fn writer_to_files_process_gbps(
    iii: &IIIClient,
    data: &Data,
    expected_sha256: &str,
    buffer: Option<usize>,
) -> anyhow::Result<f64> {
    let payload = json!({ "filename": "iii-sdk-bench.bin" });
    writer_to_wasm_gbps(iii, data, buffer, "files::process", payload, |result| {
        if result.get("bytes").and_then(Value::as_u64) != Some(data.bytes) {
            bail!(
                "files::process read {} bytes, the SDK's writer sent {}: {result}",
                result["bytes"],
                data.bytes
            );
        }
        if result.get("sha256").and_then(Value::as_str) != Some(expected_sha256) {
            bail!(
                "files::process hashed the stream to {}, the SDK's writer sent {expected_sha256}: {result}",
                result["sha256"]
            );
        }
        if result.get("messages").and_then(Value::as_u64) != Some(0) {
            bail!("files::process saw text messages nobody sent: {result}");
        }
        Ok(())
    })
    .await
}

/// Into wasm `bench::read`, which only counts (64 KiB reads, no per-byte work): the
/// same stream without the guest's hashing, to tell the transport from the consumer.
async fn writer_to_bench_read_gbps(
    iii: &IIIClient,
    data: &Data,
    buffer: Option<usize>,
) -> anyhow::Result<f64> {
    let payload = json!({ "chunk": FRAME });
    writer_to_wasm_gbps(iii, data, buffer, "bench::read", payload, |result| {
        if result.get("read").and_then(Value::as_u64) != Some(data.bytes) {
            bail!(
                "bench::read read {} bytes, the SDK's writer sent {}: {result}",
                result["read"],
                data.bytes
            );
        }
        Ok(())
    })
    .await
}

/// Wasm `bench::write` → `rill serve` → iii-sdk `ChannelReader`: timed from the call to
/// the stream's clean end at the reader.
async fn wasm_to_reader_gbps(iii: &IIIClient, bytes: u64, buffer: Option<usize>) -> anyhow::Result<f64> {
    let channel = iii_sdk::helpers::create_channel(iii, buffer)
        .await
        .context("creating a channel (engine::channels::create)")?;
    let reader: ChannelReader = channel.reader;
    let start = Instant::now();
    let mut call = spawn_call(
        iii,
        "bench::write",
        json!({ "writer": channel.writer_ref, "total": bytes, "chunk": FRAME }),
    );
    let reading = async {
        let mut got = 0u64;
        while let Some(chunk) = reader
            .next_binary()
            .await
            .with_context(|| format!("ChannelReader::next_binary after {got} bytes"))?
        {
            got += chunk.len() as u64;
        }
        anyhow::Ok((got, start.elapsed()))
    };
    // The writer's result may come before the reader is through: only a failure then
    // ends the wait early.
    let mut answered = None;
    tokio::pin!(reading);
    let (got, took) = loop {
        tokio::select! {
            read = &mut reading => break read?,
            result = &mut call, if answered.is_none() => {
                let result = result.context("the call's task panicked")?.context("bench::write failed while the SDK's reader was reading")?;
                answered = Some(result);
            }
        }
    };
    let result = match answered {
        Some(result) => result,
        None => join_call(call).await?,
    };
    if result.get("written").and_then(Value::as_u64) != Some(bytes) {
        bail!("bench::write reports {} bytes written, {bytes} were asked for: {result}", result["written"]);
    }
    if got != bytes {
        bail!("the SDK's ChannelReader got {got} of the {bytes} bytes bench::write wrote");
    }
    Ok(gbps(bytes, took))
}

/// Every run's GB/s, by figure.
struct Figures {
    tcp: Vec<f64>,
    /// iii-sdk `ChannelWriter` → wasm `files::process` (issue 10's figure).
    into_files_process: Vec<f64>,
    /// wasm `bench::write` → iii-sdk `ChannelReader` (issue 10's figure).
    out_of_wasm: Vec<f64>,
    /// iii-sdk `ChannelWriter` → wasm `bench::read` (the same transport, no hashing).
    into_bench_read: Vec<f64>,
}

async fn measure(args: &Args) -> anyhow::Result<Figures> {
    let data = Data::new(args.bytes);
    let expected_sha256 = data.sha256();

    let options = InitOptions {
        // No telemetry while measuring: it is not what is measured.
        otel: Some(iii_helpers::observability::OtelConfig { enabled: Some(false), ..Default::default() }),
        ..InitOptions::default()
    };
    let iii = register_worker(&args.url, options);
    let registered = iii.wait_until_registered(Duration::from_secs(10)).await;
    let figures = async {
        registered.with_context(|| format!("connecting to the engine at {}", args.url))?;
        let mut figures = Figures {
            tcp: Vec::new(),
            into_files_process: Vec::new(),
            out_of_wasm: Vec::new(),
            into_bench_read: Vec::new(),
        };
        for run in 1..=args.runs {
            let context = || format!("run {run} of {}", args.runs);
            figures.tcp.push(
                loopback_tcp_gbps(args.bytes).await.context("loopback TCP copy").with_context(context)?,
            );
            figures.into_files_process.push(
                writer_to_files_process_gbps(&iii, &data, &expected_sha256, args.buffer_frames)
                    .await
                    .context("iii-sdk ChannelWriter → rill serve → wasm files::process")
                    .with_context(context)?,
            );
            figures.out_of_wasm.push(
                wasm_to_reader_gbps(&iii, args.bytes, args.buffer_frames)
                    .await
                    .context("wasm bench::write → rill serve → iii-sdk ChannelReader")
                    .with_context(context)?,
            );
            figures.into_bench_read.push(
                writer_to_bench_read_gbps(&iii, &data, args.buffer_frames)
                    .await
                    .context("iii-sdk ChannelWriter → rill serve → wasm bench::read")
                    .with_context(context)?,
            );
        }
        anyhow::Ok(figures)
    }
    .await;
    // shutdown() joins the SDK's connection thread: off the runtime's workers.
    let stopping = iii.clone();
    tokio::task::spawn_blocking(move || stopping.shutdown()).await.context("stopping the iii client")?;
    figures
}

fn report(args: &Args, figures: &Figures) {
    let tcp = median(&figures.tcp);
    let rows = [
        (
            "sdk_writer_to_files_process",
            "iii-sdk ChannelWriter → rill serve → wasm files::process",
            &figures.into_files_process,
        ),
        (
            "wasm_to_sdk_reader",
            "wasm bench::write → rill serve → iii-sdk ChannelReader",
            &figures.out_of_wasm,
        ),
        (
            "sdk_writer_to_bench_read",
            "  the writer again, into bench::read (no hashing)",
            &figures.into_bench_read,
        ),
    ];
    if args.json {
        let mut fields = Map::new();
        fields.insert("sdk".into(), json!(SDK));
        fields.insert("url".into(), json!(args.url));
        fields.insert("bytes".into(), json!(args.bytes));
        fields.insert("frame_bytes".into(), json!(FRAME));
        fields.insert("runs".into(), json!(args.runs));
        fields.insert("buffer_frames".into(), json!(args.buffer_frames));
        fields.insert("target_gbps".into(), json!(TARGET_GBPS));
        fields.insert("loopback_tcp_gbps".into(), json!(tcp));
        if args.runs > 1 {
            fields.insert("loopback_tcp_runs_gbps".into(), json!(figures.tcp));
        }
        for (field, _, runs) in rows {
            let value = median(runs);
            fields.insert(format!("{field}_gbps"), json!(value));
            fields.insert(format!("{field}_vs_tcp"), json!(value / tcp));
            fields.insert(format!("{field}_meets_target"), json!(value >= TARGET_GBPS));
            if args.runs > 1 {
                fields.insert(format!("{field}_runs_gbps"), json!(runs));
            }
        }
        println!("{}", Value::Object(fields));
        return;
    }
    let size = if args.bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", args.bytes >> 30)
    } else if args.bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", args.bytes >> 20)
    } else {
        format!("{} bytes", args.bytes)
    };
    let runs = if args.runs > 1 { format!(", median of {} runs", args.runs) } else { String::new() };
    println!("{SDK} client, engine rill serve at {}: {size} per stream in 64 KiB frames{runs}", args.url);
    println!();
    println!("{:<56} {:>6} {:>8}   target", "figure", "GB/s", "vs TCP");
    println!("{:<56} {:>6.2} {:>8}", "loopback TCP copy, 64 KiB writes (baseline)", tcp, "1.00×");
    for (_, name, runs) in rows {
        let value = median(runs);
        let mark = if value >= TARGET_GBPS { "met" } else { "missed" };
        let ratio = format!("{:.2}×", value / tcp);
        println!("{name:<56} {value:>6.2} {ratio:>8}   ≥ {TARGET_GBPS} GB/s {mark}");
    }
    if args.runs > 1 {
        println!();
        let list = |values: &[f64]| values.iter().map(|v| format!("{v:.2}")).collect::<Vec<_>>().join(" ");
        println!("runs, GB/s:");
        println!("  {:<58} {}", "loopback TCP copy", list(&figures.tcp));
        for (_, name, runs) in rows {
            println!("  {:<58} {}", name.trim_start(), list(runs));
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => return ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(measure(&args)) {
        Ok(figures) => {
            report(&args, &figures);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("3K").unwrap(), 3 << 10);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("G").is_err());
        assert!(parse_size("99999999999G").is_err());
    }

    #[test]
    fn frames_are_the_pattern_in_64k_pieces() {
        let bytes = 3 * FRAME as u64 + 1000;
        let data = Data::new(bytes);
        let frames: Vec<&[u8]> = data.frames().collect();
        assert_eq!(frames.iter().map(|f| f.len()).collect::<Vec<_>>(), [FRAME, FRAME, FRAME, 1000]);
        let all = frames.concat();
        assert!(all.iter().enumerate().all(|(i, &b)| b == ((i * 31 + 7) % PERIOD) as u8));
        assert_eq!(data.sha256(), format!("{:x}", Sha256::digest(&all)));
        assert_ne!(frames[0], frames[1], "consecutive frames differ");
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
