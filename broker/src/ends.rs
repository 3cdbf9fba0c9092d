//! The two ends of a channel: [`Writer`] and [`Reader`].
//!
//! # Attaching
//!
//! An end comes either from [`Broker::open_writer`](crate::Broker::open_writer) or
//! [`Broker::open_reader`](crate::Broker::open_reader) (attached at once) or from
//! [`Broker::create`](crate::Broker::create) (attached lazily, on its first operation). A
//! lazy end that is dropped unused never claims its end, so its ref stays good for someone
//! else.
//!
//! # Disconnection
//!
//! - Dropping an attached [`Reader`] discards what is buffered; the writer's next write
//!   (or its `close`) fails with [`ChannelError::Closed`].
//! - Dropping an attached [`Writer`] that was not closed **aborts** the stream at once: the
//!   reader drains what is buffered, then gets [`ChannelError::Aborted`]. The reason is
//!   read from the writer's [`FailureCause`] when the reader reaches the abort (a host
//!   records there why the writing function failed), else it is "writer dropped without
//!   close". A crashed writer is never a clean end.
//! - [`Writer::abort`] on a lazy end that was never used claims the end first (as any
//!   first operation does), so the reader learns why; the writer ref then answers
//!   [`ChannelError::AlreadyAttached`]. If the ref was opened elsewhere first, it does
//!   nothing.
//!
//! # Clean shutdown
//!
//! [`Writer::close`] is the only clean end: the reader drains what is buffered, then reads
//! `Ok(None)`. Once both ends are finished the channel is freed at once.
//!
//! # Allocation behavior
//!
//! A write shorter than [`SMALL_CHUNK_BYTES`](crate::SMALL_CHUNK_BYTES) is copied onto the
//! end of the channel's tail, one allocation that collects small writes until it holds
//! [`MAX_CHUNK_BYTES`] (its spare capacity always fits in the buffer's room). A larger
//! write of at most [`MAX_CHUNK_BYTES`] that fits the buffer is queued as given, without
//! copying: the [`Bytes`] keeps its allocation alive until it is read, so hand the writer
//! buffers that own their bytes, not small slices of large allocations. Larger writes,
//! and writes that only partly fit, are copied into chunks of at most
//! [`MAX_CHUNK_BYTES`], so a queued chunk never pins more memory than it is charged for.
//! The only host memory a channel holds is its queue and tail, bounded by its buffer size
//! in bytes, each queued item (and the tail) charged
//! [`ITEM_OVERHEAD_BYTES`](crate::ITEM_OVERHEAD_BYTES) extra. A write that does not fit
//! waits. The `AsyncWrite` impl and [`TryWriter`] copy the caller's slice (they cannot
//! keep it).
//!
//! A read hands out a queued chunk as it is (no copy) when it asked for at least that
//! much, or when the chunk is not small; a tail is handed out whole once it is queued.
//! Small chunks in a row, for a read that asked for more, are copied into one new chunk
//! of exactly the joined length (at most the read's limit and [`MAX_CHUNK_BYTES`]), so
//! what a reader holds is never more than it asked for.

use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::channel::{AbortReason, Item, Shared};
use crate::config::bounded_reason;
use crate::{ChannelError, Direction, MAX_CHUNK_BYTES};

/// Most text bytes a [`Reader`] used as [`AsyncRead`] keeps for [`Reader::take_texts`]
/// (1 MiB, plus at most one message). `AsyncRead` can only return bytes, so text messages
/// met on the way are set aside; a peer that sends text forever while the host reads only
/// bytes must not grow host memory without bound. Past this, the read fails (the
/// messages read so far stay available).
pub const MAX_SET_ASIDE_TEXT_BYTES: usize = 1 << 20;

/// Why a writer that is dropped unclosed failed, shared between a host and the writers
/// it hands out.
///
/// A host running a function gives each writer the function's `FailureCause`; when the
/// function traps or times out the host records why before tearing the function down, so
/// its readers see that reason instead of a generic one.
#[derive(Debug, Clone, Default)]
pub struct FailureCause(Arc<OnceLock<String>>);

impl FailureCause {
    /// A cause with nothing recorded yet.
    pub fn new() -> FailureCause {
        FailureCause::default()
    }

    /// Record why the owner failed. Only the first call has an effect.
    pub fn set(&self, reason: impl Into<String>) {
        let _ = self.0.set(bounded_reason(reason.into()));
    }

    /// The recorded reason, if any.
    pub fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

/// What a writer can tell of its reader (see [`Writer::reader_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReaderStatus {
    /// Nobody has attached the reading end yet.
    Unattached,
    /// The reader is attached and has not yet met the end of the stream.
    Reading,
    /// The reader read everything up to the end (a clean end or the abort).
    Finished,
    /// The reader was dropped before the end; what it had not read was discarded.
    Dropped,
}

/// What a reader can tell of its writer (see [`Reader::writer_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriterStatus {
    /// Nobody has attached the writing end yet.
    Unattached,
    /// The writer is attached and has neither closed nor aborted.
    Writing,
    /// The writer closed the stream cleanly.
    Closed,
    /// The writer aborted (explicitly, by being dropped unclosed, or by failing).
    Aborted,
}

/// One end, attached or still lazy. A lazy end holds the channel it came with; it
/// attaches (exactly as opening its ref would: once, and not after expiry) on first use.
enum End {
    Lazy(Arc<Shared>),
    Attached(Arc<Shared>),
}

impl End {
    /// The attached channel, attaching a lazy end first.
    fn shared(&mut self, direction: Direction) -> Result<&Arc<Shared>, ChannelError> {
        if let End::Lazy(shared) = self {
            shared.attach_owned(direction)?;
            *self = End::Attached(Arc::clone(shared));
        }
        match self {
            End::Attached(shared) | End::Lazy(shared) => Ok(shared),
        }
    }

    fn attached(&self) -> Option<&Arc<Shared>> {
        match self {
            End::Attached(shared) => Some(shared),
            End::Lazy(_) => None,
        }
    }

    /// The channel, attached or not.
    fn channel(&self) -> &Arc<Shared> {
        match self {
            End::Attached(shared) | End::Lazy(shared) => shared,
        }
    }
}

/// The writing end of a channel.
///
/// Call [`close`](Writer::close) when done: dropping an attached writer without closing it
/// aborts the stream (see the [module docs](self)).
pub struct Writer {
    end: End,
    cause: FailureCause,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.end.attached().map(|s| s.id.to_string());
        f.debug_struct("Writer").field("attached_channel", &id).finish_non_exhaustive()
    }
}

impl Writer {
    pub(crate) fn lazy(shared: Arc<Shared>) -> Writer {
        Writer { end: End::Lazy(shared), cause: FailureCause::new() }
    }

    pub(crate) fn attached(shared: Arc<Shared>) -> Writer {
        Writer { end: End::Attached(shared), cause: FailureCause::new() }
    }

    /// Use `cause` as the abort reason if this writer is dropped without being closed.
    pub fn set_failure_cause(&mut self, cause: FailureCause) {
        self.cause = cause;
    }

    /// Append `data`, waiting while the buffer is full. Returns once all of it is buffered.
    ///
    /// If the returned future is dropped early, a prefix of `data` may have been buffered.
    ///
    /// # Errors
    ///
    /// - [`ChannelError::Closed`]: the reader is gone.
    /// - [`ChannelError::TimedOut`]: the reader never attached in time.
    /// - [`ChannelError::Finished`]: this writer was already closed or aborted.
    /// - [`ChannelError::NotFound`]/[`ChannelError::AlreadyAttached`]: a lazy end could not
    ///   attach.
    pub async fn write(&mut self, data: impl Into<Bytes>) -> Result<(), ChannelError> {
        let mut data = data.into();
        let shared = self.end.shared(Direction::Write)?;
        poll_fn(|cx| shared.poll_write_bytes(cx, &mut data)).await
    }

    /// Wait until a chunk fits in the buffer, and say how many bytes fit in one chunk
    /// now (at least 1, at most [`MAX_CHUNK_BYTES`]). Only this writer adds to the
    /// buffer, so a following [`Writer::write`] of at most that many bytes is buffered
    /// whole, at once. This lets a caller copy bytes from its own memory straight into
    /// chunks of the right size, with no intermediate buffer.
    ///
    /// # Errors
    ///
    /// As [`Writer::write`].
    pub async fn ready(&mut self) -> Result<usize, ChannelError> {
        let shared = self.end.shared(Direction::Write)?;
        poll_fn(|cx| shared.poll_room(cx)).await
    }

    /// A handle that buffers bytes without waiting, for a caller that cannot hold
    /// `&mut Writer` while it reads the bytes to write: a host copying straight out of a
    /// guest's linear memory can borrow that memory only while the `Writer` (kept in the
    /// same store) is not borrowed. Attaches a lazy end, like any first operation.
    ///
    /// The handle does not own the end: closing, aborting or dropping this `Writer` ends
    /// the stream as usual, and the handle's writes then fail with
    /// [`ChannelError::Finished`].
    ///
    /// # Errors
    ///
    /// [`ChannelError::NotFound`]/[`ChannelError::AlreadyAttached`]: a lazy end could not
    /// attach.
    pub fn try_writer(&mut self) -> Result<TryWriter, ChannelError> {
        Ok(TryWriter { shared: Arc::clone(self.end.shared(Direction::Write)?) })
    }

    /// Append a text message, delivered whole and in order with the bytes. Waits until it
    /// fits.
    ///
    /// # Errors
    ///
    /// As [`Writer::write`], plus [`ChannelError::LimitExceeded`] for a message longer
    /// than [`MAX_TEXT_BYTES`](crate::MAX_TEXT_BYTES).
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), ChannelError> {
        let mut text = Some(text.into());
        let shared = self.end.shared(Direction::Write)?;
        poll_fn(|cx| shared.poll_send_text(cx, &mut text)).await
    }

    /// Finish the stream cleanly: the reader drains what is buffered, then sees the end.
    /// Does not wait for the reader. A lazy end attaches in order to close.
    ///
    /// # Errors
    ///
    /// - [`ChannelError::Closed`]: the reader left before the end (the close is still
    ///   recorded, but not everything written was delivered).
    /// - [`ChannelError::Finished`]: already closed or aborted.
    /// - [`ChannelError::TimedOut`]: the channel expired.
    pub fn close(&mut self) -> Result<(), ChannelError> {
        self.end.shared(Direction::Write)?.close()
    }

    /// Finish the stream as failed: the reader drains what is buffered, then gets
    /// [`ChannelError::Aborted`] with `reason` (cut to
    /// [`MAX_REASON_BYTES`](crate::MAX_REASON_BYTES)). Like [`close`](Writer::close), a
    /// lazy end attaches in order to abort, so a stream that fails before its first
    /// write still tells its reader why. Does nothing on a finished end, or when the
    /// writer ref was opened elsewhere.
    pub fn abort(&mut self, reason: impl Into<String>) {
        if let Ok(shared) = self.end.shared(Direction::Write) {
            shared.abort(AbortReason::Given(bounded_reason(reason.into())));
        }
    }

    /// What the reader has done so far. A caller that handed the reader ref away learns
    /// from this whether anyone opened it and read the stream to its end, for example
    /// after the function it was handed to has returned.
    pub fn reader_status(&self) -> ReaderStatus {
        self.end.channel().reader_status()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(shared) = self.end.attached() {
            shared.abort(AbortReason::Dropped(self.cause.clone()));
        }
    }
}

impl AsyncWrite for Writer {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let shared = this.end.shared(Direction::Write)?;
        shared.poll_write_slice(cx, buf).map_err(Into::into)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // Buffered bytes are already visible to the reader; there is nothing to flush.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        match this.close() {
            // Shutting down twice is fine for AsyncWrite users (e.g. after `copy`).
            Ok(()) | Err(ChannelError::Finished) => Poll::Ready(Ok(())),
            Err(err) => Poll::Ready(Err(err.into())),
        }
    }
}

/// The reading end of a channel.
pub struct Reader {
    end: End,
    /// Text messages met by the `AsyncRead` impl, kept for [`Reader::take_texts`].
    set_aside: Vec<String>,
    set_aside_bytes: usize,
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.end.attached().map(|s| s.id.to_string());
        f.debug_struct("Reader").field("attached_channel", &id).finish_non_exhaustive()
    }
}

impl Reader {
    pub(crate) fn lazy(shared: Arc<Shared>) -> Reader {
        Reader { end: End::Lazy(shared), set_aside: Vec::new(), set_aside_bytes: 0 }
    }

    pub(crate) fn attached(shared: Arc<Shared>) -> Reader {
        Reader { end: End::Attached(shared), set_aside: Vec::new(), set_aside_bytes: 0 }
    }

    /// The next item, waiting until there is one. Byte chunks hold at most
    /// [`MAX_CHUNK_BYTES`] and do not keep write boundaries: small adjacent writes
    /// already buffered come joined (up to that size, never across a text message), and
    /// a large write may come in pieces. `Ok(None)` is the clean end of the stream, and stays so.
    ///
    /// # Errors
    ///
    /// - [`ChannelError::Aborted`]: the writer failed; everything it buffered before was
    ///   delivered first. Repeated reads repeat the error.
    /// - [`ChannelError::TimedOut`]: the writer never attached in time.
    /// - [`ChannelError::NotFound`]/[`ChannelError::AlreadyAttached`]: a lazy end could not
    ///   attach.
    pub async fn next(&mut self) -> Result<Option<Item>, ChannelError> {
        self.read(MAX_CHUNK_BYTES).await
    }

    /// Like [`Reader::next`], but a byte chunk holds at most `max_bytes` (and
    /// [`MAX_CHUNK_BYTES`]); the rest stays buffered for the next read. Small adjacent
    /// writes are joined up to that many bytes.
    ///
    /// # Errors
    ///
    /// As [`Reader::next`], plus [`ChannelError::InvalidArgument`] for `max_bytes == 0`.
    pub async fn read(&mut self, max_bytes: usize) -> Result<Option<Item>, ChannelError> {
        if max_bytes == 0 {
            return Err(ChannelError::InvalidArgument("a read must allow at least 1 byte".into()));
        }
        let shared = self.end.shared(Direction::Read)?;
        poll_fn(|cx| shared.poll_next(cx, max_bytes)).await
    }

    /// Poll for the next item (the building block of [`Reader::read`]).
    ///
    /// # Errors
    ///
    /// As [`Reader::read`].
    pub fn poll_next_item(
        &mut self,
        cx: &mut Context<'_>,
        max_bytes: usize,
    ) -> Poll<Result<Option<Item>, ChannelError>> {
        if max_bytes == 0 {
            return Poll::Ready(Err(ChannelError::InvalidArgument(
                "a read must allow at least 1 byte".into(),
            )));
        }
        let shared = self.end.shared(Direction::Read)?;
        shared.poll_next(cx, max_bytes)
    }

    /// What the writer has done so far. A caller that handed the writer ref away learns
    /// from this whether anyone opened it, and whether the stream has ended.
    pub fn writer_status(&self) -> WriterStatus {
        self.end.channel().writer_status()
    }

    /// Text messages the [`AsyncRead`] impl set aside, oldest first.
    pub fn take_texts(&mut self) -> Vec<String> {
        self.set_aside_bytes = 0;
        std::mem::take(&mut self.set_aside)
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let Some(shared) = self.end.attached() {
            shared.drop_reader();
        }
    }
}

impl AsyncRead for Reader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            let max = buf.remaining().min(MAX_CHUNK_BYTES);
            match this.poll_next_item(cx, max) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(None)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(Some(Item::Bytes(bytes)))) => {
                    buf.put_slice(&bytes);
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Ok(Some(Item::Text(text)))) => {
                    // Keep the message even when it overflows the allowance (by at most
                    // one message), so the error loses nothing.
                    this.set_aside_bytes += text.len();
                    this.set_aside.push(text);
                    if this.set_aside_bytes > MAX_SET_ASIDE_TEXT_BYTES {
                        return Poll::Ready(Err(std::io::Error::new(
                            std::io::ErrorKind::OutOfMemory,
                            format!(
                                "more than {MAX_SET_ASIDE_TEXT_BYTES} bytes of text messages are waiting; \
                                 call take_texts() while reading bytes, or read items with next()"
                            ),
                        )));
                    }
                }
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err.into())),
            }
        }
    }
}

/// Writes that never wait, into the channel of the [`Writer`] it came from (see
/// [`Writer::try_writer`]). Pair it with [`Writer::ready`] to wait for room.
pub struct TryWriter {
    shared: Arc<Shared>,
}

impl fmt::Debug for TryWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryWriter").field("channel", &self.shared.id.to_string()).finish()
    }
}

impl TryWriter {
    /// Buffer the longest prefix of `data` that fits right now (at most
    /// [`MAX_CHUNK_BYTES`]), copying it, and return its length. `Ok(0)` means nothing fit
    /// (or `data` is empty): wait with [`Writer::ready`], then try again. Small writes
    /// are joined into one chunk as they are buffered (see [`Item::Bytes`](crate::Item)).
    ///
    /// # Errors
    ///
    /// As [`Writer::write`]; [`ChannelError::Finished`] once the writer is closed,
    /// aborted or dropped.
    pub fn try_write(&self, data: &[u8]) -> Result<usize, ChannelError> {
        self.shared.try_write_slice(data)
    }
}
