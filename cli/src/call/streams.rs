//! The streams of `rill call`: feeding files into `--reader-from` channels and draining
//! `--writer-to` channels into files.
//!
//! Both kinds of task are told when the function has returned (a `watch` flag), because
//! only then do the channel's statuses say what the function did:
//!
//! - A feed stops at once and reports its reader's [`ReaderStatus`]: whether the function
//!   opened its input and read it to the end. It never waits for a reader that is gone.
//! - A drain fails at once if the function never opened its output; otherwise it keeps
//!   copying until the end of the stream, however long a slow consumer takes, as long as
//!   the consumer keeps accepting bytes (see [`STALLED_OUTPUT_TIMEOUT`]).

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail};
use bytes::Bytes;
use rill::{ChannelError, Item, Reader, ReaderStatus, Writer, WriterStatus};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

/// Bytes read from standard input per channel write: one channel chunk, so the broker
/// queues each write without copying it again.
const FEED_CHUNK_BYTES: usize = rill::broker::MAX_CHUNK_BYTES;

/// The most bytes handed to the output in one write. The output (stdout, a file) is
/// written by a background thread that takes what one write hands it whole, so this
/// bounds how much one write may take a slow consumer to accept; a write that completes
/// is the progress [`STALLED_OUTPUT_TIMEOUT`] waits for.
const OUTPUT_WRITE_BYTES: usize = 64 << 10;

/// How long an output may accept nothing before `rill call` gives up on it: no write of
/// (at most [`OUTPUT_WRITE_BYTES`]) bytes to a `--writer-to` file or pipe completed in
/// this long.
///
/// A consumer that reads slowly gets every byte, however long it takes; this protects
/// against one that stopped reading without closing its end (a hung process, a paused
/// pager), which would otherwise keep rill, its channels and the function's output
/// buffered forever. While the function runs, its own deadline usually ends the call
/// first: its writes wait for the consumer too.
pub(crate) const STALLED_OUTPUT_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a `--reader-from` stream comes from.
pub(crate) enum Input {
    /// Standard input, a pipe, a device: read asynchronously, each read passed on as it
    /// arrives (a thread blocked reading it could not be stopped).
    Stream(Box<dyn AsyncRead + Send + Unpin>),
    /// A regular file, read on a blocking thread straight into the chunks handed to the
    /// channel.
    File(std::fs::File),
}

/// Copy `input` into the channel until its end (then close the channel), until the
/// reader is gone, or until `stop` is raised. A read error aborts the stream so the
/// function sees a failure, never a truncated clean end.
///
/// Returns the writer, so the caller can still ask what its reader did.
async fn copy_in(input: Input, writer: Writer, stop: watch::Receiver<bool>) -> anyhow::Result<Writer> {
    match input {
        Input::Stream(stream) => {
            let mut writer = writer;
            copy_stream(stream, &mut writer, stop).await?;
            Ok(writer)
        }
        Input::File(file) => {
            let runtime = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || {
                let mut writer = writer;
                copy_file(&runtime, file, &mut writer, stop)?;
                Ok(writer)
            })
            .await
            .unwrap_or_else(|join| Err(anyhow!(join).context("the thread reading the input failed")))
        }
    }
}

/// Feed `input` into the channel to its end (the `rill bench` call path).
pub(crate) async fn feed(input: Input, writer: Writer) -> anyhow::Result<()> {
    let (_never, stop) = watch::channel(false);
    copy_in(input, writer, stop).await.map(drop)
}

/// Feed `input` into the channel until the function returns (`returned` is raised), then
/// report what the function did with it. The feed never outlives the call: whatever the
/// function left unread is dropped.
pub(crate) async fn feed_until_return(
    input: Input,
    writer: Writer,
    returned: watch::Receiver<bool>,
) -> anyhow::Result<ReaderStatus> {
    let mut waiting = returned.clone();
    let writer = copy_in(input, writer, returned).await?;
    // The input ended first: the function may still be reading it. Its reader's status
    // means something only once the function returned.
    let _ = waiting.wait_for(|returned| *returned).await;
    Ok(writer.reader_status())
}

/// Whether `stop` was raised (or its sender is gone). A future to race against others.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// The channel refused a write: the reader is gone, or never attached in time. Either
/// way the copy is over, and the reader's status tells the caller why.
fn reader_left(err: &ChannelError) -> bool {
    matches!(err, ChannelError::Closed | ChannelError::TimedOut)
}

/// Each read is copied out of one reused buffer: a chunk handed to the channel must own
/// its bytes, or a short read would pin a whole read buffer while being charged for a
/// few bytes.
async fn copy_stream(
    mut input: impl AsyncRead + Unpin,
    writer: &mut Writer,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut buf = vec![0u8; FEED_CHUNK_BYTES];
    let copy = async {
        loop {
            match input.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => match writer.write(Bytes::copy_from_slice(&buf[..n])).await {
                    Ok(()) => {}
                    Err(err) if reader_left(&err) => return Ok(()),
                    Err(err) => return Err(anyhow!(err).context("writing into the channel")),
                },
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => return Err(input_failed(writer, err)),
            }
        }
        close(writer)
    };
    tokio::select! {
        copied = copy => copied,
        () = stopped(stop) => Ok(()),
    }
}

/// Read the file into chunks of exactly the size the channel has room for, one read
/// (the kernel's copy) per chunk and no copy after it. Runs on a blocking thread and
/// waits for the channel (or for `stop`) through `runtime`.
fn copy_file(
    runtime: &tokio::runtime::Handle,
    mut file: std::fs::File,
    writer: &mut Writer,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    loop {
        let room = runtime.block_on(async {
            tokio::select! {
                room = writer.ready() => room.map(Some),
                () = stopped(stop.clone()) => Ok(None),
            }
        });
        let room = match room {
            Ok(Some(room)) => room,
            Ok(None) => return Ok(()),
            Err(err) if reader_left(&err) => return Ok(()),
            Err(err) => return Err(anyhow!(err).context("writing into the channel")),
        };
        let mut chunk = Vec::with_capacity(room);
        // `take` + `read_to_end` fills the chunk without zeroing it first.
        match (&mut file).take(room as u64).read_to_end(&mut chunk) {
            Ok(0) => break,
            // `ready` promised room for this chunk: the write buffers it without waiting.
            Ok(_) => match runtime.block_on(writer.write(chunk)) {
                Ok(()) => {}
                Err(err) if reader_left(&err) => return Ok(()),
                Err(err) => return Err(anyhow!(err).context("writing into the channel")),
            },
            Err(err) => return Err(input_failed(writer, err)),
        }
    }
    close(writer)
}

/// Reading the input failed: abort the stream with why, so the function sees a failure
/// rather than a truncated clean end.
fn input_failed(writer: &mut Writer, err: std::io::Error) -> anyhow::Error {
    writer.abort(format!("reading the input failed: {err}"));
    anyhow!(err).context("reading the input")
}

/// The clean end. A reader already gone is not an error here: its status says so.
fn close(writer: &mut Writer) -> anyhow::Result<()> {
    match writer.close() {
        Ok(()) => Ok(()),
        Err(err) if reader_left(&err) => Ok(()),
        Err(err) => Err(anyhow!(err).context("closing the channel")),
    }
}

/// Where a `--writer-to` stream goes.
pub(crate) type Output = Box<dyn AsyncWrite + Send + Unpin>;

/// How a drain ended without failing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Drained {
    /// Every byte up to the function's clean end was written.
    Complete,
    /// The output's consumer closed the pipe: the drain stopped and dropped its reader,
    /// so the function's next write sees `closed`.
    ConsumerClosed,
}

/// Why writing to the output stopped.
enum OutputStop {
    ConsumerClosed,
    Failed(anyhow::Error),
}

/// Copy the channel into `output`; text messages go to stderr, one per line.
///
/// Once `returned` is raised, a channel whose writer was never attached fails at once
/// (the function returned without opening it); otherwise the copy goes on to the end of
/// the stream. `consumer_closed` is raised (before the reader is dropped) when the
/// output's consumer closes the pipe.
pub(crate) async fn drain(
    mut reader: Reader,
    mut output: Output,
    mut returned: watch::Receiver<bool>,
    consumer_closed: Arc<AtomicBool>,
) -> anyhow::Result<Drained> {
    let mut checked_writer = false;
    let stopped = loop {
        let next = tokio::select! {
            next = reader.next() => next,
            _ = returned.wait_for(|returned| *returned), if !checked_writer => {
                checked_writer = true;
                if reader.writer_status() == WriterStatus::Unattached {
                    bail!("the function returned without opening this output; nothing was written to it");
                }
                continue;
            }
        };
        match next {
            Ok(Some(Item::Bytes(bytes))) => {
                if let Err(stop) = write_out(&mut output, &bytes).await {
                    break Some(stop);
                }
            }
            Ok(Some(Item::Text(text))) => eprintln!("{}", rill::inert(&text)),
            Ok(None) => break finish_out(&mut output).await.err(),
            Err(ChannelError::Aborted(reason)) => {
                // What the function did write is kept; the output is incomplete.
                let _ = finish_out(&mut output).await;
                bail!("the function aborted this output: {reason}");
            }
            Err(err) => return Err(anyhow!(err).context("reading the function's output")),
        }
    };
    match stopped {
        None => Ok(Drained::Complete),
        Some(OutputStop::ConsumerClosed) => {
            consumer_closed.store(true, Ordering::SeqCst);
            drop(reader);
            Ok(Drained::ConsumerClosed)
        }
        Some(OutputStop::Failed(err)) => Err(err),
    }
}

/// Write all of `bytes`, a bounded piece at a time, each piece within
/// [`STALLED_OUTPUT_TIMEOUT`].
async fn write_out(output: &mut Output, mut bytes: &[u8]) -> Result<(), OutputStop> {
    while !bytes.is_empty() {
        let piece = &bytes[..bytes.len().min(OUTPUT_WRITE_BYTES)];
        match output_op(output.write(piece)).await? {
            0 => return Err(OutputStop::Failed(anyhow!("the output accepted no bytes"))),
            n => bytes = &bytes[n..],
        }
    }
    Ok(())
}

/// Flush and close the output, each within [`STALLED_OUTPUT_TIMEOUT`].
async fn finish_out(output: &mut Output) -> Result<(), OutputStop> {
    output_op(output.flush()).await?;
    output_op(output.shutdown()).await
}

/// One operation on the output, classified: a closed pipe, a stall, or another failure.
async fn output_op<T>(op: impl Future<Output = std::io::Result<T>>) -> Result<T, OutputStop> {
    match tokio::time::timeout(STALLED_OUTPUT_TIMEOUT, op).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::BrokenPipe => Err(OutputStop::ConsumerClosed),
        Ok(Err(err)) => Err(OutputStop::Failed(anyhow!(err).context("writing the output"))),
        Err(_) => Err(OutputStop::Failed(anyhow!(
            "the output accepted nothing for {} s (its consumer stopped reading without closing it); gave up",
            STALLED_OUTPUT_TIMEOUT.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stop_message(stop: Result<(), OutputStop>) -> String {
        match stop {
            Ok(()) => "ok".into(),
            Err(OutputStop::ConsumerClosed) => "consumer closed".into(),
            Err(OutputStop::Failed(err)) => format!("{err:#}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_output_is_given_up_after_the_timeout() {
        let (writer, _consumer_never_reads) = tokio::io::duplex(16);
        let mut output: Output = Box::new(writer);
        let started = tokio::time::Instant::now();
        let stop = write_out(&mut output, &[7u8; 100]).await;
        assert_eq!(started.elapsed(), STALLED_OUTPUT_TIMEOUT);
        assert_eq!(
            stop_message(stop),
            "the output accepted nothing for 60 s (its consumer stopped reading without closing it); gave up"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_output_that_keeps_reading_is_never_given_up() {
        // Each 16 bytes are taken just before the timeout: the whole write takes far
        // longer than the timeout, and completes.
        let (writer, mut consumer) = tokio::io::duplex(16);
        let reading = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 16];
            loop {
                tokio::time::sleep(STALLED_OUTPUT_TIMEOUT - Duration::from_secs(1)).await;
                match consumer.read(&mut buf).await {
                    Ok(0) | Err(_) => return got,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        });
        let mut output: Output = Box::new(writer);
        let started = tokio::time::Instant::now();
        assert_eq!(stop_message(write_out(&mut output, &[7u8; 100]).await), "ok");
        assert!(started.elapsed() > STALLED_OUTPUT_TIMEOUT * 5);
        drop(output);
        assert_eq!(reading.await.ok(), Some(vec![7u8; 100]));
    }

    #[tokio::test]
    async fn a_closed_consumer_is_told_apart_from_a_failure() {
        let (writer, consumer) = tokio::io::duplex(16);
        drop(consumer);
        let mut output: Output = Box::new(writer);
        assert_eq!(stop_message(write_out(&mut output, b"bytes").await), "consumer closed");
    }
}
