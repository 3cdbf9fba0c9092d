//! A model test of the broker: random sequences of operations on a few channels, checked
//! against a deliberately simple reference model after every step.
//!
//! Every operation is driven without waiting (a no-op waker), so the model also predicts
//! when an operation must wait. Invariants checked throughout:
//!
//! - what a reader gets is exactly what was written, in order (bytes and text): small
//!   writes joined onto the channel's tail as they are buffered (the tail queued when it
//!   is full or before any other item; a read that finds only a tail still filling
//!   copies it out, or takes the whole tail if it is full or larger than the read), and
//!   a read of `max` getting the small byte chunks in a row joined up to `max` (and the
//!   chunk size), never across a text message or a larger chunk;
//! - a write that never waits ([`TryWriter`](rill_broker::TryWriter)) takes exactly what
//!   a waiting write would, or nothing where that one would wait;
//! - a clean end (`Ok(None)`) only after `close`, an abort only after `abort` or a dropped
//!   writer, each only after everything buffered was read;
//! - the buffer never holds more than its capacity, counting the tail's spare capacity,
//!   and the broker's byte total is the sum of the channels';
//! - direction, double attach and post-finish errors are the exact variants;
//! - once every end is gone and the attach deadline has passed, nothing is left.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use rill_broker::{
    Broker, BrokerConfig, ChannelError, ChannelOptions, ChannelRef, ITEM_OVERHEAD_BYTES, Item,
    MAX_CHUNK_BYTES, MIN_BUFFER_BYTES, Reader, SMALL_CHUNK_BYTES, Writer,
};
use tokio::io::AsyncWrite;

const CHANNELS: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Write {
        ch: usize,
        len: usize,
    },
    /// The same through a `TryWriter`.
    TryWrite {
        ch: usize,
        len: usize,
    },
    Text {
        ch: usize,
        len: usize,
    },
    Read {
        ch: usize,
        max: usize,
    },
    Close {
        ch: usize,
    },
    Abort {
        ch: usize,
    },
    DropWriter {
        ch: usize,
    },
    DropReader {
        ch: usize,
    },
    /// Open the writer with the reader's ref: must always be not-found.
    WrongDirection {
        ch: usize,
    },
    /// Open the reader ref again: not-found never, already-attached once attached.
    ReopenReader {
        ch: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let ch = 0..CHANNELS;
    prop_oneof![
        4 => (ch.clone(), 0..3 * MAX_CHUNK_BYTES).prop_map(|(ch, len)| Op::Write { ch, len }),
        // Small writes (tiny, and around the size below which chunks are joined), so that
        // reads often meet several chunks in a row to join.
        2 => (ch.clone(), 0..2 * ITEM_OVERHEAD_BYTES).prop_map(|(ch, len)| Op::Write { ch, len }),
        2 => (ch.clone(), SMALL_CHUNK_BYTES - 100..SMALL_CHUNK_BYTES + 100)
            .prop_map(|(ch, len)| Op::Write { ch, len }),
        2 => (ch.clone(), 0..2 * SMALL_CHUNK_BYTES).prop_map(|(ch, len)| Op::TryWrite { ch, len }),
        2 => (ch.clone(), 0..200usize).prop_map(|(ch, len)| Op::Text { ch, len }),
        5 => (ch.clone(), 1..2 * MAX_CHUNK_BYTES).prop_map(|(ch, max)| Op::Read { ch, max }),
        2 => (ch.clone(), 1..3 * ITEM_OVERHEAD_BYTES).prop_map(|(ch, max)| Op::Read { ch, max }),
        1 => ch.clone().prop_map(|ch| Op::Close { ch }),
        1 => ch.clone().prop_map(|ch| Op::Abort { ch }),
        1 => ch.clone().prop_map(|ch| Op::DropWriter { ch }),
        1 => ch.clone().prop_map(|ch| Op::DropReader { ch }),
        1 => ch.clone().prop_map(|ch| Op::WrongDirection { ch }),
        1 => ch.prop_map(|ch| Op::ReopenReader { ch }),
    ]
}

#[derive(Debug, Clone, PartialEq)]
enum ModelItem {
    Bytes(Vec<u8>),
    Text(String),
}

#[derive(Debug, Clone, PartialEq)]
enum WriterModel {
    Open,
    Closed,
    Aborted(String),
    Gone,
}

/// The reference model of one channel.
struct Model {
    capacity: usize,
    queue: VecDeque<ModelItem>,
    /// Small writes joined, after everything in `queue`, and the capacity it was given.
    tail: Vec<u8>,
    tail_capacity: usize,
    writer: WriterModel,
    /// The reader read the end (clean or aborted), or was dropped.
    reader_done: bool,
    reader_dropped: bool,
    next_byte: u8,
}

impl Model {
    fn buffered(&self) -> usize {
        let queued: usize = self
            .queue
            .iter()
            .map(|i| {
                ITEM_OVERHEAD_BYTES
                    + match i {
                        ModelItem::Bytes(b) => b.len(),
                        ModelItem::Text(t) => t.len(),
                    }
            })
            .sum();
        let tail = if self.tail.is_empty() { 0 } else { ITEM_OVERHEAD_BYTES + self.tail.len() };
        queued + tail
    }

    /// Buffer the bytes a write took: a small piece onto the tail (a full tail queued, the
    /// next one as large as the room), a larger one as a chunk of its own.
    fn buffer(&mut self, mut piece: &[u8]) {
        if piece.len() >= SMALL_CHUNK_BYTES {
            self.seal();
            self.queue.push_back(ModelItem::Bytes(piece.to_vec()));
            return;
        }
        while !piece.is_empty() {
            if self.tail.len() == self.tail_capacity {
                self.seal();
                self.tail_capacity = self.room();
            }
            let n = piece.len().min(self.tail_capacity - self.tail.len());
            self.tail.extend_from_slice(&piece[..n]);
            piece = &piece[n..];
        }
    }

    fn seal(&mut self) {
        if !self.tail.is_empty() {
            self.queue.push_back(ModelItem::Bytes(std::mem::take(&mut self.tail)));
        }
        self.tail_capacity = 0;
    }

    fn room(&self) -> usize {
        self.capacity.saturating_sub(self.buffered()).saturating_sub(ITEM_OVERHEAD_BYTES).min(MAX_CHUNK_BYTES)
    }

    fn pattern(&mut self, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                self.next_byte = self.next_byte.wrapping_add(1);
                self.next_byte
            })
            .collect()
    }
}

struct Real {
    writer: Option<Writer>,
    reader: Option<Reader>,
    reader_ref: ChannelRef,
}

fn poll_once<T>(fut: impl Future<Output = T>) -> Poll<T> {
    let mut fut = std::pin::pin!(fut);
    fut.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

fn run(ops: Vec<Op>, capacities: [usize; CHANNELS]) {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    runtime.block_on(async move {
        let broker = Broker::new(BrokerConfig::default().attach_timeout(Duration::from_secs(5)));
        let mut models = Vec::new();
        let mut reals = Vec::new();
        for capacity in capacities {
            let ch = broker.create(&ChannelOptions::buffer_bytes(capacity)).unwrap();
            reals.push(Real { writer: Some(ch.writer), reader: Some(ch.reader), reader_ref: ch.reader_ref });
            models.push(Model {
                capacity,
                queue: VecDeque::new(),
                tail: Vec::new(),
                tail_capacity: 0,
                writer: WriterModel::Open,
                reader_done: false,
                reader_dropped: false,
                next_byte: 0,
            });
        }
        // Attach every end up front (one byte through each channel) so expiry plays no
        // part until the end of the run.
        for (real, model) in reals.iter_mut().zip(&mut models) {
            let byte = model.pattern(1);
            real.writer.as_mut().unwrap().write(byte.clone()).await.unwrap();
            assert_eq!(real.reader.as_mut().unwrap().next().await.unwrap(), Some(Item::Bytes(byte.into())));
        }

        for op in ops {
            step(&broker, &mut reals, &mut models, op);
            let total: usize = models.iter().map(Model::buffered).sum();
            assert_eq!(broker.stats().buffered_bytes, total, "broker total equals the model's");
            for m in &models {
                assert!(m.buffered() + (m.tail_capacity - m.tail.len()) <= m.capacity);
            }
        }

        drop(reals);
        tokio::time::sleep(Duration::from_secs(10)).await;
        let stats = broker.stats();
        assert_eq!(
            (stats.live_channels, stats.buffered_bytes, stats.reserved_bytes),
            (0, 0, 0),
            "everything is released"
        );
    });
}

fn step(broker: &Broker, reals: &mut [Real], models: &mut [Model], op: Op) {
    match op {
        Op::Write { ch, len } => {
            let (real, model) = (&mut reals[ch], &mut models[ch]);
            let Some(writer) = real.writer.as_mut() else { return };
            let data = model.pattern(len);
            let got = Pin::new(writer).poll_write(&mut Context::from_waker(Waker::noop()), &data);
            let expected_err = match &model.writer {
                WriterModel::Closed | WriterModel::Aborted(_) => Some(ChannelError::Finished),
                WriterModel::Open if model.reader_dropped => Some(ChannelError::Closed),
                WriterModel::Open | WriterModel::Gone => None,
            };
            match (got, expected_err) {
                (Poll::Ready(Err(err)), Some(expected)) => {
                    let inner = err.into_inner().unwrap().downcast::<ChannelError>().unwrap();
                    assert_eq!(*inner, expected);
                }
                (Poll::Ready(Ok(n)), None) if len == 0 => assert_eq!(n, 0),
                (Poll::Ready(Ok(n)), None) => {
                    assert_eq!(n, model.room().min(len), "a write takes all the room there is");
                    assert!(n > 0);
                    model.buffer(&data[..n]);
                }
                (Poll::Pending, None) => {
                    assert_eq!(model.room(), 0, "only a full buffer makes a writer wait")
                }
                (other, expected) => panic!("write: got {other:?}, expected error {expected:?}"),
            }
        }
        Op::TryWrite { ch, len } => {
            let (real, model) = (&mut reals[ch], &mut models[ch]);
            let Some(writer) = real.writer.as_mut() else { return };
            let data = model.pattern(len);
            let got = writer.try_writer().unwrap().try_write(&data);
            match (&model.writer, model.reader_dropped) {
                (WriterModel::Closed | WriterModel::Aborted(_), _) => {
                    assert_eq!(got, Err(ChannelError::Finished))
                }
                (_, true) => assert_eq!(got, Err(ChannelError::Closed)),
                (WriterModel::Open | WriterModel::Gone, false) => {
                    let n = model.room().min(len);
                    assert_eq!(got, Ok(n), "takes all the room there is, or nothing where a write waits");
                    model.buffer(&data[..n]);
                }
            }
        }
        Op::Text { ch, len } => {
            let (real, model) = (&mut reals[ch], &mut models[ch]);
            let Some(writer) = real.writer.as_mut() else { return };
            let text = "t".repeat(len);
            let got = poll_once(writer.send_text(text.clone()));
            let fits = model.buffered() + ITEM_OVERHEAD_BYTES + len <= model.capacity;
            match (&model.writer, model.reader_dropped, got) {
                (WriterModel::Closed | WriterModel::Aborted(_), _, Poll::Ready(Err(e))) => {
                    assert_eq!(e, ChannelError::Finished)
                }
                (WriterModel::Open, true, Poll::Ready(Err(e))) => assert_eq!(e, ChannelError::Closed),
                (WriterModel::Open, false, Poll::Ready(Ok(()))) if fits => {
                    model.seal();
                    model.queue.push_back(ModelItem::Text(text))
                }
                (WriterModel::Open, false, Poll::Pending) if !fits => {}
                (w, dropped, got) => {
                    panic!("text: writer {w:?} reader_dropped {dropped} fits {fits} got {got:?}")
                }
            }
        }
        Op::Read { ch, max } => {
            let (real, model) = (&mut reals[ch], &mut models[ch]);
            let Some(reader) = real.reader.as_mut() else { return };
            let got = poll_once(reader.read(max));
            let tail_filling = !model.tail.is_empty() && model.tail.len() < model.tail_capacity;
            if model.queue.is_empty() && tail_filling && model.tail.len() <= max.min(MAX_CHUNK_BYTES) {
                // Copied out; the writer keeps the tail's allocation.
                let bytes = std::mem::take(&mut model.tail);
                assert_eq!(got, Poll::Ready(Ok(Some(Item::Bytes(Bytes::from(bytes))))));
                return;
            }
            if model.queue.is_empty() && !model.tail.is_empty() {
                model.seal();
            }
            let expected = match model.queue.pop_front() {
                Some(ModelItem::Bytes(mut got)) => {
                    // At most `max` (and the chunk size) bytes. A small chunk takes the
                    // small chunks behind it along, up to that; a larger chunk or a text
                    // message ends the join.
                    let max = max.min(MAX_CHUNK_BYTES);
                    if got.len() < SMALL_CHUNK_BYTES {
                        while got.len() < max {
                            match model.queue.pop_front() {
                                Some(ModelItem::Bytes(b)) if b.len() < SMALL_CHUNK_BYTES => got.extend(b),
                                Some(other) => {
                                    model.queue.push_front(other);
                                    break;
                                }
                                None => break,
                            }
                        }
                    }
                    if got.len() > max {
                        let rest = got.split_off(max);
                        model.queue.push_front(ModelItem::Bytes(rest));
                    }
                    Poll::Ready(Ok(Some(Item::Bytes(Bytes::from(got)))))
                }
                Some(ModelItem::Text(t)) => Poll::Ready(Ok(Some(Item::Text(t)))),
                None => match &model.writer {
                    WriterModel::Open => Poll::Pending,
                    WriterModel::Closed => {
                        model.reader_done = true;
                        Poll::Ready(Ok(None))
                    }
                    WriterModel::Aborted(reason) => {
                        model.reader_done = true;
                        Poll::Ready(Err(ChannelError::Aborted(reason.clone())))
                    }
                    WriterModel::Gone => {
                        model.reader_done = true;
                        Poll::Ready(Err(ChannelError::Aborted("writer dropped without close".into())))
                    }
                },
            };
            assert_eq!(got, expected);
        }
        Op::Close { ch } => {
            let (real, model) = (&mut reals[ch], &mut models[ch]);
            let Some(writer) = real.writer.as_mut() else { return };
            let got = writer.close();
            match model.writer {
                WriterModel::Open if model.reader_dropped => {
                    assert_eq!(got, Err(ChannelError::Closed));
                    model.writer = WriterModel::Closed;
                }
                WriterModel::Open => {
                    assert_eq!(got, Ok(()));
                    model.writer = WriterModel::Closed;
                }
                _ => assert_eq!(got, Err(ChannelError::Finished)),
            }
        }
        Op::Abort { ch } => {
            let (real, model) = (&mut reals[ch], &mut models[ch]);
            let Some(writer) = real.writer.as_mut() else { return };
            writer.abort(format!("abort {ch}"));
            if model.writer == WriterModel::Open {
                model.writer = WriterModel::Aborted(format!("abort {ch}"));
            }
        }
        Op::DropWriter { ch } => {
            if reals[ch].writer.take().is_some() && models[ch].writer == WriterModel::Open {
                models[ch].writer = WriterModel::Gone;
            }
        }
        Op::DropReader { ch } => {
            if reals[ch].reader.take().is_some() {
                let model = &mut models[ch];
                if !model.reader_done {
                    model.reader_dropped = true;
                }
                model.queue.clear();
                model.tail = Vec::new();
                model.tail_capacity = 0;
            }
        }
        Op::WrongDirection { ch } => {
            assert_eq!(broker.open_writer(&reals[ch].reader_ref).unwrap_err(), ChannelError::NotFound);
        }
        Op::ReopenReader { ch } => {
            let model = &models[ch];
            let finished = model.reader_done || model.reader_dropped;
            let writer_finished = model.writer != WriterModel::Open || reals[ch].writer.is_none();
            let got = broker.open_reader(&reals[ch].reader_ref).map(drop).unwrap_err();
            if finished && writer_finished {
                assert_eq!(got, ChannelError::NotFound, "a finished channel is freed");
            } else {
                assert_eq!(got, ChannelError::AlreadyAttached);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn broker_matches_the_model(
        ops in proptest::collection::vec(op(), 1..60),
        capacities in proptest::array::uniform3(MIN_BUFFER_BYTES..4 * MIN_BUFFER_BYTES),
    ) {
        run(ops, capacities);
    }
}
