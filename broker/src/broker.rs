//! The broker: the registry of live channels.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use crate::budget::Budget;
use crate::channel::{Counters, Shared};
use crate::config::bounded_reason;
use crate::{BrokerConfig, ChannelError, ChannelOptions, ChannelRef, Direction, Reader, Writer};

/// The channel broker: creates channels, resolves refs to ends, and frees channels.
///
/// Cheap to clone (an `Arc`); every clone is the same broker. Create it inside a tokio
/// runtime so that its expiry sweeper runs (see [`Broker::new`]).
#[derive(Clone)]
pub struct Broker {
    inner: Arc<BrokerInner>,
}

pub(crate) struct BrokerInner {
    config: BrokerConfig,
    channels: Mutex<HashMap<Uuid, Arc<Shared>>>,
    counters: Arc<Counters>,
}

/// A snapshot of what a broker holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerStats {
    /// Channels that are registered (not yet finished or expired).
    pub live_channels: usize,
    /// Bytes charged against channel buffers across the broker, including each item's
    /// bookkeeping ([`ITEM_OVERHEAD_BYTES`](crate::ITEM_OVERHEAD_BYTES)).
    pub buffered_bytes: usize,
    /// Buffer bytes reserved by the live channels whose writer attached (the sum of their
    /// buffer sizes): a channel reserves its buffer when its writer attaches.
    pub reserved_bytes: usize,
}

/// A new channel: both local ends and both refs.
///
/// The local ends attach lazily, on their first operation, so handing a ref away and
/// dropping the unused local end leaves that end free for whoever opens the ref.
#[derive(Debug)]
#[non_exhaustive]
pub struct NewChannel {
    /// The local writing end.
    pub writer: Writer,
    /// The local reading end.
    pub reader: Reader,
    /// The ref that opens the writing end.
    pub writer_ref: ChannelRef,
    /// The ref that opens the reading end.
    pub reader_ref: ChannelRef,
    /// The creator's hold on the channel, for finishing the ends nobody attached if the
    /// creator fails (see [`ChannelOwner::fail_unattached`]).
    pub owner: ChannelOwner,
}

/// The creator's hold on a channel: a weak reference that keeps nothing alive, through
/// which a host that runs the creating function finishes the ends nobody attached when
/// that function fails.
#[derive(Debug, Clone)]
pub struct ChannelOwner(Weak<Shared>);

impl ChannelOwner {
    /// The creator failed with `reason`: finish every end of the channel that nobody has
    /// attached, so that whoever holds the other end learns at once instead of waiting
    /// for the attach deadline.
    ///
    /// - An unattached writer end aborts: the reader (once attached) gets
    ///   [`ChannelError::Aborted`] with `reason`; the writer ref then fails with
    ///   [`ChannelError::AlreadyAttached`].
    /// - An unattached reader end counts as dropped: the writer's next operation fails
    ///   with [`ChannelError::Closed`].
    /// - A channel neither of whose ends was attached is freed at once (its refs answer
    ///   [`ChannelError::NotFound`]), so a failed call's unused channels cost nothing
    ///   after it.
    ///
    /// Ends already attached, and channels already freed, are left as they are.
    pub fn fail_unattached(&self, reason: &str) {
        if let Some(shared) = self.0.upgrade() {
            shared.fail_unattached(&bounded_reason(reason.to_owned()));
        }
    }

    /// Whether the channel still exists (registered, or held by one of its ends). A hold
    /// on a channel that is gone can be forgotten.
    pub fn is_live(&self) -> bool {
        self.0.strong_count() > 0
    }
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker").field("config", &self.inner.config).field("stats", &self.stats()).finish()
    }
}

impl Default for Broker {
    fn default() -> Self {
        Broker::new(BrokerConfig::default())
    }
}

impl Broker {
    /// A broker with `config`.
    ///
    /// When called inside a tokio runtime, this starts the broker's sweeper task, which
    /// expires channels whose ends were not attached in time (and wakes whoever waits on
    /// them). The task stops once every clone of the broker is dropped. Outside a runtime,
    /// call [`Broker::expire_due`] yourself.
    pub fn new(config: BrokerConfig) -> Broker {
        let inner = Arc::new(BrokerInner {
            config,
            channels: Mutex::new(HashMap::new()),
            counters: Arc::new(Counters::default()),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&inner);
            let period = sweep_period(inner.config.attach_timeout);
            runtime.spawn(sweep(weak, period));
        }
        Broker { inner }
    }

    /// The broker's configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.inner.config
    }

    /// Create a channel.
    ///
    /// The channel's buffer is reserved against [`BrokerConfig::max_reserved_bytes`] when
    /// its writer attaches (only a writer can fill it), so a channel created and never
    /// used costs its bookkeeping alone.
    ///
    /// # Errors
    ///
    /// - [`ChannelError::InvalidArgument`] when the requested buffer size is out of range.
    /// - [`ChannelError::LimitExceeded`] when the broker already holds
    ///   [`BrokerConfig::max_channels`] channels.
    pub fn create(&self, options: &ChannelOptions) -> Result<NewChannel, ChannelError> {
        self.create_within(options, None)
    }

    /// Create a channel charged to `budget` (see [`Budget`]): it counts as one of the
    /// budget's channels until it is freed, and from the moment its writer attaches it
    /// reserves its buffer size there too.
    ///
    /// # Errors
    ///
    /// As [`Broker::create`], plus [`ChannelError::LimitExceeded`] when the budget's
    /// channels are spent. (When its buffer bytes are spent, attaching the writer fails.)
    pub fn create_within(
        &self,
        options: &ChannelOptions,
        budget: Option<&Budget>,
    ) -> Result<NewChannel, ChannelError> {
        let capacity = options.resolve_buffer(&self.inner.config)?;
        let config = &self.inner.config;
        let counters = &self.inner.counters;
        if let Some(budget) = budget {
            budget.charge_channel()?;
        }
        let shared = Arc::new(Shared::new(
            capacity,
            Instant::now().checked_add(config.attach_timeout).unwrap_or_else(far_future),
            Arc::clone(counters),
            Arc::downgrade(&self.inner),
            budget.cloned(),
        ));
        {
            let mut channels = self.inner.lock();
            if channels.len() >= config.max_channels {
                drop(channels);
                if let Some(budget) = budget {
                    budget.release(0);
                }
                return Err(ChannelError::LimitExceeded {
                    limit: "live channels in this host",
                    max: config.max_channels as u64,
                });
            }
            channels.insert(shared.id, Arc::clone(&shared));
        }
        let make_ref = |direction: Direction| ChannelRef {
            channel_id: shared.id.to_string(),
            access_key: match direction {
                Direction::Read => shared.reader_key.to_hex_string(),
                Direction::Write => shared.writer_key.to_hex_string(),
            },
            direction,
        };
        let writer_ref = make_ref(Direction::Write);
        let reader_ref = make_ref(Direction::Read);
        Ok(NewChannel {
            writer: Writer::lazy(Arc::clone(&shared)),
            owner: ChannelOwner(Arc::downgrade(&shared)),
            reader: Reader::lazy(shared),
            writer_ref,
            reader_ref,
        })
    }

    /// Attach the writing end named by `channel_ref`.
    ///
    /// # Errors
    ///
    /// - [`ChannelError::NotFound`] for an unknown or expired channel, a wrong key, or a
    ///   ref whose direction is not `write` (one answer for all).
    /// - [`ChannelError::AlreadyAttached`] when the end was attached before.
    pub fn open_writer(&self, channel_ref: &ChannelRef) -> Result<Writer, ChannelError> {
        let shared = self.attach(channel_ref, Direction::Write)?;
        Ok(Writer::attached(shared))
    }

    /// Attach the reading end named by `channel_ref`.
    ///
    /// # Errors
    ///
    /// As [`Broker::open_writer`], for a ref whose direction is `read`.
    pub fn open_reader(&self, channel_ref: &ChannelRef) -> Result<Reader, ChannelError> {
        let shared = self.attach(channel_ref, Direction::Read)?;
        Ok(Reader::attached(shared))
    }

    pub(crate) fn attach(
        &self,
        channel_ref: &ChannelRef,
        direction: Direction,
    ) -> Result<Arc<Shared>, ChannelError> {
        if channel_ref.direction != direction {
            return Err(ChannelError::NotFound);
        }
        let id = Uuid::try_parse(&channel_ref.channel_id).map_err(|_| ChannelError::NotFound)?;
        let shared = self.inner.lock().get(&id).cloned().ok_or(ChannelError::NotFound)?;
        shared.attach(direction, &channel_ref.access_key)?;
        Ok(shared)
    }

    /// What the broker holds right now.
    ///
    /// Takes each live channel's lock briefly to read its buffered bytes (they are kept
    /// per channel so that writes and reads touch nothing broker-wide), so it costs time
    /// in proportion to the live channels: meant for metrics and tests, not for every
    /// write.
    pub fn stats(&self) -> BrokerStats {
        // Snapshot first: a channel's own lock is never taken under the map lock.
        let live: Vec<Arc<Shared>> = self.inner.lock().values().cloned().collect();
        BrokerStats {
            live_channels: live.len(),
            buffered_bytes: live.iter().map(|channel| channel.buffered()).sum(),
            reserved_bytes: self.inner.counters.reserved_bytes.load(Ordering::Relaxed),
        }
    }

    /// Expire every channel with an end still unattached past its deadline, waking anyone
    /// waiting on it. Returns how many expired. The sweeper calls this periodically.
    pub fn expire_due(&self) -> usize {
        self.inner.expire_due(Instant::now())
    }
}

impl BrokerInner {
    pub(crate) fn config(&self) -> &BrokerConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, Arc<Shared>>> {
        // The map is only touched by insert/remove/get/clone, none of which can leave it
        // inconsistent if a panic happened elsewhere while the lock was held.
        self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Forget a finished or expired channel and give back its reservation. Called once
    /// per channel in practice; a second call finds nothing and gives back nothing.
    pub(crate) fn unregister(&self, id: Uuid) {
        let removed = self.lock().remove(&id);
        if let Some(shared) = removed {
            shared.release_reservation();
        }
    }

    fn expire_due(&self, now: Instant) -> usize {
        // Snapshot first: a channel's own lock is never taken under the map lock.
        let candidates: Vec<Arc<Shared>> =
            self.lock().values().filter(|c| c.attach_deadline <= now).cloned().collect();
        candidates.iter().filter(|c| c.expire_if_due(now)).count()
    }
}

/// A deadline nobody will live to see, for absurdly long configured timeouts.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

/// How often the sweeper looks for expired channels: often enough that expiry is at most
/// a quarter of the timeout late, never busier than every 5 ms nor lazier than every second.
fn sweep_period(attach_timeout: Duration) -> Duration {
    (attach_timeout / 4).clamp(Duration::from_millis(5), Duration::from_secs(1))
}

async fn sweep(broker: Weak<BrokerInner>, period: Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(inner) = broker.upgrade() else { return };
        let expired = inner.expire_due(Instant::now());
        if expired > 0 {
            tracing::debug!(expired, "expired channels whose ends were not attached in time");
        }
    }
}
