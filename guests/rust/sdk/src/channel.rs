//! Channels: [`Channel`], [`ChannelWriter`], [`ChannelReader`] and the [`Item`]s that flow
//! through them.

use std::collections::VecDeque;
use std::fmt;
use std::io;

use crate::bindings::rill::host::channels as wit;
use crate::{ChannelError, ChannelRef};

/// Most bytes passed to the host in one `write` call (1 MiB): well below the host's
/// default per-call copy limit, and large enough that the call overhead does not show.
pub const MAX_WRITE_BYTES: usize = 1 << 20;

/// A new channel: both local ends and the two refs that name them.
///
/// Keep the end you use and hand the other end's ref to another function inside a call
/// payload. The local ends attach lazily, on their first operation, so you may simply drop
/// the end you do not use (dropping an end that was never used does not abort anything).
///
/// ```ignore
/// let channel = Channel::create()?;
/// drop(channel.reader); // the consumer opens the reader from `reader_ref` instead
/// let consumer = rill_guest::spawn(
///     "files::process",
///     &json!({ "filename": "report.csv", "reader": channel.reader_ref }),
/// )?;
/// let mut writer = channel.writer;
/// writer.write_all(b"file contents")?;
/// writer.close()?;
/// let result = consumer.wait()?;
/// ```
#[derive(Debug)]
pub struct Channel {
    /// The local writing end.
    pub writer: ChannelWriter,
    /// The local reading end.
    pub reader: ChannelReader,
    /// The serializable ref for the writing end (`"direction": "write"`).
    pub writer_ref: ChannelRef,
    /// The serializable ref for the reading end (`"direction": "read"`).
    pub reader_ref: ChannelRef,
}

impl Channel {
    /// Creates a channel with the host's default buffer size.
    pub fn create() -> Result<Channel, ChannelError> {
        Self::create_with(None)
    }

    /// Creates a channel whose buffer holds `buffer_bytes` bytes between writer and reader.
    /// A size outside the host's range fails with [`ChannelError::InvalidArgument`].
    pub fn with_buffer_bytes(buffer_bytes: u32) -> Result<Channel, ChannelError> {
        Self::create_with(Some(buffer_bytes))
    }

    fn create_with(buffer_bytes: Option<u32>) -> Result<Channel, ChannelError> {
        let channel = wit::create(wit::ChannelOptions { buffer_bytes })?;
        Ok(Channel {
            writer: ChannelWriter::from_wit(channel.writer),
            reader: ChannelReader::from_wit(channel.reader),
            writer_ref: channel.writer_ref.into(),
            reader_ref: channel.reader_ref.into(),
        })
    }
}

/// The writing end of a channel.
///
/// Write bytes with [`std::io::Write`] (`write_all`, `io::copy`, …) or
/// [`send_bytes`](Self::send_bytes), text messages with [`send_text`](Self::send_text), and
/// finish with [`close`](Self::close). A write waits while the channel's buffer is full, so
/// the writer never runs more than one buffer ahead of its reader.
///
/// # Always call `close`
///
/// **`close` is the only clean end of a stream.** Dropping a writer that was used without
/// calling `close` — including an early return through `?` or a panic — makes the reader
/// see [`ChannelError::Aborted`] after the data already buffered, never a clean end of
/// stream. The abort happens when the writer is dropped, not when the function returns:
/// a reader in this function or another learns at once. That is deliberate: a half-written stream must not look complete. Use
/// [`abort`](Self::abort) to fail a stream on purpose with a reason the reader can see.
#[derive(Debug)]
pub struct ChannelWriter {
    inner: wit::Writer,
}

impl ChannelWriter {
    /// Opens (attaches) the writing end named by `channel_ref`.
    ///
    /// Fails with [`ChannelError::NotFound`] for an unknown or expired channel, a wrong key
    /// or a ref whose direction is not `write`, and with [`ChannelError::AlreadyAttached`]
    /// if someone already opened this end.
    pub fn open(channel_ref: &ChannelRef) -> Result<ChannelWriter, ChannelError> {
        let inner = wit::open_writer(&channel_ref.into())?;
        Ok(Self::from_wit(inner))
    }

    fn from_wit(inner: wit::Writer) -> Self {
        ChannelWriter { inner }
    }

    /// Appends `data` as bytes, waiting while the buffer is full. Returns once every byte is
    /// buffered. The host may split the bytes into several chunks for the reader.
    pub fn send_bytes(&mut self, data: &[u8]) -> Result<(), ChannelError> {
        // The host caps the bytes one host call may carry (4 MiB by default); larger
        // buffers go over in pieces that always fit.
        for piece in data.chunks(MAX_WRITE_BYTES) {
            self.inner.write(piece)?;
        }
        Ok(())
    }

    /// Appends a text message, delivered whole and in order with the bytes.
    pub fn send_text(&mut self, text: &str) -> Result<(), ChannelError> {
        Ok(self.inner.send_text(text)?)
    }

    /// Finishes the stream cleanly: the reader drains what is buffered, then sees the end.
    pub fn close(self) -> Result<(), ChannelError> {
        Ok(self.inner.close()?)
    }

    /// Finishes the stream as failed: the reader drains what is buffered, then sees
    /// [`ChannelError::Aborted`] with `reason`.
    ///
    /// A writer from [`Channel::create`] that was never used claims its end first, like
    /// any first operation, so the reader still learns why and the writer ref can no
    /// longer be opened. If the writer ref was already opened elsewhere, this does
    /// nothing.
    pub fn abort(self, reason: &str) {
        self.inner.abort(reason);
    }
}

/// `write` hands the whole buffer to the host in one call (which waits while the channel's
/// buffer is full) and so always reports the full length written; `flush` does nothing,
/// because every byte is with the host once `write` returns. Errors carry the
/// [`ChannelError`] inside (see [`ChannelError::from_io_error`]).
impl io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.send_bytes(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write(buf).map(|_| ())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One item read from a channel: a chunk of bytes or a whole text message.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Item {
    /// A chunk of bytes. Chunk boundaries are not preserved between writer and reader.
    Bytes(Vec<u8>),
    /// A text message, delivered whole and in order with the bytes.
    Text(String),
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
            Self::Text(text) => f.debug_tuple("Text").field(text).finish(),
        }
    }
}

/// The reading end of a channel.
///
/// Read items one by one with [`next_item`](Self::next_item) or [`items`](Self::items), or
/// treat the channel as a byte stream with [`std::io::Read`] or
/// [`read_all`](Self::read_all). The byte-stream ways keep any text messages they meet, in
/// order, in a queue that [`take_messages`](Self::take_messages) drains.
///
/// The end of the stream is a clean close by the writer: `next_item` returns `Ok(None)`,
/// `Read::read` returns `Ok(0)`, and both keep doing so. A writer that aborted, was dropped
/// without closing, or whose function failed shows up as [`ChannelError::Aborted`] after the
/// data it had already written.
///
/// Dropping a reader before the end tells the writer that nobody is listening any more: its
/// next write fails with [`ChannelError::Closed`].
pub struct ChannelReader {
    inner: wit::Reader,
    messages: VecDeque<String>,
    /// Bytes the host returned beyond what a `Read::read` call could take (never expected,
    /// since reads are capped, but never dropped either).
    leftover: Vec<u8>,
    ended: bool,
}

impl fmt::Debug for ChannelReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelReader")
            .field("queued_messages", &self.messages.len())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl ChannelReader {
    /// Opens (attaches) the reading end named by `channel_ref`.
    ///
    /// Fails with [`ChannelError::NotFound`] for an unknown or expired channel, a wrong key
    /// or a ref whose direction is not `read`, and with [`ChannelError::AlreadyAttached`]
    /// if someone already opened this end.
    pub fn open(channel_ref: &ChannelRef) -> Result<ChannelReader, ChannelError> {
        let inner = wit::open_reader(&channel_ref.into())?;
        Ok(Self::from_wit(inner))
    }

    fn from_wit(inner: wit::Reader) -> Self {
        ChannelReader { inner, messages: VecDeque::new(), leftover: Vec::new(), ended: false }
    }

    /// The next item, waiting until one is available; `Ok(None)` once the writer closed and
    /// everything was read. A byte chunk holds up to the host's chunk size.
    ///
    /// This does not look at the message queue that the byte-stream methods fill.
    pub fn next_item(&mut self) -> Result<Option<Item>, ChannelError> {
        if !self.leftover.is_empty() {
            return Ok(Some(Item::Bytes(std::mem::take(&mut self.leftover))));
        }
        if self.ended {
            return Ok(None);
        }
        let item = self.inner.next()?;
        Ok(self.convert(item))
    }

    /// Like [`next_item`](Self::next_item), but a byte chunk holds at most `max_bytes`
    /// bytes; the rest stays buffered for the following read. `max_bytes` of 0 fails with
    /// [`ChannelError::InvalidArgument`].
    pub fn read_item(&mut self, max_bytes: u32) -> Result<Option<Item>, ChannelError> {
        if !self.leftover.is_empty() {
            if max_bytes == 0 {
                return Err(ChannelError::InvalidArgument("max-bytes must be at least 1".to_owned()));
            }
            let max = usize::try_from(max_bytes).unwrap_or(usize::MAX);
            let rest = self.leftover.split_off(max.min(self.leftover.len()));
            let chunk = std::mem::replace(&mut self.leftover, rest);
            return Ok(Some(Item::Bytes(chunk)));
        }
        if self.ended {
            return Ok(None);
        }
        let item = self.inner.read(max_bytes)?;
        Ok(self.convert(item))
    }

    fn convert(&mut self, item: wit::Item) -> Option<Item> {
        match item {
            wit::Item::Bytes(bytes) => Some(Item::Bytes(bytes)),
            wit::Item::Text(text) => Some(Item::Text(text)),
            wit::Item::End => {
                self.ended = true;
                None
            }
        }
    }

    /// An iterator over the remaining items. It ends after the end of the stream, or right
    /// after yielding the first error.
    ///
    /// ```ignore
    /// for item in reader.items() {
    ///     match item? {
    ///         Item::Bytes(chunk) => bytes += chunk.len(),
    ///         Item::Text(message) => messages.push(message),
    ///     }
    /// }
    /// ```
    pub fn items(&mut self) -> Items<'_> {
        Items { reader: self, done: false }
    }

    /// Reads every remaining byte until the end of the stream. Text messages met on the way
    /// go to the message queue ([`take_messages`](Self::take_messages)).
    ///
    /// This holds the whole stream in memory: prefer [`std::io::Read`] or
    /// [`items`](Self::items) for large streams.
    pub fn read_all(&mut self) -> Result<Vec<u8>, ChannelError> {
        let mut all = Vec::new();
        while let Some(item) = self.next_item()? {
            match item {
                Item::Bytes(bytes) if all.is_empty() => all = bytes,
                Item::Bytes(bytes) => all.extend_from_slice(&bytes),
                Item::Text(text) => self.messages.push_back(text),
            }
        }
        Ok(all)
    }

    /// Removes and returns the text messages that [`std::io::Read`] or
    /// [`read_all`](Self::read_all) met while reading bytes, oldest first.
    pub fn take_messages(&mut self) -> Vec<String> {
        self.messages.drain(..).collect()
    }

    /// Whether the end of the stream was reached (a clean close by the writer).
    pub fn is_ended(&self) -> bool {
        self.ended
    }
}

/// Reads bytes with the host's capped `read`, at most `buf.len()` bytes per call (at most
/// `u32::MAX`). Text messages met on the way are queued for
/// [`ChannelReader::take_messages`]. Returns `Ok(0)` at the end of the stream. Errors carry
/// the [`ChannelError`] inside (see [`ChannelError::from_io_error`]).
impl io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let max = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        loop {
            match self.read_item(max)? {
                None => return Ok(0),
                Some(Item::Text(text)) => self.messages.push_back(text),
                // A zero-length chunk must not look like the end of the stream.
                Some(Item::Bytes(bytes)) if bytes.is_empty() => {}
                Some(Item::Bytes(mut bytes)) => {
                    let n = bytes.len().min(buf.len());
                    buf[..n].copy_from_slice(&bytes[..n]);
                    if n < bytes.len() {
                        // The host returns at most `max`; keep any excess rather than lose it.
                        self.leftover = bytes.split_off(n);
                    }
                    return Ok(n);
                }
            }
        }
    }
}

/// Iterator over a reader's items, from [`ChannelReader::items`].
#[derive(Debug)]
pub struct Items<'a> {
    reader: &'a mut ChannelReader,
    done: bool,
}

impl Iterator for Items<'_> {
    type Item = Result<Item, ChannelError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.reader.next_item() {
            Ok(Some(item)) => Some(Ok(item)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

impl std::iter::FusedIterator for Items<'_> {}
