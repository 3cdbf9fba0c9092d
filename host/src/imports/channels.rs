//! `rill:host/channels`: guests' channel ends are broker [`Writer`]s and [`Reader`]s in
//! the store's resource table.

use rill_broker::{
    ChannelError, ChannelOptions, ChannelRef, Direction, Item, MAX_CHUNK_BYTES, Reader, Writer,
};
use wasmtime::component::Resource;

use crate::bindings::channels as wit;
use crate::call::Invocation;

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
        let writer = self.table.delete(writer)?;
        // An unclosed writer will abort its stream; keep it until the call ends so the
        // abort carries the call's failure, if it fails (see `Invocation::parked`).
        if writer.is_open() {
            self.parked.push(writer);
        }
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
        // The chunk handed to the guest is never larger than a stored chunk, whatever
        // the guest asks for.
        let max = (max_bytes as usize).min(MAX_CHUNK_BYTES);
        Ok(reader.read(max).await.map(to_wit_item).map_err(to_wit_error))
    }

    async fn drop(&mut self, reader: Resource<Reader>) -> wasmtime::Result<()> {
        self.table.delete(reader)?;
        Ok(())
    }
}
