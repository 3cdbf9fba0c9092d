//! The memory `rill serve` adds: for idle channel WebSockets, and while a stream runs.
//!
//! The server runs as a child process (`rill serve`, from this very binary) and its
//! `/proc/PID/status` is read while this process holds the clients' sockets, so the
//! figures are the server's alone: not the clients', and not this process's other
//! scenarios'. It also keeps the two sides' sockets in two processes, each within its
//! own open-file limit. Each scenario gets a fresh server, so neither reuses memory the
//! other freed.
//!
//! Where no child can be started (rill-bench used as a library, not inside the `rill`
//! binary) or `/proc` cannot be read, these figures are skipped with a note on stderr,
//! never guessed.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures::{StreamExt, TryStreamExt};
use rill::ChannelRef;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::connect_async_with_config;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::memory::Proc;
use crate::report::{Report, Row};
use crate::server::{Socket, Worker, client_to_wasm_gbps};
use crate::{Options, Scale};

/// Idle channel WebSockets held open at once (a full run; `--quick` holds 8× fewer):
/// half as many channels, each with its reader end and its writer end attached.
const IDLE_CONNECTIONS: usize = 10_000;

/// Channels created, then attached, per batch: each is attached long before the broker's
/// attach deadline, however slow the machine.
const CHANNELS_PER_BATCH: usize = 100;

/// Read buffer of each idle client (bytes).
const IDLE_CLIENT_READ_BUFFER: usize = 4 << 10;

/// Channel ends being opened at once.
const OPENING_AT_ONCE: usize = 32;

/// How long `rill serve` may take to listen (it builds the manifest's crates and loads
/// its functions, from the cache the rest of the run filled).
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// Open files this process needs beside the sockets it holds.
const SPARE_FILES: u64 = 256;

/// The server's memory figures (see the module docs).
pub(crate) async fn measure(report: &mut Report, options: &Options, scale: Scale) -> anyhow::Result<()> {
    let Some(serve) = ServeCommand::new(options) else {
        return Ok(());
    };

    let bytes = scale.stream_bytes();
    let server = Served::start(&serve).await?;
    stream_peak(report, &server, bytes).await?;
    drop(server);

    let connections = IDLE_CONNECTIONS / scale.divisor as usize;
    if let Err(why) = allow_open_files(connections) {
        eprintln!("note: skipping the server's idle-connection memory: {why}");
        return Ok(());
    }
    let server = Served::start(&serve).await?;
    idle_connections(report, &server, connections).await
}

/// Peak RSS the server adds while a client streams `bytes` in 64 KiB frames into wasm
/// `bench::read` through a channel of the default buffer.
async fn stream_peak(report: &mut Report, server: &Served, bytes: u64) -> anyhow::Result<()> {
    let mut worker = Worker::connect(server.address).await?;
    let before = server.proc.reset_peak().ok_or_else(|| server.unreadable())?;
    client_to_wasm_gbps(&mut worker, server.address, bytes).await?;
    let added = server.proc.peak_added_mib(before).ok_or_else(|| server.unreadable())?;
    let buffer_mib = rill::broker::DEFAULT_BUFFER_BYTES as f64 / f64::from(1 << 20);
    report.row(
        Row::new(format!("rill serve: {} stream, peak RSS", size(bytes)), added, "MiB")
            .vs("buffer", buffer_mib)
            .target("≤ 16"),
    );
    report.field("server_stream_peak_rss_added_mib", added);
    Ok(())
}

/// RSS the server adds for `connections` idle channel WebSockets: `connections / 2`
/// channels of the smallest buffer (`engine::channels::create`), each with its writer
/// end and its reader end attached over `GET /ws/channels/{id}`. The channels are
/// counted in (on their own, see `idle_channels_10k_mib`).
///
/// Idle is as a live client idles: each held connection is read by a task of its own,
/// which answers the server's pings (a connection silent past the server's idle timeout
/// would be dropped) and sends nothing else.
async fn idle_connections(report: &mut Report, server: &Served, connections: usize) -> anyhow::Result<()> {
    let mut worker = Worker::connect(server.address).await?;
    let before = server.proc.status_kib("VmRSS:").ok_or_else(|| server.unreadable())?;
    // Dropped, it aborts the tasks and so closes the connections.
    let mut held = tokio::task::JoinSet::new();
    let mut channels = connections / 2;
    while channels > 0 {
        let batch = channels.min(CHANNELS_PER_BATCH);
        let mut ends = Vec::with_capacity(2 * batch);
        for _ in 0..batch {
            let refs = worker.call("engine::channels::create", json!({"buffer_size": 1})).await?;
            ends.push(refs["writer"].clone());
            ends.push(refs["reader"].clone());
        }
        let address = server.address;
        let opened: Vec<Socket> = futures::stream::iter(ends)
            .map(|end: Value| async move { open_idle(address, &end).await })
            .buffer_unordered(OPENING_AT_ONCE)
            .try_collect()
            .await?;
        for mut socket in opened {
            held.spawn(async move { while let Some(Ok(_)) = socket.next().await {} });
        }
        channels -= batch;
    }
    let held_count = held.len();
    wait_for_channel_connections(server.address, held_count).await?;
    let after = settled_rss(&server.proc).await.ok_or_else(|| server.unreadable())?;
    let added_kib = after.saturating_sub(before) as f64;
    let added_mib = added_kib / 1024.0;
    let per_connection = added_kib / held_count as f64;
    report.row(Row::new(
        format!("rill serve: {} idle channel ends", thousands(held_count)),
        added_mib,
        "MiB",
    ));
    report.row(Row::new(
        format!("  per end ({} channels × 2)", thousands(held_count / 2)),
        per_connection,
        "KiB",
    ));
    report.field("server_idle_ws_connections", held_count);
    report.field("server_idle_ws_connections_mib", added_mib);
    report.field("server_idle_ws_kib_per_connection", per_connection);
    Ok(())
}

/// A channel end's WebSocket with a small read buffer: an idle client needs no more, and
/// tungstenite touches all of its read buffer (128 KiB by default) on every read, which
/// over 10,000 connections would cost this process over a GiB.
async fn open_idle(address: SocketAddr, end: &Value) -> anyhow::Result<Socket> {
    let url = ChannelRef::from_value(end)?.endpoint_url(&format!("ws://{address}"));
    let config = WebSocketConfig::default().read_buffer_size(IDLE_CLIENT_READ_BUFFER);
    Ok(connect_async_with_config(url, Some(config), true).await.context("opening a channel end")?.0)
}

/// Wait until the server counts `expected` open channel WebSockets (its `/metrics`
/// gauge), so that every connection is held by the server when its RSS is read.
async fn wait_for_channel_connections(address: SocketAddr, expected: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let open = channel_connections(address).await?;
        if open == expected as u64 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the server holds {open} of the {expected} channel WebSockets opened");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `rill_connections{kind="channel"}` from `GET /metrics`.
async fn channel_connections(address: SocketAddr) -> anyhow::Result<u64> {
    let mut stream = TcpStream::connect(address).await?;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await?;
    text.lines()
        .find_map(|l| l.strip_prefix("rill_connections{kind=\"channel\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .ok_or_else(|| anyhow!("the server's /metrics has no channel connection count"))
}

/// The RSS (KiB) once the server has finished taking in what was just sent (two reads a
/// quarter second apart within 256 KiB, or after 5 s).
async fn settled_rss(proc: &Proc) -> Option<u64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = proc.status_kib("VmRSS:")?;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = proc.status_kib("VmRSS:")?;
        if now.abs_diff(last) <= 256 || Instant::now() > deadline {
            return Some(now);
        }
        last = now;
    }
}

/// How to run `rill serve` with the run's manifest and cache: this binary, if it is
/// `rill`.
#[derive(Debug)]
struct ServeCommand {
    program: PathBuf,
    manifest: PathBuf,
    cache_dir: Option<PathBuf>,
}

impl ServeCommand {
    /// `None` (with a note) where this process is not the `rill` binary or `/proc` cannot
    /// be read.
    fn new(options: &Options) -> Option<ServeCommand> {
        let skip = |why: &str| {
            eprintln!(
                "note: skipping the server's memory figures (rill serve in a process of its own): {why}"
            );
            None
        };
        let program = match std::env::current_exe() {
            Ok(program) => program,
            Err(err) => return skip(&format!("cannot find this program ({err})")),
        };
        if program.file_stem().and_then(|s| s.to_str()) != Some("rill") {
            return skip(&format!("{} is not the rill binary", program.display()));
        }
        if Proc::current().status_kib("VmRSS:").is_none() {
            return skip("cannot read /proc/self/status");
        }
        Some(ServeCommand {
            program,
            manifest: options.manifest.clone(),
            cache_dir: options.cache_dir.clone(),
        })
    }
}

/// A `rill serve` child, killed and waited for when dropped (on every path: an error, a
/// panic, the end of its scenario).
#[derive(Debug)]
struct Served {
    child: Child,
    address: SocketAddr,
    proc: Proc,
}

impl Served {
    /// Start the server on a free loopback port and wait until it listens.
    async fn start(serve: &ServeCommand) -> anyhow::Result<Served> {
        let mut command = Command::new(&serve.program);
        command
            .arg("serve")
            .arg("--manifest")
            .arg(&serve.manifest)
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("RILL_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        match &serve.cache_dir {
            Some(dir) => command.env("RILL_CACHE_DIR", dir),
            None => command.arg("--no-cache"),
        };
        let mut child =
            command.spawn().with_context(|| format!("cannot start {} serve", serve.program.display()))?;
        let stdout = child.stdout.take();
        let proc = Proc::of(child.id());
        // From here on the child is killed however this returns.
        let mut served = Served { child, address: SocketAddr::from(([127, 0, 0, 1], 0)), proc };
        let stdout = stdout.ok_or_else(|| anyhow!("rill serve has no stdout"))?;
        let (first_line, listening) = tokio::sync::oneshot::channel();
        // The first line says where it listens; the rest is drained until the child ends.
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(stdout).lines();
            let _ = first_line.send(lines.next());
            lines.map_while(Result::ok).for_each(drop);
        });
        let line = match tokio::time::timeout(START_TIMEOUT, listening).await {
            Ok(Ok(Some(Ok(line)))) => line,
            Ok(_) => bail!(
                "rill serve ended before listening (exit status: {:?})",
                served.child.try_wait().ok().flatten()
            ),
            Err(_) => bail!("rill serve did not listen within {START_TIMEOUT:?}"),
        };
        served.address = line
            .strip_prefix("rill serve: listening on ws://")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|address| address.parse().ok())
            .ok_or_else(|| anyhow!("rill serve printed {line:?}, not its address"))?;
        Ok(served)
    }

    fn unreadable(&self) -> anyhow::Error {
        anyhow!("cannot read /proc/{}/status of rill serve", self.child.id())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether this process, and the server it starts (which inherits the limit), may hold
/// `sockets` more open files: the soft limit of `/proc/self/limits`, beside what is open
/// now.
fn allow_open_files(sockets: usize) -> Result<(), String> {
    let open_now = std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(0);
    let needed = open_now + sockets as u64 + SPARE_FILES;
    let limits = std::fs::read_to_string("/proc/self/limits")
        .map_err(|err| format!("cannot read /proc/self/limits ({err})"))?;
    let soft = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|v| v.split_whitespace().next())
        .ok_or("/proc/self/limits has no open-file limit")?;
    match soft.parse::<u64>() {
        Ok(soft) if soft < needed => Err(format!(
            "it needs {needed} open files and the limit is {soft} (raise it with `ulimit -n {needed}`)"
        )),
        // A number at least as high, or "unlimited".
        _ => Ok(()),
    }
}

/// `1 GiB`, `128 MiB`.
fn size(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

/// `10,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
