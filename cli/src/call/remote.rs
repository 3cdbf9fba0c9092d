//! `rill call --server URL`: the same call, made to a running `rill serve` as an iii
//! worker would. Channels are created with `engine::channels::create`, files and stdin
//! stream into them over the channel WebSocket endpoint, and what the function writes
//! streams back the same way. The server keeps every rule: a feed that fails aborts its
//! channel (Close 1011), and an aborted output fails the call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, anyhow, bail};
use futures::{SinkExt, StreamExt};
use indicatif::ProgressBar;
use rill::limits::Limits;
use rill_protocol::ChannelRef;
use rill_protocol::worker::{InvocationResult, codes};
use rill_server::client::{self, Socket, WorkerClient};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message as Frame};

use super::progress::Progress;
use super::streams::{Input, Output};
use super::{
    CallArgs, Failure, ResultTo, fail, open_input, open_output, payload, put_ref, split_spec, usage,
    write_result,
};
use crate::exit;

/// Bytes per binary frame sent (64 KiB, the largest frame rill sends itself).
const FRAME_BYTES: usize = 64 << 10;

/// A worker connection answering nothing but its own calls, with the CLI's errors.
struct Worker(WorkerClient);

async fn connect(url: &str, token: Option<&str>) -> anyhow::Result<Socket> {
    client::connect(url, token).await.with_context(|| format!("cannot connect to {url}"))
}

impl Worker {
    async fn connect(url: &str, token: Option<&str>) -> anyhow::Result<Worker> {
        let client =
            WorkerClient::connect(url, token).await.with_context(|| format!("cannot connect to {url}"))?;
        Ok(Worker(client))
    }

    /// Call `function_id` and wait for its answer.
    async fn call(&mut self, function_id: &str, data: String) -> anyhow::Result<InvocationResult> {
        let data = RawValue::from_string(data).context("the payload is not JSON")?;
        Ok(self.0.call(function_id, data).await?)
    }
}

/// Where the end `channel_ref` (as the server gave it) opens.
fn end_url(server: &str, channel_ref: &Value) -> Result<String, Failure> {
    let channel_ref = ChannelRef::from_value(channel_ref)
        .map_err(|e| fail(exit::HOST, anyhow!("the server gave a malformed channel ref: {e}")))?;
    Ok(channel_ref.endpoint_url(server))
}

pub(super) async fn call(args: CallArgs, server: &str) -> Result<(), Failure> {
    let token = args.token.as_deref().filter(|t| !t.is_empty());
    let readers = args.reader_from.iter().map(|s| split_spec(s)).collect::<Result<Vec<_>, _>>()?;
    let writers = args.writer_to.iter().map(|s| split_spec(s)).collect::<Result<Vec<_>, _>>()?;
    if readers.iter().filter(|(_, p)| p == "-").count() > 1
        || writers.iter().filter(|(_, p)| p == "-").count() > 1
    {
        return Err(usage("only one stream can read stdin, and one write stdout".into()));
    }
    let source = payload::Source::of(args.payload.as_deref());
    let mut payload = payload::read(&source, &Limits::default()).await?;
    let mut worker = Worker::connect(server, token)
        .await
        .map_err(|e| fail(exit::HOST, e.context("cannot reach the server")))?;
    let create = json!({ "buffer_size": args.buffer_bytes.map(|b| b.div_ceil(FRAME_BYTES)) }).to_string();
    let mut tasks = Vec::new();
    let consumer_closed = Arc::new(AtomicBool::new(false));
    let progress = Progress::on_stderr();
    for (field, path) in &readers {
        let refs = created(worker.call("engine::channels::create", create.clone()).await?)?;
        payload = put_ref(&payload, field, &refs["reader"])?;
        let input = open_input(path).await?;
        let socket =
            connect(&end_url(server, &refs["writer"])?, token).await.map_err(|e| fail(exit::HOST, e))?;
        let size = match &input {
            Input::File(file) => file.metadata().ok().map(|m| m.len()),
            Input::Stream(_) => None,
        };
        let bar = progress.stream(format!("{path} → {field}"), size);
        let context = format!("streaming {path} into {field}");
        tasks.push(tokio::spawn(async move { feed(input, socket, bar).await.context(context) }));
    }
    for (field, path) in &writers {
        let refs = created(worker.call("engine::channels::create", create.clone()).await?)?;
        payload = put_ref(&payload, field, &refs["writer"])?;
        let output = open_output(path).await?;
        let socket =
            connect(&end_url(server, &refs["reader"])?, token).await.map_err(|e| fail(exit::HOST, e))?;
        let bar = progress.stream(format!("{field} → {path}"), None);
        let context = format!("streaming {field} out to {path}");
        let closed = Arc::clone(&consumer_closed);
        tasks.push(tokio::spawn(async move { drain(socket, output, closed, bar).await.context(context) }));
    }
    // Where the result goes, as in a local call (a --result-to file is created first).
    let stream_owns_stdout = writers.iter().any(|(_, path)| path == "-");
    let mut to = ResultTo::choose(args.result_to.as_deref(), stream_owns_stdout).await?;
    let answer = worker.call(&args.function_id, payload).await.map_err(|e| fail(exit::HOST, e))?;
    if let Some(error) = answer.error {
        for task in &tasks {
            task.abort();
        }
        progress.end();
        // A consumer that closed its pipe cut the function's output short; what the
        // function did next (usually fail on a `closed` write) is its consequence.
        if consumer_closed.load(Ordering::SeqCst) {
            eprintln!("note: the function then ended with: {} ({})", error.message, error.code);
            return Ok(());
        }
        let code = match error.code.as_str() {
            codes::FUNCTION_NOT_FOUND | "invalid-input" => exit::INPUT,
            codes::INVOCATION_FAILED => exit::FAILED,
            "timed-out" => exit::TIMEOUT,
            "limit-exceeded" => exit::LIMIT,
            _ => exit::HOST,
        };
        return Err(fail(code, anyhow!("{} ({})", error.message, error.code)));
    }
    let mut streamed = Ok(());
    for task in tasks {
        let ended = task
            .await
            .map_err(|e| fail(exit::STREAM, anyhow!(e)))
            .and_then(|r| r.map_err(|e| fail(exit::STREAM, e)));
        if streamed.is_ok() {
            streamed = ended;
        }
    }
    progress.end();
    streamed?;
    let result = answer.result.map_or_else(|| "null".to_owned(), |r| r.get().to_owned());
    write_result(&mut to, &result).await
}

/// The refs of a new channel, from `engine::channels::create`'s answer.
fn created(answer: InvocationResult) -> Result<Value, Failure> {
    match (answer.result, answer.error) {
        (Some(result), None) => serde_json::from_str(result.get())
            .map_err(|e| fail(exit::HOST, anyhow!("a malformed channel: {e}"))),
        (_, Some(error)) => Err(fail(exit::HOST, anyhow!("cannot create a channel: {}", error.message))),
        (None, None) => Err(fail(exit::HOST, anyhow!("the server created no channel"))),
    }
}

/// The input into a writing socket; its end is the clean end (Close 1000), a failure to
/// read it an abort (Close 1011) that the function sees as `aborted`.
async fn feed(input: Input, mut socket: Socket, bar: ProgressBar) -> anyhow::Result<()> {
    let mut input: Box<dyn tokio::io::AsyncRead + Send + Unpin> = match input {
        Input::Stream(stream) => stream,
        Input::File(file) => Box::new(tokio::fs::File::from_std(file)),
    };
    let mut buffer = vec![0u8; FRAME_BYTES];
    loop {
        match input.read(&mut buffer).await {
            Ok(0) => break,
            Ok(n) => {
                socket.send(Frame::Binary(Bytes::copy_from_slice(&buffer[..n]))).await?;
                bar.inc(n as u64);
            }
            Err(err) => {
                bar.abandon();
                let reason = format!("reading the input failed: {err}");
                let frame = CloseFrame { code: CloseCode::Error, reason: reason.clone().into() };
                let _ = socket.send(Frame::Close(Some(frame))).await;
                bail!(reason);
            }
        }
    }
    socket.send(Frame::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() }))).await?;
    // Wait for the server's answer to the Close, so the end is recorded before we go.
    while let Some(Ok(_)) = socket.next().await {}
    bar.finish();
    Ok(())
}

/// A reading socket into the output; text messages go to stderr. An abort fails.
/// `consumer_closed` is raised, before the socket is dropped (so before the function's
/// next write can fail), when the output's consumer closes the pipe.
async fn drain(
    mut socket: Socket,
    mut output: Output,
    consumer_closed: Arc<AtomicBool>,
    bar: ProgressBar,
) -> anyhow::Result<()> {
    loop {
        match socket.next().await {
            Some(Ok(Frame::Binary(bytes))) => {
                if let Err(err) = output.write_all(&bytes).await {
                    bar.abandon();
                    if err.kind() == std::io::ErrorKind::BrokenPipe {
                        consumer_closed.store(true, Ordering::SeqCst);
                        eprintln!("note: the output's consumer closed the pipe, so streaming stopped");
                        return Ok(());
                    }
                    return Err(err).context("writing the output");
                }
                bar.inc(bytes.len() as u64);
            }
            // Printed above the bars, which are drawn again below it.
            Some(Ok(Frame::Text(text))) => bar.suspend(|| eprintln!("{}", rill::inert(text.as_str()))),
            Some(Ok(Frame::Close(Some(frame)))) if frame.code == CloseCode::Normal => break,
            Some(Ok(Frame::Close(frame))) => {
                let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                bail!("the function aborted the stream: {reason}");
            }
            Some(Ok(_)) => {}
            Some(Err(err)) => return Err(err).context("the stream's connection failed"),
            None => bail!("the stream's connection was lost before its end"),
        }
    }
    output.flush().await.context("writing the output")?;
    bar.finish();
    Ok(())
}
