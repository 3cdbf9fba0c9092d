//! `rill serve` as iii clients use it, over loopback: channel streams between a
//! WebSocket client and a wasm function both ways (64 KiB binary frames, beside a
//! same-run loopback TCP copy), and serial call round trips through the worker protocol
//! and plain HTTP. The clients speak the wire protocol with as little as possible on top
//! (tokio-tungstenite, as iii's Rust SDK does, and `rill_server::client` for calls), so
//! the figures are the server's, not a client library's.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use rill::{ChannelRef, Host};
pub(crate) use rill_server::client::Socket;
use rill_server::client::WorkerClient;
use rill_server::{Server, ServerConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::report::{Report, Row};
use crate::{Scale, gbps};

/// Bytes per frame of the WebSocket streams (64 KiB, rill's largest chunk).
const FRAME_BYTES: usize = 64 << 10;

/// The server figures, with `host` (a host of its own: a server takes over its host's
/// remote calls) serving the `bench::*` functions; `in_process` is the same run's serial
/// `Host::trigger` rate, which the network round trips are set beside.
pub(crate) async fn serve(
    report: &mut Report,
    host: Host,
    scale: Scale,
    in_process: f64,
) -> anyhow::Result<()> {
    let server = Server::new(host, ServerConfig::default())?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));

    let bytes = scale.stream_bytes();
    let tcp = loopback_tcp_gbps(bytes).await?;
    report.row(Row::new("loopback TCP copy (baseline)", tcp, "GB/s"));
    report.field("server_loopback_tcp_gbps", tcp);
    let mut worker = Worker::connect(address).await?;
    let into_wasm = client_to_wasm_gbps(&mut worker, address, bytes).await?;
    report.row(
        Row::new("WebSocket client → rill serve → wasm", into_wasm, "GB/s")
            .vs("TCP", tcp)
            .target("≥ 1.5 GB/s"),
    );
    let out_of_wasm = wasm_to_client_gbps(&mut worker, address, bytes).await?;
    report.row(
        Row::new("wasm → rill serve → WebSocket client", out_of_wasm, "GB/s")
            .vs("TCP", tcp)
            .target("≥ 1.5 GB/s"),
    );
    report.field("server_client_to_wasm_gbps", into_wasm);
    report.field("server_wasm_to_client_gbps", out_of_wasm);
    report.field("server_client_to_wasm_vs_tcp", into_wasm / tcp);
    report.field("server_wasm_to_client_vs_tcp", out_of_wasm / tcp);

    let calls = scale.calls() / 2;
    let (rate, p99) = worker_round_trips(&mut worker, calls).await?;
    report.row(
        Row::new("worker → rill serve → wasm, serial", rate, "calls/s")
            .vs("in-process", in_process)
            .target("≥ 12,810/s (3× iii)"),
    );
    report.row(Row::new("  p99 round trip", p99.as_secs_f64() * 1e3, "ms").target("≤ 1 ms"));
    report.field("server_worker_calls_per_s", rate);
    report.field("server_worker_call_p99_ms", p99.as_secs_f64() * 1e3);
    let http = http_round_trips(address, calls).await?;
    report.row(Row::new("HTTP POST /functions → wasm, serial", http, "calls/s").vs("in-process", in_process));
    report.field("server_http_calls_per_s", http);
    report.field("server_http_vs_in_process", http / in_process);
    report.field("server_worker_calls_vs_in_process", rate / in_process);

    let _ = stop.send(());
    serving.await?;
    Ok(())
}

/// The same bytes through a loopback TCP connection, 64 KiB writes, one task each side.
async fn loopback_tcp_gbps(bytes: u64) -> anyhow::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let sender = tokio::spawn(async move {
        let mut stream = TcpStream::connect(address).await?;
        let buffer = vec![0x5au8; FRAME_BYTES];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(FRAME_BYTES as u64) as usize;
            stream.write_all(&buffer[..n]).await?;
            left -= n as u64;
        }
        anyhow::Ok(())
    });
    let (mut stream, _) = listener.accept().await?;
    let start = Instant::now();
    let mut buffer = vec![0u8; FRAME_BYTES];
    let mut got = 0u64;
    while got < bytes {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            bail!("the TCP baseline lost bytes");
        }
        got += n as u64;
    }
    sender.await??;
    Ok(gbps(bytes, start.elapsed()))
}

pub(crate) struct Worker(WorkerClient);

impl Worker {
    pub(crate) async fn connect(address: SocketAddr) -> anyhow::Result<Worker> {
        Ok(Worker(WorkerClient::connect(&format!("ws://{address}/"), None).await?))
    }

    /// Start a call; [`Worker::answer`] waits for it.
    async fn start(&mut self, function_id: &str, data: Value) -> anyhow::Result<String> {
        Ok(self.0.start(function_id, serde_json::value::to_raw_value(&data)?).await?)
    }

    /// The result of the call `id`; a failed call is an error.
    async fn answer(&mut self, id: &str) -> anyhow::Result<Value> {
        let answer = self.0.answer(id).await?;
        if let Some(error) = answer.error {
            bail!("the call failed: {} ({})", error.message, error.code);
        }
        Ok(answer.result.map_or(Ok(Value::Null), |result| serde_json::from_str(result.get()))?)
    }

    pub(crate) async fn call(&mut self, function_id: &str, data: Value) -> anyhow::Result<Value> {
        let id = self.start(function_id, data).await?;
        self.answer(&id).await
    }

    async fn channel(&mut self) -> anyhow::Result<(Value, Value)> {
        let refs = self.call("engine::channels::create", json!({"buffer_size": null})).await?;
        Ok((refs["writer"].clone(), refs["reader"].clone()))
    }
}

async fn open(address: SocketAddr, end: &Value) -> anyhow::Result<Socket> {
    let url = ChannelRef::from_value(end)?.endpoint_url(&format!("ws://{address}"));
    Ok(connect_async(url).await.context("opening a channel end")?.0)
}

/// A client writes `bytes` in 64 KiB frames; wasm `bench::read` reads them.
pub(crate) async fn client_to_wasm_gbps(
    worker: &mut Worker,
    address: SocketAddr,
    bytes: u64,
) -> anyhow::Result<f64> {
    let (writer, reader) = worker.channel().await?;
    let mut socket = open(address, &writer).await?;
    let start = Instant::now();
    let id = worker.start("bench::read", json!({"reader": reader, "chunk": FRAME_BYTES})).await?;
    let frame = Bytes::from(vec![0x5au8; FRAME_BYTES]);
    let mut left = bytes;
    while left > 0 {
        let n = left.min(FRAME_BYTES as u64) as usize;
        socket.feed(Frame::Binary(frame.slice(..n))).await?;
        left -= n as u64;
    }
    socket.send(Frame::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() }))).await?;
    let result = worker.answer(&id).await?;
    let took = start.elapsed();
    if result["read"].as_u64() != Some(bytes) {
        bail!("the wasm reader got {} of {bytes} bytes", result["read"]);
    }
    Ok(gbps(bytes, took))
}

/// Wasm `bench::write` writes `bytes` in 64 KiB writes; a client reads them.
async fn wasm_to_client_gbps(worker: &mut Worker, address: SocketAddr, bytes: u64) -> anyhow::Result<f64> {
    let (writer, reader) = worker.channel().await?;
    let mut socket = open(address, &reader).await?;
    let start = Instant::now();
    let id =
        worker.start("bench::write", json!({"writer": writer, "total": bytes, "chunk": FRAME_BYTES})).await?;
    let mut got = 0u64;
    loop {
        match socket.next().await {
            Some(Ok(Frame::Binary(chunk))) => got += chunk.len() as u64,
            Some(Ok(Frame::Close(Some(close)))) if close.code == CloseCode::Normal => break,
            Some(Ok(Frame::Close(close))) => bail!("the stream was aborted: {close:?}"),
            Some(Ok(_)) => {}
            other => bail!("the reading connection ended: {other:?}"),
        }
    }
    let took = start.elapsed();
    worker.answer(&id).await?;
    if got != bytes {
        bail!("the client got {got} of {bytes} bytes");
    }
    Ok(gbps(bytes, took))
}

/// Serial `bench::noop` calls through the worker protocol: calls/s and the p99.
async fn worker_round_trips(worker: &mut Worker, calls: usize) -> anyhow::Result<(f64, Duration)> {
    for _ in 0..calls / 10 {
        worker.call("bench::noop", json!({})).await?;
    }
    let mut latencies = Vec::with_capacity(calls);
    let start = Instant::now();
    for _ in 0..calls {
        let t = Instant::now();
        worker.call("bench::noop", json!({})).await?;
        latencies.push(t.elapsed());
    }
    let rate = calls as f64 / start.elapsed().as_secs_f64();
    latencies.sort();
    let p99 = latencies.get(calls * 99 / 100).copied().ok_or_else(|| anyhow!("no calls"))?;
    Ok((rate, p99))
}

/// Serial `POST /functions/bench::noop` on one keep-alive connection.
async fn http_round_trips(address: SocketAddr, calls: usize) -> anyhow::Result<f64> {
    let mut stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let request = format!(
        "POST /functions/bench::noop HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    let mut buffer = vec![0u8; 4096];
    let mut one = async |stream: &mut TcpStream| -> anyhow::Result<()> {
        stream.write_all(request.as_bytes()).await?;
        // The answer is small: read until its headers and its Content-Length body are in.
        let mut have = 0;
        loop {
            let n = stream.read(&mut buffer[have..]).await?;
            if n == 0 {
                bail!("the server closed the connection");
            }
            have += n;
            let text = String::from_utf8_lossy(&buffer[..have]);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                if !head.starts_with("HTTP/1.1 200") {
                    bail!("the call failed: {head}");
                }
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                    })
                    .and_then(|v| v.parse::<usize>().ok())
                    .ok_or_else(|| anyhow!("no Content-Length"))?;
                if body.len() >= length {
                    return Ok(());
                }
            }
        }
    };
    for _ in 0..calls / 10 {
        one(&mut stream).await?;
    }
    let start = Instant::now();
    for _ in 0..calls {
        one(&mut stream).await?;
    }
    Ok(calls as f64 / start.elapsed().as_secs_f64())
}
