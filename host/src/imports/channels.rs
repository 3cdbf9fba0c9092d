//! `rill:host/channels`: guests' channel ends are broker [`Writer`]s and [`Reader`]s in
//! the store's resource table.

use bytes::Bytes;
use rill_broker::{
    ChannelError, ChannelOptions, ChannelOwner, ChannelRef, Direction, Item, MAX_CHUNK_BYTES, Reader, Writer,
};
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, WasmList};

use crate::bindings::channels as wit;
use crate::call::Invocation;

/// The WIT interface the channel imports live in.
const INTERFACE: &str = "rill:host/channels@0.1.0";

/// Define `writer.write` so that the guest's bytes are copied once, straight from its
/// linear memory into broker chunks of the size that fits the buffer right now.
///
/// The generated binding would first lift the whole list into a host `Vec` (up to
/// `max_hostcall_bytes`, 4 MiB) and the broker would then copy it again into chunks of at
/// most 64 KiB; besides the extra copy, allocating and freeing a large buffer on every
/// write made glibc hand memory back to the kernel and fault it in again (measured: 1 MiB
/// guest writes between two threads ran at ~2 GB/s instead of ~9). The guest is suspended
/// during the call, so its memory cannot change under the copy; the list's length is
/// charged against the call's hostcall budget when it is lifted, exactly as before.
pub(crate) fn add_direct_write(linker: &mut Linker<Invocation>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let defined = linker.instance(INTERFACE).and_then(|mut channels| {
        channels.func_wrap_async(
            "[method]writer.write",
            |mut store: StoreContextMut<'_, Invocation>, (writer, data): (Resource<Writer>, WasmList<u8>)| {
                Box::new(async move {
                    let mut offset = 0;
                    loop {
                        let end = if offset < data.len() {
                            match store.data_mut().table.get_mut(&writer)?.ready().await {
                                Ok(room) => offset + room.min(data.len() - offset),
                                Err(err) => return Ok((Err(to_wit_error(err)),)),
                            }
                        } else {
                            offset
                        };
                        let piece = Bytes::copy_from_slice(&data.as_le_slice(&store)[offset..end]);
                        // Buffered whole at once: `ready` said it fits. An empty write
                        // still reports whether the writer can write.
                        if let Err(err) = store.data_mut().table.get_mut(&writer)?.write(piece).await {
                            return Ok((Err(to_wit_error(err)),));
                        }
                        offset = end;
                        if offset == data.len() {
                            return Ok((Ok(()),));
                        }
                    }
                })
            },
        )
    });
    linker.allow_shadowing(false);
    defined
}

/// Keep `owner` among the channels a call created. Holds on channels that are gone are
/// dropped whenever the list would grow, so a guest that creates and finishes channels
/// in a loop keeps a list as long as its live channels, not as long as its history.
fn remember(created: &mut Vec<ChannelOwner>, owner: ChannelOwner) {
    if created.len() == created.capacity() {
        created.retain(ChannelOwner::is_live);
    }
    created.push(owner);
}

/// The resource behind a guest's `writer`.
pub type WriterResource = Writer;
/// The resource behind a guest's `reader`.
pub type ReaderResource = Reader;

type WitResult<T> = wasmtime::Result<Result<T, wit::ChannelError>>;

fn to_wit_error(err: ChannelError) -> wit::ChannelError {
    match err {
        ChannelError::NotFound => wit::ChannelError::NotFound,
        ChannelError::AlreadyAttached => wit::ChannelError::AlreadyAttached,
        ChannelError::Closed => wit::ChannelError::Closed,
        ChannelError::Aborted(reason) => wit::ChannelError::Aborted(reason),
        ChannelError::TimedOut => wit::ChannelError::TimedOut,
        ChannelError::Finished => wit::ChannelError::Finished,
        ChannelError::InvalidArgument(why) => wit::ChannelError::InvalidArgument(why),
        other @ ChannelError::LimitExceeded { .. } => wit::ChannelError::LimitExceeded(other.to_string()),
        // The broker's error is non-exhaustive; a future variant still reaches the guest
        // as an error, never as a trap.
        other => wit::ChannelError::InvalidArgument(other.to_string()),
    }
}

fn to_wit_ref(r: ChannelRef) -> wit::ChannelRef {
    wit::ChannelRef {
        channel_id: r.channel_id,
        access_key: r.access_key,
        direction: match r.direction {
            Direction::Read => wit::Direction::Read,
            Direction::Write => wit::Direction::Write,
        },
    }
}

fn from_wit_ref(r: wit::ChannelRef) -> ChannelRef {
    ChannelRef {
        channel_id: r.channel_id,
        access_key: r.access_key,
        direction: match r.direction {
            wit::Direction::Read => Direction::Read,
            wit::Direction::Write => Direction::Write,
        },
    }
}

fn to_wit_item(item: Option<Item>) -> wit::Item {
    match item {
        Some(Item::Bytes(bytes)) => wit::Item::Bytes(Vec::from(bytes)),
        Some(Item::Text(text)) => wit::Item::Text(text),
        None => wit::Item::End,
    }
}

impl wit::Host for Invocation {
    async fn create(&mut self, options: wit::ChannelOptions) -> WitResult<wit::Channel> {
        let mut opts = ChannelOptions::default();
        opts.buffer_bytes = options.buffer_bytes.map(|b| b as usize);
        let channel = match self.host.broker.create_within(&opts, Some(&self.scope.tree.budget)) {
            Ok(channel) => channel,
            Err(err) => return Ok(Err(to_wit_error(err))),
        };
        let mut writer = channel.writer;
        writer.set_failure_cause(self.scope.failure.clone());
        remember(&mut self.created, channel.owner);
        Ok(Ok(wit::Channel {
            writer: self.table.push(writer)?,
            reader: self.table.push(channel.reader)?,
            writer_ref: to_wit_ref(channel.writer_ref),
            reader_ref: to_wit_ref(channel.reader_ref),
        }))
    }

    async fn open_reader(&mut self, r: wit::ChannelRef) -> WitResult<Resource<Reader>> {
        match self.host.broker.open_reader(&from_wit_ref(r)) {
            Ok(reader) => Ok(Ok(self.table.push(reader)?)),
            Err(err) => Ok(Err(to_wit_error(err))),
        }
    }

    async fn open_writer(&mut self, r: wit::ChannelRef) -> WitResult<Resource<Writer>> {
        match self.host.broker.open_writer(&from_wit_ref(r)) {
            Ok(mut writer) => {
                writer.set_failure_cause(self.scope.failure.clone());
                Ok(Ok(self.table.push(writer)?))
            }
            Err(err) => Ok(Err(to_wit_error(err))),
        }
    }
}

impl wit::HostWriter for Invocation {
    /// Shadowed in the linker by [`add_direct_write`], which copies straight out of guest
    /// memory; this lifted-`Vec` form has the same meaning and is kept for the trait.
    async fn write(&mut self, writer: Resource<Writer>, data: Vec<u8>) -> WitResult<()> {
        let writer = self.table.get_mut(&writer)?;
        Ok(writer.write(data).await.map_err(to_wit_error))
    }

    async fn send_text(&mut self, writer: Resource<Writer>, text: String) -> WitResult<()> {
        let writer = self.table.get_mut(&writer)?;
        Ok(writer.send_text(text).await.map_err(to_wit_error))
    }

    async fn close(&mut self, writer: Resource<Writer>) -> WitResult<()> {
        let writer = self.table.get_mut(&writer)?;
        Ok(writer.close().map_err(to_wit_error))
    }

    async fn abort(&mut self, writer: Resource<Writer>, reason: String) -> wasmtime::Result<()> {
        self.table.get_mut(&writer)?.abort(reason);
        Ok(())
    }

    async fn drop(&mut self, writer: Resource<Writer>) -> wasmtime::Result<()> {
        // An unclosed writer aborts its stream now, so its reader (in this call or any
        // other) learns at once. The reason is the call's failure if it is known by the
        // time the reader gets there (a guest returning an error drops its writers on the
        // way out), else "writer dropped without close". An unused local end claims
        // nothing.
        self.table.delete(writer)?;
        Ok(())
    }
}

impl wit::HostReader for Invocation {
    async fn next(&mut self, reader: Resource<Reader>) -> WitResult<wit::Item> {
        let reader = self.table.get_mut(&reader)?;
        Ok(reader.next().await.map(to_wit_item).map_err(to_wit_error))
    }

    async fn read(&mut self, reader: Resource<Reader>, max_bytes: u32) -> WitResult<wit::Item> {
        let reader = self.table.get_mut(&reader)?;
        // The chunk handed to the guest is never larger than the chunk size, whatever
        // the guest asks for; up to that, the broker joins adjacent writes.
        let max = (max_bytes as usize).min(MAX_CHUNK_BYTES);
        Ok(reader.read(max).await.map(to_wit_item).map_err(to_wit_error))
    }

    async fn drop(&mut self, reader: Resource<Reader>) -> wasmtime::Result<()> {
        self.table.delete(reader)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rill_broker::{Broker, ChannelOptions};

    /// A guest that creates and finishes channels in a loop must not grow the call's
    /// list of created channels with its history.
    #[tokio::test]
    async fn the_list_of_created_channels_stays_as_long_as_the_live_ones() {
        let broker = Broker::default();
        let mut created = Vec::new();
        let kept = broker.create(&ChannelOptions::default()).unwrap();
        super::remember(&mut created, kept.owner.clone());
        for _ in 0..10_000 {
            let channel = broker.create(&ChannelOptions::default()).unwrap();
            super::remember(&mut created, channel.owner);
            let mut writer = channel.writer;
            let mut reader = channel.reader;
            writer.close().unwrap();
            assert_eq!(reader.next().await, Ok(None));
        }
        assert!(created.capacity() <= 8, "{} holds kept for 2 live channels", created.capacity());
        assert!(created.iter().filter(|c| c.is_live()).count() == 1, "the live channel is still held");
    }

    /// The direct `write` must shadow the generated import; under another name it would
    /// be defined beside it, unused, and nothing would fail. So check the name against
    /// the WIT package it lives in.
    #[test]
    fn the_shadowed_interface_is_the_wit_one() {
        let wit = include_str!("../../../wit/channels.wit");
        let package = wit
            .lines()
            .find_map(|line| line.trim().strip_prefix("package ")?.strip_suffix(';'))
            .unwrap_or_else(|| panic!("no package line in wit/channels.wit"));
        let (name, version) = package.split_once('@').unwrap_or((package, ""));
        let interface = wit
            .lines()
            .find_map(|line| line.trim().strip_prefix("interface ")?.strip_suffix(" {"))
            .unwrap_or_else(|| panic!("no interface in wit/channels.wit"));
        assert_eq!(super::INTERFACE, format!("{name}/{interface}@{version}"));
    }
}
