//! One channel's shared state and the operations both ends perform on it.
//!
//! A channel is a byte-bounded queue of [`Item`]s behind a mutex, plus the lifecycle of
//! each end. The writer and reader handles ([`Writer`](crate::Writer),
//! [`Reader`](crate::Reader)) hold an `Arc<Shared>` and call the `poll_*` functions here.
//! Waiting uses one stored [`Waker`] per side: there is exactly one writer and one reader,
//! so a single slot each is enough and no wakeup can be lost (the slot is written under
//! the same lock that the other side checks before waking).
//!
//! Bytes are a stream, not a sequence of messages, so small writes are joined as they
//! are buffered. A small piece (shorter than [`SMALL_CHUNK_BYTES`]) is copied onto the end
//! of the channel's *tail*, one allocation of up to [`MAX_CHUNK_BYTES`] that is queued
//! (sealed) as a single chunk when it is full or when anything else is written. A guest's
//! small write is copied once, straight from its memory into the tail (see
//! [`TryWriter`](crate::TryWriter)), and a reader gets a full tail as it is, with no
//! further copy: one allocation per tail rather than one per piece, and no join when it
//! is read. A read that finds nothing queued but a tail still filling copies the tail's
//! bytes out and leaves the allocation to the writer (a reader keeping pace with a writer
//! on another thread does this on most reads; handing the tail over instead would cost a
//! new allocation each time). The tail is allocated within the buffer's room, so what is
//! charged plus its spare capacity never exceeds the buffer size; it is charged one
//! item's overhead in all. A read that still finds several small chunks at the front of
//! the queue (a tail sealed early, the rest of a chunk a read took part of) takes them
//! joined, up to what its caller asked for. Larger chunks are handed out as they were
//! queued, without a copy. A text message is a boundary no read crosses.
//!
//! Lock order: a channel's `state` lock is never held while taking the broker's map
//! lock. Operations that finish a channel mark it `removed` under the state lock and the
//! caller unregisters it from the broker after the lock is released.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use tokio::time::Instant;
use uuid::Uuid;

use crate::broker::BrokerInner;
use crate::budget::{Budget, try_add};
use crate::config::{ITEM_OVERHEAD_BYTES, MAX_CHUNK_BYTES, MAX_TEXT_BYTES, SMALL_CHUNK_BYTES};
use crate::ends::FailureCause;
use crate::refs::AccessKey;
use crate::{ChannelError, Direction};

/// One item of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A chunk of bytes. Chunk boundaries carry no meaning: writes may be split, reads
    /// may be capped, and a read may join small adjacent writes (never across a text
    /// message).
    Bytes(Bytes),
    /// A text message, delivered whole and in order with the bytes.
    Text(String),
}

impl Item {
    /// Bytes this item is charged against the buffer.
    fn cost(&self) -> usize {
        ITEM_OVERHEAD_BYTES
            + match self {
                Item::Bytes(b) => b.len(),
                Item::Text(t) => t.len(),
            }
    }
}

/// The writer end's lifecycle.
#[derive(Debug, Clone)]
pub(crate) enum WriterState {
    Unattached,
    Attached,
    Closed,
    Aborted(AbortReason),
}

/// Why a writer aborted.
#[derive(Debug, Clone)]
pub(crate) enum AbortReason {
    /// The reason the writer gave.
    Given(String),
    /// The writer was dropped without closing. The stream is aborted at once, but the
    /// reason is read from the writer's [`FailureCause`] only when the reader reaches the
    /// abort: a function that drops its writers on the way to returning an error has
    /// usually recorded that error by the time its reader gets there.
    Dropped(FailureCause),
}

/// What a dropped, unclosed writer reports when nobody said why.
pub(crate) const DROPPED_WITHOUT_CLOSE: &str = "writer dropped without close";

impl AbortReason {
    fn resolve(&self) -> String {
        match self {
            AbortReason::Given(reason) => reason.clone(),
            AbortReason::Dropped(cause) => cause.get().unwrap_or(DROPPED_WITHOUT_CLOSE).to_owned(),
        }
    }
}

/// The reader end's lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReaderState {
    Unattached,
    Attached,
    /// The reader consumed the stream's end; repeated reads repeat this outcome.
    Done(Result<(), String>),
    /// The reader was dropped before the end.
    Dropped,
}

pub(crate) struct State {
    queue: VecDeque<Item>,
    /// Small byte writes joined as they arrive, logically after everything in `queue`
    /// (see [`Shared::append_to_tail`]); charged as one item while it is not empty.
    tail: Vec<u8>,
    /// Sum of [`Item::cost`] over `queue`, plus the tail's charge.
    buffered: usize,
    pub(crate) writer: WriterState,
    pub(crate) reader: ReaderState,
    /// An end was never attached in time; both ends see [`ChannelError::TimedOut`].
    expired: bool,
    /// Unregistered (or about to be) from the broker: the refs no longer resolve.
    pub(crate) removed: bool,
    /// The buffer is reserved (against the broker and the budget): done when the writer
    /// attaches, since only a writer can fill it.
    pub(crate) reserved: bool,
    writer_waker: Option<Waker>,
    reader_waker: Option<Waker>,
}

/// Counters shared by every channel of a broker.
///
/// Only what changes when a channel attaches or finishes lives here. What a channel has
/// buffered changes on every write and read, so it is kept per channel (in its state,
/// under the lock both ends take anyway) and summed when [`Broker::stats`] asks. A
/// broker-wide counter updated on each write and read is one more cache line that every
/// writer and reader, of every channel, on every core, passes back and forth: in a
/// profile of 4 KiB writes on two cores, its update was the most sampled instruction of
/// appending a small write.
///
/// [`Broker::stats`]: crate::Broker::stats
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Sum of the buffer sizes of registered channels.
    pub(crate) reserved_bytes: AtomicUsize,
}

/// A channel, shared by its two ends and the broker's map.
pub(crate) struct Shared {
    pub(crate) id: Uuid,
    pub(crate) writer_key: AccessKey,
    pub(crate) reader_key: AccessKey,
    pub(crate) capacity: usize,
    pub(crate) attach_deadline: Instant,
    pub(crate) state: Mutex<State>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) broker: Weak<BrokerInner>,
    /// The group this channel's buffer is reserved against, if any.
    pub(crate) budget: Option<Budget>,
}

/// What a state transition asks the caller to do once the state lock is released.
#[must_use]
pub(crate) struct Release(bool);

impl Release {
    const KEEP: Release = Release(false);

    /// Unregister the channel from its broker if the transition finished it.
    pub(crate) fn apply(self, shared: &Shared) {
        if self.0
            && let Some(broker) = shared.broker.upgrade()
        {
            broker.unregister(shared.id);
        }
    }
}

impl Shared {
    pub(crate) fn new(
        capacity: usize,
        attach_deadline: Instant,
        counters: Arc<Counters>,
        broker: Weak<BrokerInner>,
        budget: Option<Budget>,
    ) -> Shared {
        Shared {
            id: Uuid::new_v4(),
            writer_key: AccessKey::generate(),
            reader_key: AccessKey::generate(),
            capacity,
            attach_deadline,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                tail: Vec::new(),
                buffered: 0,
                writer: WriterState::Unattached,
                reader: ReaderState::Unattached,
                expired: false,
                removed: false,
                reserved: false,
                writer_waker: None,
                reader_waker: None,
            }),
            counters,
            broker,
            budget,
        }
    }

    /// Lock the state. A poisoned lock means a panic happened while it was held; the
    /// state itself is only ever mutated by small, panic-free transitions, so it is still
    /// consistent and we keep using it rather than spreading the panic.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn key(&self, direction: Direction) -> &AccessKey {
        match direction {
            Direction::Read => &self.reader_key,
            Direction::Write => &self.writer_key,
        }
    }

    /// Attach one end. `presented_key` must be that end's key.
    pub(crate) fn attach(&self, direction: Direction, presented_key: &str) -> Result<(), ChannelError> {
        if !self.key(direction).matches(presented_key) {
            return Err(ChannelError::NotFound);
        }
        self.attach_owned(direction)
    }

    /// Attach one end on behalf of whoever created the channel (a lazy local end), which
    /// holds the channel itself rather than a ref.
    pub(crate) fn attach_owned(&self, direction: Direction) -> Result<(), ChannelError> {
        let mut state = self.lock();
        if state.removed || state.expired {
            return Err(ChannelError::NotFound);
        }
        if Instant::now() >= self.attach_deadline && state.has_unattached_end() {
            // This attach comes too late: the channel expired a moment ago and the sweeper
            // has not got to it yet.
            let release = self.expire_locked(&mut state);
            drop(state);
            release.apply(self);
            return Err(ChannelError::NotFound);
        }
        match direction {
            Direction::Write => match state.writer {
                WriterState::Unattached => {
                    self.reserve(&mut state)?;
                    state.writer = WriterState::Attached;
                }
                _ => return Err(ChannelError::AlreadyAttached),
            },
            Direction::Read => match state.reader {
                ReaderState::Unattached => state.reader = ReaderState::Attached,
                _ => return Err(ChannelError::AlreadyAttached),
            },
        }
        Ok(())
    }

    /// Reserve the buffer against the broker's total and the budget, or fail reserving
    /// nothing.
    fn reserve(&self, state: &mut State) -> Result<(), ChannelError> {
        if state.reserved {
            return Ok(());
        }
        let Some(broker) = self.broker.upgrade() else {
            // The broker is gone; nothing can be reserved against it, nor leaked.
            return Err(ChannelError::NotFound);
        };
        let config = broker.config();
        if !try_add(&self.counters.reserved_bytes, self.capacity, config.max_reserved_bytes) {
            return Err(ChannelError::LimitExceeded {
                limit: "channel buffer bytes in this host",
                max: config.max_reserved_bytes as u64,
            });
        }
        if let Some(budget) = &self.budget
            && let Err(err) = budget.reserve_bytes(self.capacity)
        {
            self.counters.reserved_bytes.fetch_sub(self.capacity, Ordering::Relaxed);
            return Err(err);
        }
        state.reserved = true;
        Ok(())
    }

    /// Give back what the channel holds against the broker and its budget. Called once,
    /// when the channel is unregistered.
    pub(crate) fn release_reservation(&self) {
        let reserved = std::mem::take(&mut self.lock().reserved);
        if reserved {
            self.counters.reserved_bytes.fetch_sub(self.capacity, Ordering::Relaxed);
        }
        if let Some(budget) = &self.budget {
            budget.release(if reserved { self.capacity } else { 0 });
        }
    }

    /// The creator of the channel failed: finish every end nobody attached, so whoever
    /// holds the other end learns at once. An unattached writer end aborts with `reason`;
    /// an unattached reader end counts as dropped (a writer's next operation fails with
    /// `closed`). A channel neither of whose ends was attached is freed, and its refs
    /// stop resolving.
    pub(crate) fn fail_unattached(&self, reason: &str) {
        let mut state = self.lock();
        if state.removed {
            return;
        }
        if matches!(state.writer, WriterState::Unattached) {
            state.writer = WriterState::Aborted(AbortReason::Given(reason.to_owned()));
        }
        if state.reader == ReaderState::Unattached {
            state.reader = ReaderState::Dropped;
            self.clear_queue(&mut state);
        }
        state.wake_both();
        let release = self.release_if_finished(&mut state);
        drop(state);
        release.apply(self);
    }

    /// Expire the channel if an end is still unattached past the deadline. Returns whether
    /// it expired.
    pub(crate) fn expire_if_due(&self, now: Instant) -> bool {
        let mut state = self.lock();
        if state.removed || now < self.attach_deadline || !state.has_unattached_end() {
            return false;
        }
        let release = self.expire_locked(&mut state);
        drop(state);
        release.apply(self);
        true
    }

    fn expire_locked(&self, state: &mut State) -> Release {
        state.expired = true;
        self.clear_queue(state);
        state.wake_both();
        state.removed = true;
        Release(true)
    }

    fn clear_queue(&self, state: &mut State) {
        state.queue.clear();
        state.tail = Vec::new();
        state.buffered = 0;
    }

    /// Errors that stop the writer from doing anything more (write or close).
    fn writer_live(state: &State) -> Result<(), ChannelError> {
        if state.expired {
            return Err(ChannelError::TimedOut);
        }
        match state.writer {
            WriterState::Attached => Ok(()),
            WriterState::Closed | WriterState::Aborted(_) => Err(ChannelError::Finished),
            // Handles attach before they act; an unattached writer here is a bug in this
            // crate, reported as the closest honest error rather than a panic.
            WriterState::Unattached => Err(ChannelError::NotFound),
        }
    }

    /// Errors that stop any write, checked before each write step.
    fn writable(&self, state: &mut State) -> Result<(), ChannelError> {
        Self::writer_live(state)?;
        match state.reader {
            ReaderState::Dropped | ReaderState::Done(_) => Err(ChannelError::Closed),
            ReaderState::Unattached | ReaderState::Attached => Ok(()),
        }
    }

    /// Buffer as much of `data` as fits, splitting it into chunks; `Ready` once all of it
    /// is buffered. On `Pending`, `data` holds what is left.
    pub(crate) fn poll_write_bytes(
        &self,
        cx: &mut Context<'_>,
        data: &mut Bytes,
    ) -> Poll<Result<(), ChannelError>> {
        let mut state = self.lock();
        loop {
            self.writable(&mut state)?;
            if data.is_empty() {
                return Poll::Ready(Ok(()));
            }
            let room = self.room(&state);
            if room == 0 {
                state.writer_waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let piece = if data.len() <= room {
                // The whole rest fits in one chunk: queue it as it is.
                std::mem::take(data)
            } else {
                // Copy a chunk out instead of slicing: a slice would keep the whole
                // written buffer alive while being charged for only its own length.
                let piece = Bytes::copy_from_slice(&data[..room]);
                data.advance(room);
                piece
            };
            self.push(&mut state, Item::Bytes(piece));
        }
    }

    /// `Ready(n)` once a chunk of `n` > 0 bytes fits; see [`Writer::ready`](crate::Writer::ready).
    pub(crate) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<Result<usize, ChannelError>> {
        let mut state = self.lock();
        self.writable(&mut state)?;
        match self.room(&state) {
            0 => {
                state.writer_waker = Some(cx.waker().clone());
                Poll::Pending
            }
            room => Poll::Ready(Ok(room)),
        }
    }

    /// Buffer a prefix of `data` (copying it); `Ready(n)` with the bytes taken, waiting
    /// only while nothing fits. This is the `AsyncWrite` shape.
    pub(crate) fn poll_write_slice(
        &self,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<Result<usize, ChannelError>> {
        let mut state = self.lock();
        self.writable(&mut state)?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = self.room(&state).min(data.len());
        if n == 0 {
            state.writer_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(self.buffer_piece(state, &data[..n]))
    }

    /// Buffer the prefix of `data` that fits now, copying it, without waiting; `Ok(0)`
    /// when nothing fits or `data` is empty. See [`TryWriter`](crate::TryWriter).
    pub(crate) fn try_write_slice(&self, data: &[u8]) -> Result<usize, ChannelError> {
        let mut state = self.lock();
        self.writable(&mut state)?;
        let n = self.room(&state).min(data.len());
        if n == 0 {
            return Ok(0);
        }
        self.buffer_piece(state, &data[..n])
    }

    /// Copy `piece` (at least one byte, and at most the room: the caller checked that
    /// the writer is live) into the buffer. A small piece goes onto the tail under the
    /// lock; a larger one is copied into a chunk of its own with the lock released, so a
    /// reader is not held up by the copy.
    fn buffer_piece(&self, mut state: MutexGuard<'_, State>, piece: &[u8]) -> Result<usize, ChannelError> {
        let n = piece.len();
        if n < SMALL_CHUNK_BYTES {
            self.append_to_tail(&mut state, piece);
            return Ok(n);
        }
        drop(state);
        let piece = Bytes::copy_from_slice(piece);
        let mut state = self.lock();
        self.writable(&mut state)?;
        // The room can only have grown unless another handle of this same writer wrote
        // meanwhile; then nothing is taken and the caller waits for room as usual.
        if self.room(&state) < n {
            return Ok(0);
        }
        self.push(&mut state, Item::Bytes(piece));
        Ok(n)
    }

    /// Buffer one text message whole, waiting until it fits.
    pub(crate) fn poll_send_text(
        &self,
        cx: &mut Context<'_>,
        text: &mut Option<String>,
    ) -> Poll<Result<(), ChannelError>> {
        let mut state = self.lock();
        self.writable(&mut state)?;
        let Some(message) = text.take() else {
            return Poll::Ready(Ok(()));
        };
        if message.len() > MAX_TEXT_BYTES {
            return Poll::Ready(Err(ChannelError::LimitExceeded {
                limit: "text message bytes",
                max: MAX_TEXT_BYTES as u64,
            }));
        }
        if state.buffered + ITEM_OVERHEAD_BYTES + message.len() > self.capacity {
            *text = Some(message);
            state.writer_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        self.push(&mut state, Item::Text(message));
        Poll::Ready(Ok(()))
    }

    /// Payload bytes that fit in one new chunk right now.
    fn room(&self, state: &State) -> usize {
        self.capacity.saturating_sub(state.buffered).saturating_sub(ITEM_OVERHEAD_BYTES).min(MAX_CHUNK_BYTES)
    }

    /// Queue `item`, which fits: its cost is at most [`Shared::room`] plus the overhead.
    ///
    /// A small byte chunk is copied onto the end of the tail rather than queued as an item
    /// of its own (see the module docs). The tail is queued (sealed) when it is full,
    /// before any other item, and when a read finds nothing else queued.
    fn push(&self, state: &mut State, item: Item) {
        match item {
            Item::Bytes(piece) if piece.len() < SMALL_CHUNK_BYTES => self.append_to_tail(state, &piece),
            item => {
                state.seal_tail();
                let cost = item.cost();
                state.queue.push_back(item);
                state.buffered += cost;
                state.wake_reader();
            }
        }
    }

    /// Copy a small piece, which fits in the buffer (at most [`Shared::room`]), onto the
    /// end of the tail. A full tail is sealed and the rest of the piece starts the next
    /// one, whose capacity is the room the buffer has at that moment (at most
    /// [`MAX_CHUNK_BYTES`]): everything charged plus the tail's spare capacity never
    /// exceeds the buffer, so the memory a channel holds stays within its size.
    fn append_to_tail(&self, state: &mut State, mut piece: &[u8]) {
        while !piece.is_empty() {
            if state.tail.len() == state.tail.capacity() {
                state.seal_tail();
                // At least the piece, so a caller that broke the precondition overfills
                // the buffer by one piece rather than looping here forever.
                state.tail = Vec::with_capacity(self.room(state).max(piece.len()));
            }
            let n = piece.len().min(state.tail.capacity() - state.tail.len());
            let overhead = if state.tail.is_empty() { ITEM_OVERHEAD_BYTES } else { 0 };
            state.tail.extend_from_slice(&piece[..n]);
            state.buffered += overhead + n;
            piece = &piece[n..];
        }
        debug_assert!(state.buffered + state.tail.capacity() - state.tail.len() <= self.capacity);
        state.wake_reader();
    }

    /// Finish the writer cleanly.
    pub(crate) fn close(&self) -> Result<(), ChannelError> {
        let mut state = self.lock();
        Self::writer_live(&state)?;
        state.writer = WriterState::Closed;
        let reader_gone = matches!(state.reader, ReaderState::Dropped);
        state.wake_reader();
        let release = self.release_if_finished(&mut state);
        drop(state);
        release.apply(self);
        // Closing is still recorded, but a writer must learn that its data was not all
        // delivered: a reader that left early is never reported as success.
        if reader_gone { Err(ChannelError::Closed) } else { Ok(()) }
    }

    /// Finish the writer as failed. A no-op if it already finished.
    pub(crate) fn abort(&self, reason: AbortReason) {
        let mut state = self.lock();
        if !matches!(state.writer, WriterState::Attached) {
            return;
        }
        state.writer = WriterState::Aborted(reason);
        state.wake_reader();
        let release = self.release_if_finished(&mut state);
        drop(state);
        release.apply(self);
    }

    /// The next item, at most `max` bytes of it (and [`MAX_CHUNK_BYTES`]) if it is bytes,
    /// small adjacent chunks joined (see [`Shared::pop`]).
    /// `Ok(None)` is the clean end of the stream.
    pub(crate) fn poll_next(
        &self,
        cx: &mut Context<'_>,
        max: usize,
    ) -> Poll<Result<Option<Item>, ChannelError>> {
        let mut state = self.lock();
        match &state.reader {
            ReaderState::Attached => {}
            ReaderState::Done(Ok(())) => return Poll::Ready(Ok(None)),
            ReaderState::Done(Err(reason)) => return Poll::Ready(Err(ChannelError::Aborted(reason.clone()))),
            ReaderState::Dropped => return Poll::Ready(Err(ChannelError::Finished)),
            ReaderState::Unattached => return Poll::Ready(Err(ChannelError::NotFound)),
        }
        if state.expired {
            return Poll::Ready(Err(ChannelError::TimedOut));
        }
        if let Some(item) = self.pop(&mut state, max) {
            state.wake_writer();
            return Poll::Ready(Ok(Some(item)));
        }
        let outcome = match &state.writer {
            WriterState::Closed => Ok(()),
            WriterState::Aborted(reason) => Err(reason.resolve()),
            WriterState::Unattached | WriterState::Attached => {
                state.reader_waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
        };
        state.reader = ReaderState::Done(outcome.clone());
        let release = self.release_if_finished(&mut state);
        drop(state);
        release.apply(self);
        Poll::Ready(outcome.map(|()| None).map_err(ChannelError::Aborted))
    }

    /// Take the next item off the queue, charging the buffer exactly as reading its
    /// pieces one by one would: a chunk taken whole gives back its bytes and its
    /// bookkeeping, a prefix only its bytes.
    ///
    /// With nothing queued, the tail is read: copied out if it is still filling and fits
    /// in `max`, else sealed and read as a chunk. A small byte chunk (shorter than
    /// [`SMALL_CHUNK_BYTES`]) shorter than `max` is joined with the small byte chunks
    /// right behind it, up to `max` (and [`MAX_CHUNK_BYTES`]) in all. A text message or a
    /// larger chunk ends the join and stays queued, in order, for a later read.
    fn pop(&self, state: &mut State, max: usize) -> Option<Item> {
        let max = max.clamp(1, MAX_CHUNK_BYTES);
        if state.queue.is_empty() && !state.tail.is_empty() {
            if state.tail.len() < state.tail.capacity() && state.tail.len() <= max {
                // A tail still filling: copy it out and keep its allocation for the
                // writer (see the module docs).
                let bytes = Bytes::copy_from_slice(&state.tail);
                let freed = ITEM_OVERHEAD_BYTES + state.tail.len();
                state.tail.clear();
                state.buffered -= freed;
                return Some(Item::Bytes(bytes));
            }
            state.seal_tail();
        }
        let joins = match (state.queue.front(), state.queue.get(1)) {
            (Some(Item::Bytes(first)), Some(Item::Bytes(second))) => {
                first.len() < max && first.len() < SMALL_CHUNK_BYTES && second.len() < SMALL_CHUNK_BYTES
            }
            _ => false,
        };
        let (item, freed) = match state.queue.front_mut()? {
            _ if joins => {
                let joined = join_bytes(&mut state.queue, max);
                (Item::Bytes(joined.bytes), joined.freed)
            }
            Item::Bytes(chunk) if chunk.len() > max => {
                // Take a prefix and leave the rest (and its overhead charge) queued.
                (Item::Bytes(chunk.split_to(max)), max)
            }
            _ => {
                let item = state.queue.pop_front()?;
                let cost = item.cost();
                (item, cost)
            }
        };
        state.buffered -= freed;
        Some(item)
    }

    /// The reader handle went away before the end: drop what it would have read and let
    /// the writer see `Closed`.
    pub(crate) fn drop_reader(&self) {
        let mut state = self.lock();
        if state.reader != ReaderState::Attached {
            return;
        }
        state.reader = ReaderState::Dropped;
        self.clear_queue(&mut state);
        state.wake_writer();
        let release = self.release_if_finished(&mut state);
        drop(state);
        release.apply(self);
    }

    /// Bytes charged against this channel's buffer now (0 once it is finished).
    pub(crate) fn buffered(&self) -> usize {
        self.lock().buffered
    }

    /// The reader end's lifecycle, as the writer may see it.
    pub(crate) fn reader_status(&self) -> crate::ends::ReaderStatus {
        use crate::ends::ReaderStatus;
        match self.lock().reader {
            ReaderState::Unattached => ReaderStatus::Unattached,
            ReaderState::Attached => ReaderStatus::Reading,
            ReaderState::Done(_) => ReaderStatus::Finished,
            ReaderState::Dropped => ReaderStatus::Dropped,
        }
    }

    /// The writer end's lifecycle, as the reader may see it.
    pub(crate) fn writer_status(&self) -> crate::ends::WriterStatus {
        use crate::ends::WriterStatus;
        match self.lock().writer {
            WriterState::Unattached => WriterStatus::Unattached,
            WriterState::Attached => WriterStatus::Writing,
            WriterState::Closed => WriterStatus::Closed,
            WriterState::Aborted(_) => WriterStatus::Aborted,
        }
    }

    /// Free the channel once both ends are finished.
    fn release_if_finished(&self, state: &mut State) -> Release {
        let writer_done = matches!(state.writer, WriterState::Closed | WriterState::Aborted(_));
        let reader_done = matches!(state.reader, ReaderState::Done(_) | ReaderState::Dropped);
        if writer_done && reader_done && !state.removed {
            self.clear_queue(state);
            state.removed = true;
            Release(true)
        } else {
            Release::KEEP
        }
    }
}

/// Byte chunks joined into one by [`Shared::pop`], and the buffer charge they give back.
struct Joined {
    bytes: Bytes,
    freed: usize,
}

/// Join the small byte chunks at the front of `queue` into one of at most `max` bytes,
/// taking whole chunks while they fit and a prefix of the first that does not. Stops at a
/// text message, a chunk of [`SMALL_CHUNK_BYTES`] or more, or the end of the queue. The joined chunk is one new allocation of exactly
/// its length, so it pins no more memory than it holds.
fn join_bytes(queue: &mut VecDeque<Item>, max: usize) -> Joined {
    let mut len = 0;
    for item in queue.iter() {
        match item {
            Item::Bytes(chunk) if len < max && chunk.len() < SMALL_CHUNK_BYTES => {
                len += chunk.len().min(max - len);
            }
            _ => break,
        }
    }
    let mut joined = Vec::with_capacity(len);
    let mut freed = 0;
    while joined.len() < len {
        let want = len - joined.len();
        match queue.front_mut() {
            Some(Item::Bytes(chunk)) if chunk.len() > want => {
                joined.extend_from_slice(&chunk[..want]);
                chunk.advance(want);
                freed += want;
            }
            Some(Item::Bytes(chunk)) => {
                joined.extend_from_slice(chunk);
                freed += ITEM_OVERHEAD_BYTES + chunk.len();
                queue.pop_front();
            }
            // Unreachable: `len` counted only byte chunks at the front.
            _ => break,
        }
    }
    Joined { bytes: Bytes::from(joined), freed }
}

impl State {
    /// Queue the tail as one chunk, keeping its charge (one item's overhead and its
    /// bytes). Spare capacity is given back first, so a queued chunk never holds more
    /// memory than it is charged for. An empty tail's allocation is freed: it was sized
    /// for the room the buffer had before whatever is queued now.
    fn seal_tail(&mut self) {
        let mut tail = std::mem::take(&mut self.tail);
        if !tail.is_empty() {
            tail.shrink_to_fit();
            self.queue.push_back(Item::Bytes(Bytes::from(tail)));
        }
    }

    fn has_unattached_end(&self) -> bool {
        matches!(self.writer, WriterState::Unattached) || self.reader == ReaderState::Unattached
    }

    fn wake_reader(&mut self) {
        if let Some(waker) = self.reader_waker.take() {
            waker.wake();
        }
    }

    fn wake_writer(&mut self) {
        if let Some(waker) = self.writer_waker.take() {
            waker.wake();
        }
    }

    fn wake_both(&mut self) {
        self.wake_writer();
        self.wake_reader();
    }
}
