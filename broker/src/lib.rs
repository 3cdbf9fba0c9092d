//! # rill-broker: channels between functions
//!
//! A channel is a one-way stream of bytes and text messages from one writer to one
//! reader, with a buffer between them that the broker owns and bounds in **bytes**. The
//! broker knows nothing of WebAssembly or of any transport: the wasm host, the embedding
//! API and network endpoints all drive the same [`Writer`] and [`Reader`].
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), rill_broker::ChannelError> {
//! use rill_broker::{Broker, BrokerConfig, ChannelOptions, Item};
//!
//! let broker = Broker::new(BrokerConfig::default());
//! let channel = broker.create(&ChannelOptions::default())?;
//!
//! // Hand `channel.reader_ref` to someone else (it serializes to iii's JSON shape)...
//! let mut reader = broker.open_reader(&channel.reader_ref)?;
//! drop(channel.reader); // ...and drop the unused local end: it never attached.
//!
//! let mut writer = channel.writer;
//! writer.write(&b"file contents"[..]).await?;
//! writer.send_text("done").await?;
//! writer.close()?;
//!
//! assert_eq!(reader.next().await?, Some(Item::Bytes("file contents".into())));
//! assert_eq!(reader.next().await?, Some(Item::Text("done".into())));
//! assert_eq!(reader.next().await?, None); // a clean end
//! assert_eq!(broker.stats().live_channels, 0); // both ends finished: freed at once
//! # Ok(()) }
//! ```
//!
//! ## Guarantees
//!
//! - **Refs are capabilities.** [`Broker::create`] returns two [`ChannelRef`]s with
//!   different 256-bit keys. A ref opens only the end its direction names; a wrong id, key
//!   or direction all give the same [`ChannelError::NotFound`].
//! - **Each end attaches once.** A second attach is [`ChannelError::AlreadyAttached`].
//! - **Order.** Bytes and text arrive in write order. Bytes are a stream: a read may
//!   return several small adjacent writes joined, up to what it asked for (see
//!   [`SMALL_CHUNK_BYTES`]), or part of one; no read crosses a text message.
//! - **Bounded memory.** A channel buffers at most its buffer size (see [`config`]); a full
//!   buffer makes the writer wait.
//! - **Honest ends.** Only [`Writer::close`] ends a stream cleanly. An abort, a dropped
//!   writer or a failed writing function reach the reader as [`ChannelError::Aborted`]
//!   after the buffered data. A dropped reader makes writes fail with
//!   [`ChannelError::Closed`].
//! - **Small abandoned channels.** A channel's buffer is reserved (against
//!   [`BrokerConfig::max_reserved_bytes`] and its [`Budget`]) when its writer attaches, so
//!   a channel created and never used costs its bookkeeping alone; a host whose function
//!   failed frees its unused channels at once with [`ChannelOwner::fail_unattached`].
//! - **No leaks.** A channel whose two ends finished is freed at once; an end not attached
//!   within [`BrokerConfig::attach_timeout`] expires the channel (the attached side gets
//!   [`ChannelError::TimedOut`], the refs become not-found). [`Broker::stats`] shows the
//!   live channels and buffered bytes.
//!
//! See [`ends`] for the writer/reader contract in detail.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod broker;
mod budget;
mod channel;
pub mod config;
pub mod ends;
mod error;
mod refs;

pub use broker::{Broker, BrokerStats, ChannelOwner, NewChannel};
pub use budget::Budget;
pub use channel::Item;
pub use config::{
    BrokerConfig, ChannelOptions, DEFAULT_ATTACH_TIMEOUT, DEFAULT_BUFFER_BYTES, DEFAULT_MAX_CHANNELS,
    DEFAULT_MAX_RESERVED_BYTES, ITEM_OVERHEAD_BYTES, MAX_BUFFER_BYTES, MAX_CHUNK_BYTES, MAX_REASON_BYTES,
    MAX_TEXT_BYTES, MIN_BUFFER_BYTES, SMALL_CHUNK_BYTES,
};
pub use ends::{FailureCause, Reader, ReaderStatus, TryWriter, Writer, WriterStatus};
pub use error::ChannelError;
pub use rill_protocol::{ChannelErrorKind, ChannelRef, Direction, RefParseError};
