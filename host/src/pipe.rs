//! # Pumps between byte streams and channels
//!
//! Functions stream through channels; the world outside streams through files, pipes and
//! sockets. This module moves bytes between the two, exactly as `rill call` does for its
//! `--reader-from` and `--writer-to` streams, so that an embedder or a network endpoint
//! gets the same behaviour:
//!
//! - [`feed`] copies a tokio [`AsyncRead`] (standard input, a pipe, a socket) into a
//!   channel's [`Writer`], and closes the channel at the end of the input.
//!   [`feed_file`] does the same for a regular file, read on a blocking thread straight
//!   into chunks of the size the channel has room for (one copy, the kernel's).
//! - [`drain`] copies a channel's [`Reader`] into a tokio [`AsyncWrite`] (standard
//!   output, a file, a socket), and hands each text message to a callback.
//!
//! ## Tied to a call
//!
//! A channel handed to a function is only half of the story: the other half is the call.
//! Both pumps take a future that completes when the function has returned, because only
//! then do the channel's statuses say what the function did:
//!
//! - A feed stops as soon as its `stop` future completes: whatever the function left
//!   unread is dropped, and the feed never outlives the call. Afterwards
//!   [`Writer::reader_status`] says whether the function opened its input and read it to
//!   the end.
//! - A drain, once its `returned` future completes, fails at once if the function never
//!   opened its output ([`DrainError::NeverOpened`]), since nothing will ever arrive.
//!   Otherwise it keeps copying to the end of the stream, however long a slow consumer
//!   takes, as long as the consumer keeps accepting bytes: an output that accepts
//!   nothing for [`STALLED_OUTPUT_TIMEOUT`] fails the drain ([`DrainError::Stalled`]).
//!
//! Pass [`std::future::pending()`] to feed or drain a whole stream with no call to
//! watch.
//!
//! ## Failures are never clean ends
//!
//! - If reading the input fails, the feed aborts the channel with the reason
//!   (`reading the input failed: …`), so the function sees a failure
//!   ([`ChannelError::Aborted`]), never a truncated clean end, and the feed returns
//!   [`FeedError::Input`].
//! - If the writer aborts the stream, the drain flushes what arrived before the abort
//!   and fails with [`DrainError::Aborted`].
//! - A reader that leaves (or never attaches in time) ends a feed without an error:
//!   [`Fed::ReaderLeft`], and the reader's status says which.
//! - A consumer that closes its end of the output (a broken pipe: `rill call … | head`)
//!   ends a drain without an error: [`Drained::ConsumerClosed`]. Drop the reader then,
//!   so the function's next write fails with `closed` rather than filling the buffer.
//!
//! # Examples
//!
//! Stream standard input through a function into standard output, as `rill call
//! transform::uppercase --reader-from input=- --writer-to output=-` does:
//!
//! ```no_run
//! # async fn example(host: rill::Host) -> Result<(), Box<dyn std::error::Error>> {
//! use rill::{ChannelOptions, pipe};
//! use tokio::sync::watch;
//!
//! let input = host.create_channel(&ChannelOptions::default())?;
//! let output = host.create_channel(&ChannelOptions::default())?;
//! let payload = serde_json::json!({ "input": input.reader_ref, "output": output.writer_ref });
//! // The function opens the refs; the local ends that pair with them stay unused.
//! let (mut writer, mut reader) = (input.writer, output.reader);
//! drop((input.reader, output.writer));
//!
//! let (done, returned) = watch::channel(false);
//! let returned = || {
//!     let mut returned = returned.clone();
//!     async move {
//!         let _ = returned.wait_for(|returned| *returned).await;
//!     }
//! };
//! let call = async {
//!     let result = host.trigger("transform::uppercase", &payload).await;
//!     done.send_replace(true);
//!     result
//! };
//! let (mut stdin, mut stdout) = (tokio::io::stdin(), tokio::io::stdout());
//! let (result, fed, drained) = tokio::join!(
//!     call,
//!     pipe::feed(&mut stdin, &mut writer, returned()),
//!     pipe::drain(&mut reader, &mut stdout, returned(), |text| eprintln!("{}", rill::inert(&text))),
//! );
//! let (result, _fed, _drained) = (result?, fed?, drained?);
//! eprintln!("{result}; the function read its input: {:?}", writer.reader_status());
//! # Ok(()) }
//! ```

use std::io::Read;
use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use rill_broker::{ChannelError, Item, MAX_CHUNK_BYTES, Reader, Writer, WriterStatus};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long an output may accept nothing before a drain gives up on it: no write of (at
/// most [`OUTPUT_WRITE_BYTES`]) bytes, and no flush or shutdown, completed in this long.
///
/// A consumer that reads slowly gets every byte, however long it takes; this protects
/// against one that stopped reading without closing its end (a hung process, a paused
/// pager, a peer that went silent), which would otherwise keep the host, its channels and
/// the function's output buffered forever. While the function runs, its own deadline
/// usually ends the call first: its writes wait for the consumer too.
pub const STALLED_OUTPUT_TIMEOUT: Duration = Duration::from_secs(60);

/// The most bytes a drain hands its output in one write. An output such as tokio's
/// stdout or file is written by a background thread that takes what one write hands it
/// whole, so this bounds how much one write may take a slow consumer to accept; a write
/// that completes is the progress [`STALLED_OUTPUT_TIMEOUT`] waits for.
pub const OUTPUT_WRITE_BYTES: usize = 64 << 10;

/// Bytes read from an [`AsyncRead`] per channel write: one channel chunk, so the broker
/// queues each write without copying it again.
const FEED_CHUNK_BYTES: usize = MAX_CHUNK_BYTES;

/// How a feed ended without failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fed {
    /// The input ended and the channel was closed cleanly: every byte is in the channel.
    Complete,
    /// The channel refused more: its reader left, or never attached in time. See
    /// [`Writer::reader_status`] for which.
    ReaderLeft,
    /// The `stop` future completed first. The writer is left open; drop it to abort the
    /// stream, or close it.
    Stopped,
}

/// Why a feed failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// Reading the input failed. The channel was aborted with the reason (`reading the
    /// input failed: …`), so its reader sees a failure, never a truncated clean end.
    #[error("reading the input failed")]
    Input(#[source] std::io::Error),
    /// The channel refused a write or the close for another reason than its reader
    /// leaving (for example, the writer was already finished, or could not attach).
    #[error("writing into the channel failed")]
    Channel(#[source] ChannelError),
    /// The blocking thread reading a file panicked or was cancelled; the writer was
    /// dropped with it (which aborts the stream).
    #[error("the thread reading the input failed")]
    Thread(#[source] tokio::task::JoinError),
}

/// How a drain ended without failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Drained {
    /// Every byte up to the writer's clean end was written, and the output was flushed
    /// and shut down.
    Complete,
    /// The output's consumer closed its end (a broken pipe). The drain stopped; drop the
    /// reader so that the writer's next write fails with `closed`.
    ConsumerClosed,
}

/// Why a drain failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DrainError {
    /// `returned` completed and the writer had never been opened: nothing was, or ever
    /// will be, written to this output.
    #[error("the function returned without opening this output; nothing was written to it")]
    NeverOpened,
    /// The writer aborted the stream with this reason. What it wrote before the abort
    /// was written to the output; the output is incomplete.
    #[error("the function aborted this output: {0}")]
    Aborted(String),
    /// The output accepted nothing for [`STALLED_OUTPUT_TIMEOUT`]: its consumer stopped
    /// reading without closing it.
    #[error(
        "the output accepted nothing for {} s (its consumer stopped reading without closing it); gave up",
        STALLED_OUTPUT_TIMEOUT.as_secs()
    )]
    Stalled,
    /// Writing, flushing or shutting down the output failed (other than a broken pipe,
    /// which is [`Drained::ConsumerClosed`]). An output that accepts zero bytes fails
    /// with [`std::io::ErrorKind::WriteZero`].
    #[error("writing the output failed")]
    Output(#[source] std::io::Error),
    /// Reading the channel failed for another reason than an abort (for example, the
    /// reader could not attach, or the channel expired).
    #[error("reading the channel failed")]
    Channel(#[source] ChannelError),
}

/// Copy `input` into the channel until the input ends (then close the channel), until
/// the reader is gone, or until `stop` completes, whichever comes first.
///
/// Each read is copied out of one reused buffer of one channel chunk
/// ([`MAX_CHUNK_BYTES`]): a chunk handed to the channel must own its bytes, or a short
/// read would pin a whole read buffer while being charged for a few bytes. For a regular
/// file, [`feed_file`] avoids that copy.
///
/// If `stop` completes while a write waits for room, a prefix of the last read may be in
/// the channel; the writer is left open either way (see [`Fed::Stopped`]).
///
/// # Errors
///
/// - [`FeedError::Input`]: reading `input` failed; the channel was aborted with the
///   reason.
/// - [`FeedError::Channel`]: the channel refused a write or the close, other than by its
///   reader leaving ([`Fed::ReaderLeft`] is not an error).
pub async fn feed<R>(
    input: &mut R,
    writer: &mut Writer,
    stop: impl Future<Output = ()>,
) -> Result<Fed, FeedError>
where
    R: AsyncRead + Unpin + ?Sized,
{
    let copy = async {
        let mut buf = vec![0u8; FEED_CHUNK_BYTES];
        loop {
            match input.read(&mut buf).await {
                Ok(0) => return close(writer),
                Ok(n) => match writer.write(Bytes::copy_from_slice(&buf[..n])).await {
                    Ok(()) => {}
                    Err(err) if reader_left(&err) => return Ok(Fed::ReaderLeft),
                    Err(err) => return Err(FeedError::Channel(err)),
                },
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => return Err(input_failed(writer, err)),
            }
        }
    };
    tokio::select! {
        fed = copy => fed,
        () = stop => Ok(Fed::Stopped),
    }
}

/// Copy a regular file into the channel, as [`feed`] does, reading it on a blocking
/// thread into chunks of exactly the size the channel has room for: one read (the
/// kernel's copy) per chunk, and no copy after it.
///
/// The thread owns the writer while it runs, so it is taken by value and handed back
/// with the outcome. `stop` is watched while the thread waits for room in the channel
/// (a read of a regular file does not block for long).
///
/// # Errors
///
/// As [`feed`], plus [`FeedError::Thread`] if the reading thread panicked or was
/// cancelled (the writer is then dropped, which aborts the stream).
pub async fn feed_file(
    file: std::fs::File,
    mut writer: Writer,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(Fed, Writer), FeedError> {
    let runtime = tokio::runtime::Handle::current();
    let thread = tokio::task::spawn_blocking(move || {
        let fed = copy_file(&runtime, file, &mut writer, stop);
        fed.map(|fed| (fed, writer))
    });
    thread.await.unwrap_or_else(|join| Err(FeedError::Thread(join)))
}

/// The loop of [`feed_file`], on its blocking thread: waits for the channel (or for
/// `stop`) through `runtime`.
fn copy_file(
    runtime: &tokio::runtime::Handle,
    mut file: std::fs::File,
    writer: &mut Writer,
    stop: impl Future<Output = ()>,
) -> Result<Fed, FeedError> {
    let mut stop = pin!(stop);
    loop {
        let room = runtime.block_on(async {
            tokio::select! {
                room = writer.ready() => room.map(Some),
                () = &mut stop => Ok(None),
            }
        });
        let room = match room {
            Ok(Some(room)) => room,
            Ok(None) => return Ok(Fed::Stopped),
            Err(err) if reader_left(&err) => return Ok(Fed::ReaderLeft),
            Err(err) => return Err(FeedError::Channel(err)),
        };
        let mut chunk = Vec::with_capacity(room);
        // `take` + `read_to_end` fills the chunk without zeroing it first.
        match (&mut file).take(room as u64).read_to_end(&mut chunk) {
            Ok(0) => return close(writer),
            // `ready` promised room for this chunk: the write buffers it without waiting.
            Ok(_) => match runtime.block_on(writer.write(chunk)) {
                Ok(()) => {}
                Err(err) if reader_left(&err) => return Ok(Fed::ReaderLeft),
                Err(err) => return Err(FeedError::Channel(err)),
            },
            Err(err) => return Err(input_failed(writer, err)),
        }
    }
}

/// The channel refused a write: the reader is gone, or never attached in time. Either
/// way the feed is over, and the reader's status tells the caller why.
fn reader_left(err: &ChannelError) -> bool {
    matches!(err, ChannelError::Closed | ChannelError::TimedOut)
}

/// Reading the input failed: abort the stream with why, so the reader sees a failure
/// rather than a truncated clean end.
fn input_failed(writer: &mut Writer, err: std::io::Error) -> FeedError {
    writer.abort(format!("reading the input failed: {err}"));
    FeedError::Input(err)
}

/// The clean end. A reader already gone is not an error here: its status says so.
fn close(writer: &mut Writer) -> Result<Fed, FeedError> {
    match writer.close() {
        Ok(()) => Ok(Fed::Complete),
        Err(err) if reader_left(&err) => Ok(Fed::ReaderLeft),
        Err(err) => Err(FeedError::Channel(err)),
    }
}

/// Copy the channel into `output` until the end of the stream, then flush and shut the
/// output down; hand each text message to `on_text`, in order with the bytes.
///
/// Once `returned` completes (the function the writer ref was handed to has returned),
/// a channel whose writer was never opened fails the drain at once; otherwise the copy
/// goes on to the end of the stream. Each write, flush and shutdown of the output must
/// complete within [`STALLED_OUTPUT_TIMEOUT`]; the output is handed at most
/// [`OUTPUT_WRITE_BYTES`] per write.
///
/// # Errors
///
/// - [`DrainError::NeverOpened`]: `returned` completed and the writer was never opened.
/// - [`DrainError::Aborted`]: the writer aborted; what it wrote before was written out.
/// - [`DrainError::Stalled`]: the output accepted nothing for [`STALLED_OUTPUT_TIMEOUT`].
/// - [`DrainError::Output`]: writing to the output failed (a broken pipe is not an error
///   but [`Drained::ConsumerClosed`]).
/// - [`DrainError::Channel`]: reading the channel failed otherwise.
pub async fn drain<W>(
    reader: &mut Reader,
    output: &mut W,
    returned: impl Future<Output = ()>,
    mut on_text: impl FnMut(String),
) -> Result<Drained, DrainError>
where
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut returned = pin!(returned);
    let mut checked_writer = false;
    loop {
        let next = tokio::select! {
            next = reader.next() => next,
            () = &mut returned, if !checked_writer => {
                checked_writer = true;
                if reader.writer_status() == WriterStatus::Unattached {
                    return Err(DrainError::NeverOpened);
                }
                continue;
            }
        };
        match next {
            Ok(Some(Item::Bytes(bytes))) => {
                if let Err(stop) = write_out(output, &bytes).await {
                    return stop.into_drained();
                }
            }
            Ok(Some(Item::Text(text))) => on_text(text),
            Ok(None) => {
                return match finish_out(output).await {
                    Ok(()) => Ok(Drained::Complete),
                    Err(stop) => stop.into_drained(),
                };
            }
            Err(ChannelError::Aborted(reason)) => {
                // What the writer did write is kept; the output is incomplete.
                let _ = finish_out(output).await;
                return Err(DrainError::Aborted(reason));
            }
            Err(err) => return Err(DrainError::Channel(err)),
        }
    }
}

/// Why writing to the output stopped: a closed pipe, or a failure.
enum OutputStop {
    ConsumerClosed,
    Failed(DrainError),
}

impl OutputStop {
    fn into_drained(self) -> Result<Drained, DrainError> {
        match self {
            OutputStop::ConsumerClosed => Ok(Drained::ConsumerClosed),
            OutputStop::Failed(err) => Err(err),
        }
    }
}

/// Write all of `bytes`, a bounded piece at a time, each piece within
/// [`STALLED_OUTPUT_TIMEOUT`].
async fn write_out<W: AsyncWrite + Unpin + ?Sized>(
    output: &mut W,
    mut bytes: &[u8],
) -> Result<(), OutputStop> {
    while !bytes.is_empty() {
        let piece = &bytes[..bytes.len().min(OUTPUT_WRITE_BYTES)];
        match output_op(output.write(piece)).await? {
            0 => {
                let zero = std::io::Error::new(std::io::ErrorKind::WriteZero, "the output accepted no bytes");
                return Err(OutputStop::Failed(DrainError::Output(zero)));
            }
            n => bytes = &bytes[n..],
        }
    }
    Ok(())
}

/// Flush and shut down the output, each within [`STALLED_OUTPUT_TIMEOUT`].
async fn finish_out<W: AsyncWrite + Unpin + ?Sized>(output: &mut W) -> Result<(), OutputStop> {
    output_op(output.flush()).await?;
    output_op(output.shutdown()).await
}

/// One operation on the output, classified: a closed pipe, a stall, or another failure.
async fn output_op<T>(op: impl Future<Output = std::io::Result<T>>) -> Result<T, OutputStop> {
    match tokio::time::timeout(STALLED_OUTPUT_TIMEOUT, op).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::BrokenPipe => Err(OutputStop::ConsumerClosed),
        Ok(Err(err)) => Err(OutputStop::Failed(DrainError::Output(err))),
        Err(_) => Err(OutputStop::Failed(DrainError::Stalled)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is a test failure")]

    use std::pin::Pin;
    use std::task::{Context, Poll};

    use rill_broker::{Broker, BrokerConfig, ChannelOptions, MIN_BUFFER_BYTES, NewChannel, ReaderStatus};
    use tokio::io::ReadBuf;
    use tokio::time::Instant;

    use super::*;

    fn channel() -> (Broker, NewChannel) {
        let broker = Broker::new(BrokerConfig::default());
        let channel = broker.create(&ChannelOptions::buffer_bytes(MIN_BUFFER_BYTES)).unwrap();
        (broker, channel)
    }

    /// Everything a reader gets up to the end, or the error that ended it.
    async fn read_all(reader: &mut Reader) -> (Vec<u8>, Result<(), ChannelError>) {
        let mut got = Vec::new();
        loop {
            match reader.next().await {
                Ok(Some(Item::Bytes(bytes))) => got.extend_from_slice(&bytes),
                Ok(Some(Item::Text(_))) => {}
                Ok(None) => return (got, Ok(())),
                Err(err) => return (got, Err(err)),
            }
        }
    }

    /// An input that fails on every read.
    struct Failing;

    impl AsyncRead for Failing {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Poll::Ready(Err(std::io::Error::other("the disk is on fire")))
        }
    }

    #[tokio::test]
    async fn a_feed_copies_its_input_and_closes_the_channel() {
        let (_broker, NewChannel { mut writer, mut reader, .. }) = channel();
        let input = vec![7u8; 3 * MAX_CHUNK_BYTES + 5];
        let mut unread = &input[..];
        let (fed, (got, end)) =
            tokio::join!(feed(&mut unread, &mut writer, std::future::pending()), read_all(&mut reader));
        assert_eq!(fed.unwrap(), Fed::Complete);
        assert_eq!((got, end), (input, Ok(())));
        assert_eq!(writer.reader_status(), ReaderStatus::Finished);
    }

    #[tokio::test]
    async fn an_input_that_fails_to_read_aborts_the_channel() {
        let (_broker, NewChannel { mut writer, mut reader, .. }) = channel();
        let mut input = AsyncReadExt::chain(&b"abc"[..], Failing);
        let (fed, (got, end)) =
            tokio::join!(feed(&mut input, &mut writer, std::future::pending()), read_all(&mut reader));
        assert!(
            matches!(fed, Err(FeedError::Input(ref err)) if err.to_string() == "the disk is on fire"),
            "{fed:?}"
        );
        assert_eq!(got, b"abc", "what was read before the failure is delivered");
        assert_eq!(end, Err(ChannelError::Aborted("reading the input failed: the disk is on fire".into())));
    }

    #[tokio::test]
    async fn a_feed_ends_without_error_when_its_reader_leaves() {
        let (_broker, NewChannel { mut writer, mut reader, .. }) = channel();
        let read_one_and_leave = async move {
            assert!(matches!(reader.next().await, Ok(Some(Item::Bytes(_)))));
        };
        let mut endless = tokio::io::repeat(1);
        let (fed, ()) =
            tokio::join!(feed(&mut endless, &mut writer, std::future::pending()), read_one_and_leave);
        assert_eq!(fed.unwrap(), Fed::ReaderLeft);
        assert_eq!(writer.reader_status(), ReaderStatus::Dropped);
    }

    #[tokio::test(start_paused = true)]
    async fn a_feed_stops_when_told_and_leaves_the_writer_open() {
        // The reader never reads: the feed waits for room until `stop`.
        let (_broker, NewChannel { mut writer, reader, .. }) = channel();
        let mut endless = tokio::io::repeat(1);
        let stop = tokio::time::sleep(Duration::from_secs(5));
        let started = Instant::now();
        let fed = feed(&mut endless, &mut writer, stop).await;
        assert_eq!(fed.unwrap(), Fed::Stopped);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert_eq!(reader.writer_status(), WriterStatus::Writing);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_feeds_whole_and_hands_the_writer_back() {
        let mut file = tempfile::tempfile().unwrap();
        let content: Vec<u8> = (0..MIN_BUFFER_BYTES * 3 + 17).map(|i| i as u8).collect();
        std::io::Write::write_all(&mut file, &content).unwrap();
        std::io::Seek::rewind(&mut file).unwrap();
        let (_broker, NewChannel { writer, mut reader, .. }) = channel();
        let (fed, (got, end)) =
            tokio::join!(feed_file(file, writer, std::future::pending()), read_all(&mut reader));
        let (fed, writer) = fed.unwrap();
        assert_eq!(fed, Fed::Complete);
        assert_eq!((got, end), (content, Ok(())));
        assert_eq!(writer.reader_status(), ReaderStatus::Finished);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_feed_stops_when_told() {
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &vec![1u8; MIN_BUFFER_BYTES * 4]).unwrap();
        std::io::Seek::rewind(&mut file).unwrap();
        // The reader never reads: the thread waits for room until `stop`.
        let (_broker, NewChannel { writer, reader, .. }) = channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let feeding = tokio::spawn(feed_file(file, writer, async move {
            let _ = stopped.await;
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!feeding.is_finished(), "the feed waits for room");
        stop.send(()).unwrap();
        let (fed, _writer) = feeding.await.unwrap().unwrap();
        assert_eq!(fed, Fed::Stopped);
        assert_eq!(reader.writer_status(), WriterStatus::Writing);
    }

    #[tokio::test]
    async fn a_drain_copies_the_bytes_and_hands_the_texts_over() {
        let (_broker, NewChannel { mut writer, mut reader, .. }) = channel();
        writer.write(&b"one "[..]).await.unwrap();
        writer.send_text("halfway").await.unwrap();
        writer.write(&b"two"[..]).await.unwrap();
        writer.close().unwrap();
        let (mut output, mut texts) = (Vec::new(), Vec::new());
        let drained = drain(&mut reader, &mut output, std::future::pending(), |text| texts.push(text)).await;
        assert_eq!(drained.unwrap(), Drained::Complete);
        assert_eq!(output, b"one two");
        assert_eq!(texts, ["halfway"]);
    }

    #[tokio::test]
    async fn an_aborted_stream_keeps_what_was_written_and_fails() {
        let (_broker, NewChannel { mut writer, mut reader, .. }) = channel();
        writer.write(&b"partial"[..]).await.unwrap();
        writer.abort("the function failed");
        let mut output = Vec::new();
        let drained = drain(&mut reader, &mut output, std::future::pending(), drop).await;
        assert!(
            matches!(drained, Err(DrainError::Aborted(ref reason)) if reason == "the function failed"),
            "{drained:?}"
        );
        assert_eq!(output, b"partial");
    }

    #[tokio::test]
    async fn an_output_never_opened_fails_once_the_call_returned() {
        // The writer end is never used, so it never attaches.
        let (_broker, NewChannel { writer: _unused, mut reader, .. }) = channel();
        let mut output = Vec::new();
        let drained = drain(&mut reader, &mut output, std::future::ready(()), drop).await;
        assert!(matches!(drained, Err(DrainError::NeverOpened)), "{drained:?}");
        assert_eq!(
            drained.unwrap_err().to_string(),
            "the function returned without opening this output; nothing was written to it"
        );
    }

    #[tokio::test]
    async fn an_output_opened_before_the_return_is_drained_to_its_end() {
        let (_broker, NewChannel { mut writer, mut reader, .. }) = channel();
        writer.write(&b"written"[..]).await.unwrap();
        let finish_later = async move {
            tokio::task::yield_now().await;
            writer.write(&b" after the return"[..]).await.unwrap();
            writer.close().unwrap();
        };
        let mut output = Vec::new();
        let (drained, ()) =
            tokio::join!(drain(&mut reader, &mut output, std::future::ready(()), drop), finish_later);
        assert_eq!(drained.unwrap(), Drained::Complete);
        assert_eq!(output, b"written after the return");
    }

    /// A channel holding `bytes` bytes and then its clean end.
    async fn closed_channel_with(bytes: usize) -> (Broker, Reader) {
        let (broker, NewChannel { mut writer, reader, .. }) = channel();
        writer.write(vec![7u8; bytes]).await.unwrap();
        writer.close().unwrap();
        (broker, reader)
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_output_is_given_up_after_the_timeout() {
        let (_broker, mut reader) = closed_channel_with(100).await;
        let (mut output, _consumer_never_reads) = tokio::io::duplex(16);
        let started = Instant::now();
        let drained = drain(&mut reader, &mut output, std::future::pending(), drop).await;
        assert_eq!(started.elapsed(), STALLED_OUTPUT_TIMEOUT);
        assert!(matches!(drained, Err(DrainError::Stalled)), "{drained:?}");
        assert_eq!(
            drained.unwrap_err().to_string(),
            "the output accepted nothing for 60 s (its consumer stopped reading without closing it); gave up"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_output_that_keeps_reading_is_never_given_up() {
        // Each 16 bytes are taken just before the timeout: the whole drain takes far
        // longer than the timeout, and completes.
        let (_broker, mut reader) = closed_channel_with(100).await;
        let (mut output, mut consumer) = tokio::io::duplex(16);
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
        let started = Instant::now();
        let drained = drain(&mut reader, &mut output, std::future::pending(), drop).await;
        assert_eq!(drained.unwrap(), Drained::Complete);
        assert!(started.elapsed() > STALLED_OUTPUT_TIMEOUT * 5);
        assert_eq!(reading.await.unwrap(), vec![7u8; 100]);
    }

    #[tokio::test]
    async fn a_closed_consumer_is_told_apart_from_a_failure() {
        let (_broker, mut reader) = closed_channel_with(100).await;
        let (mut output, consumer) = tokio::io::duplex(16);
        drop(consumer);
        let drained = drain(&mut reader, &mut output, std::future::pending(), drop).await;
        assert_eq!(drained.unwrap(), Drained::ConsumerClosed);
    }
}
