//! Arbitrary sequences of broker operations on a few channels, driven without waiting:
//! nothing panics, no buffer ever holds more than its size, the broker's byte count
//! matches, and once every end is gone and the deadline has passed nothing is left.
#![no_main]

use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rill_broker::{Broker, BrokerConfig, ChannelOptions, ChannelRef, MIN_BUFFER_BYTES, Reader, Writer};
use tokio::io::AsyncWrite;

#[derive(Debug, Arbitrary)]
enum Op {
    Create { extra_buffer: u16 },
    Write { ch: u8, len: u16 },
    Text { ch: u8, len: u8 },
    Read { ch: u8, max: u16 },
    Close { ch: u8 },
    Abort { ch: u8 },
    DropWriter { ch: u8 },
    DropReader { ch: u8 },
    OpenWriter { ch: u8 },
    OpenReader { ch: u8 },
    OpenWithWrongRef { ch: u8 },
}

struct Slot {
    writer: Option<Writer>,
    reader: Option<Reader>,
    writer_ref: ChannelRef,
    reader_ref: ChannelRef,
    capacity: usize,
}

fn poll<T>(fut: impl Future<Output = T>) -> Poll<T> {
    let mut fut = std::pin::pin!(fut);
    fut.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

fuzz_target!(|ops: Vec<Op>| {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    runtime.block_on(async move {
        let broker = Broker::new(BrokerConfig::default().attach_timeout(Duration::from_secs(5)));
        let mut slots: Vec<Slot> = Vec::new();
        for op in ops.into_iter().take(200) {
            let pick = |ch: u8, slots: &mut Vec<Slot>| {
                let n = slots.len();
                if n == 0 { None } else { Some(usize::from(ch) % n) }
            };
            match op {
                Op::Create { extra_buffer } => {
                    if slots.len() < 8 {
                        let capacity = MIN_BUFFER_BYTES + usize::from(extra_buffer);
                        let ch = broker.create(&ChannelOptions::buffer_bytes(capacity)).unwrap();
                        slots.push(Slot {
                            writer: Some(ch.writer),
                            reader: Some(ch.reader),
                            writer_ref: ch.writer_ref,
                            reader_ref: ch.reader_ref,
                            capacity,
                        });
                    }
                }
                Op::Write { ch, len } => {
                    if let Some(i) = pick(ch, &mut slots) && let Some(w) = slots[i].writer.as_mut() {
                        let data = vec![7u8; usize::from(len)];
                        let _ = Pin::new(w).poll_write(&mut Context::from_waker(Waker::noop()), &data);
                    }
                }
                Op::Text { ch, len } => {
                    if let Some(i) = pick(ch, &mut slots) && let Some(w) = slots[i].writer.as_mut() {
                        let _ = poll(w.send_text("t".repeat(usize::from(len))));
                    }
                }
                Op::Read { ch, max } => {
                    if let Some(i) = pick(ch, &mut slots) && let Some(r) = slots[i].reader.as_mut() {
                        let _ = poll(r.read(usize::from(max)));
                    }
                }
                Op::Close { ch } => {
                    if let Some(i) = pick(ch, &mut slots) && let Some(w) = slots[i].writer.as_mut() {
                        let _ = w.close();
                    }
                }
                Op::Abort { ch } => {
                    if let Some(i) = pick(ch, &mut slots) && let Some(w) = slots[i].writer.as_mut() {
                        w.abort("fuzz");
                    }
                }
                Op::DropWriter { ch } => {
                    if let Some(i) = pick(ch, &mut slots) {
                        slots[i].writer = None;
                    }
                }
                Op::DropReader { ch } => {
                    if let Some(i) = pick(ch, &mut slots) {
                        slots[i].reader = None;
                    }
                }
                Op::OpenWriter { ch } => {
                    if let Some(i) = pick(ch, &mut slots) && slots[i].writer.is_none() {
                        slots[i].writer = broker.open_writer(&slots[i].writer_ref).ok();
                    }
                }
                Op::OpenReader { ch } => {
                    if let Some(i) = pick(ch, &mut slots) && slots[i].reader.is_none() {
                        slots[i].reader = broker.open_reader(&slots[i].reader_ref).ok();
                    }
                }
                Op::OpenWithWrongRef { ch } => {
                    if let Some(i) = pick(ch, &mut slots) {
                        assert!(broker.open_writer(&slots[i].reader_ref).is_err());
                        assert!(broker.open_reader(&slots[i].writer_ref).is_err());
                    }
                }
            }
            let total: usize = slots.iter().map(|s| s.capacity).sum();
            assert!(broker.stats().buffered_bytes <= total, "buffers hold at most their sizes");
        }
        drop(slots);
        tokio::time::sleep(Duration::from_secs(10)).await;
        let stats = broker.stats();
        assert_eq!((stats.live_channels, stats.buffered_bytes, stats.reserved_bytes), (0, 0, 0));
    });
});
