//! `rill:host/channels`: guests' channel ends are broker [`Writer`]s and [`Reader`]s in
//! the store's resource table.
//!
//! # Why `writer.write` is defined by hand
//!
//! The generated binding would first lift the whole list into a host `Vec` (up to
//! `max_hostcall_bytes`, 4 MiB) and the broker would then copy it again into chunks of at
//! most 64 KiB; besides the extra copy, allocating and freeing a large buffer on every
//! write made glibc hand memory back to the kernel and fault it in again (measured: 1 MiB
//! guest writes between two threads ran at ~2 GB/s instead of ~9). [`add_direct_write`]
//! shadows it with a function that copies straight from the guest's linear memory into
//! the channel's buffer through a [`TryWriter`](rill_broker::TryWriter): a small write onto
//! the channel's tail, where small writes are joined for the reader, a larger one into
//! chunks of the size that fits the buffer right now, waiting with `ready` while nothing
//! fits. Copying small writes once instead of into a chunk each, then joining them for
//! the reader, made 4 KiB guest → guest writes about 1.2× faster on two cores and 1.4×
//! on one (see the README's benchmarks). The generated trait method stays (the trait
//! requires it) with the same meaning. A component-model `stream<u8>` would make the
//! shadow unnecessary.

use rill_broker::{
    ChannelError, ChannelOptions, ChannelRef, Direction, Item, MAX_CHUNK_BYTES, Reader, Writer,
};
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, WasmList};

use crate::bindings::ChannelFailure;
use crate::bindings::channels as wit;
use crate::state::{RillCtxView, RillView};

/// The WIT interface the channel imports live in.
const INTERFACE: &str = "rill:host/channels@0.1.0";

/// Define `writer.write` so that the guest's bytes are copied once, straight from its
/// linear memory into the channel's buffer (see the module docs). The guest is suspended
/// during the call, so its memory cannot change under the copy; the list's length is
/// charged against the call's hostcall budget when it is lifted, exactly as for the
/// generated binding.
pub(crate) fn add_direct_write<T: RillView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let defined = linker.instance(INTERFACE).and_then(|mut channels| {
        channels.func_wrap_async(
            "[method]writer.write",
            |mut store: StoreContextMut<'_, T>, (writer, data): (Resource<Writer>, WasmList<u8>)| {
                Box::new(async move {
                    let mut offset = 0;
                    loop {
                        // A handle, not the `Writer` itself, so that guest memory can be
                        // borrowed from the store for the copy.
                        let handle = match store.data_mut().rill().table.get_mut(&writer)?.try_writer() {
                            Ok(handle) => handle,
                            Err(err) => return Ok((Err(to_wit_error(err)),)),
                        };
                        let taken = match handle.try_write(&data.as_le_slice(&store)[offset..]) {
                            Ok(taken) => taken,
                            Err(err) => return Ok((Err(to_wit_error(err)),)),
                        };
                        offset += taken;
                        if offset == data.len() {
                            return Ok((Ok(()),));
                        }
                        // Nothing fit: wait for room (only this writer adds to the buffer).
                        if taken == 0
                            && let Err(err) = store.data_mut().rill().table.get_mut(&writer)?.ready().await
                        {
                            return Ok((Err(to_wit_error(err)),));
                        }
                    }
                })
            },
        )
    });
    linker.allow_shadowing(false);
    defined
}

type WitResult<T> = Result<T, ChannelFailure>;

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

/// A ref as the WIT record, for an application that passes refs to its own guests'
/// exports (see [`bindings`](crate::bindings)).
impl From<ChannelRef> for wit::ChannelRef {
    fn from(r: ChannelRef) -> Self {
        wit::ChannelRef {
            channel_id: r.channel_id,
            access_key: r.access_key,
            direction: match r.direction {
                Direction::Read => wit::Direction::Read,
                Direction::Write => wit::Direction::Write,
            },
        }
    }
}

/// A WIT ref record as the broker's [`ChannelRef`].
impl From<wit::ChannelRef> for ChannelRef {
    fn from(r: wit::ChannelRef) -> Self {
        ChannelRef {
            channel_id: r.channel_id,
            access_key: r.access_key,
            direction: match r.direction {
                wit::Direction::Read => Direction::Read,
                wit::Direction::Write => Direction::Write,
            },
        }
    }
}

fn to_wit_item(item: Option<Item>) -> wit::Item {
    match item {
        Some(Item::Bytes(bytes)) => wit::Item::Bytes(Vec::from(bytes)),
        Some(Item::Text(text)) => wit::Item::Text(text),
        None => wit::Item::End,
    }
}

impl wit::Host for RillCtxView<'_> {
    fn convert_channel_error(&mut self, err: ChannelFailure) -> wasmtime::Result<wit::ChannelError> {
        match err {
            ChannelFailure::Guest(err) => Ok(to_wit_error(err)),
            ChannelFailure::Trap(trap) => Err(trap),
        }
    }

    fn create(&mut self, options: wit::ChannelOptions) -> WitResult<wit::Channel> {
        let mut opts = ChannelOptions::default();
        opts.buffer_bytes = options.buffer_bytes.map(|b| b as usize);
        let channel = self.ctx.broker.create_within(&opts, Some(&self.ctx.scope.tree.budget))?;
        let mut writer = channel.writer;
        writer.set_failure_cause(self.ctx.scope.failure.clone());
        self.ctx.remember(channel.owner);
        Ok(wit::Channel {
            writer: self.table.push(writer)?,
            reader: self.table.push(channel.reader)?,
            writer_ref: channel.writer_ref.into(),
            reader_ref: channel.reader_ref.into(),
        })
    }

    fn open_reader(&mut self, r: wit::ChannelRef) -> WitResult<Resource<Reader>> {
        let reader = self.ctx.broker.open_reader(&r.into())?;
        Ok(self.table.push(reader)?)
    }

    fn open_writer(&mut self, r: wit::ChannelRef) -> WitResult<Resource<Writer>> {
        let mut writer = self.ctx.broker.open_writer(&r.into())?;
        writer.set_failure_cause(self.ctx.scope.failure.clone());
        Ok(self.table.push(writer)?)
    }
}

impl wit::HostWriter for RillCtxView<'_> {
    /// Shadowed in the linker by `add_direct_write`, which copies straight out of guest
    /// memory; this lifted-`Vec` form has the same meaning and is kept for the trait.
    async fn write(&mut self, writer: Resource<Writer>, data: Vec<u8>) -> WitResult<()> {
        Ok(self.table.get_mut(&writer)?.write(data).await?)
    }

    async fn send_text(&mut self, writer: Resource<Writer>, text: String) -> WitResult<()> {
        Ok(self.table.get_mut(&writer)?.send_text(text).await?)
    }

    fn close(&mut self, writer: Resource<Writer>) -> WitResult<()> {
        Ok(self.table.get_mut(&writer)?.close()?)
    }

    fn abort(&mut self, writer: Resource<Writer>, reason: String) -> wasmtime::Result<()> {
        self.table.get_mut(&writer)?.abort(reason);
        Ok(())
    }

    fn drop(&mut self, writer: Resource<Writer>) -> wasmtime::Result<()> {
        // An unclosed writer aborts its stream now, so its reader (in this call or any
        // other) learns at once. The reason is the call's failure if it is known by the
        // time the reader gets there (a guest returning an error drops its writers on the
        // way out), else "writer dropped without close". An unused local end claims
        // nothing.
        self.table.delete(writer)?;
        Ok(())
    }
}

impl wit::HostReader for RillCtxView<'_> {
    async fn next(&mut self, reader: Resource<Reader>) -> WitResult<wit::Item> {
        Ok(to_wit_item(self.table.get_mut(&reader)?.next().await?))
    }

    async fn read(&mut self, reader: Resource<Reader>, max_bytes: u32) -> WitResult<wit::Item> {
        // The chunk handed to the guest is never larger than the chunk size, whatever
        // the guest asks for; up to that, the broker joins adjacent small writes.
        let max = (max_bytes as usize).min(MAX_CHUNK_BYTES);
        Ok(to_wit_item(self.table.get_mut(&reader)?.read(max).await?))
    }

    fn drop(&mut self, reader: Resource<Reader>) -> wasmtime::Result<()> {
        self.table.delete(reader)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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
