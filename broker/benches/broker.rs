//! Criterion benches for the broker's hot paths, each beside the baseline it is judged
//! against: streaming a channel (per chunk size) beside a plain copy of the same bytes,
//! the lifecycle of a channel (create, open both refs, stream nothing, finish), and
//! parsing a ref from JSON.
//!
//! `cargo bench -p rill-broker` (add `-- --quick` for a short run). `rill bench` measures
//! the whole path through wasm; these isolate the broker so a regression shows where it
//! comes from.

#![allow(clippy::expect_used, reason = "a bench that cannot set up has nothing to measure")]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rill_broker::{Broker, BrokerConfig, ChannelOptions, ChannelRef, Item};
use tokio::runtime::Runtime;

/// Bytes streamed per iteration of the streaming benches.
const STREAM_BYTES: usize = 4 << 20;
const CHUNKS: [usize; 3] = [4 << 10, 64 << 10, 1 << 20];

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a tokio runtime")
}

/// Write `STREAM_BYTES` in `chunk`-sized writes and read them back with reads of up to
/// `chunk` bytes, copying each into a reused buffer: the broker's part of a
/// guest → guest stream (copy in, queue, copy out).
async fn stream(broker: &Broker, source: &[u8], sink: &mut [u8]) -> usize {
    let channel = broker.create(&ChannelOptions::default()).expect("a channel");
    let (mut writer, mut reader) = (channel.writer, channel.reader);
    let chunk = source.len();
    let write = async move {
        for _ in 0..STREAM_BYTES / chunk {
            writer.write(Bytes::copy_from_slice(source)).await.expect("write");
        }
        writer.close().expect("close");
    };
    let read = async {
        let mut total = 0;
        while let Some(item) = reader.read(chunk).await.expect("read") {
            if let Item::Bytes(bytes) = item {
                sink[..bytes.len()].copy_from_slice(&bytes);
                total += bytes.len();
            }
        }
        total
    };
    let ((), total) = tokio::join!(write, read);
    total
}

fn streaming(c: &mut Criterion) {
    let rt = runtime();
    let broker = rt.block_on(async { Broker::new(BrokerConfig::default()) });
    let mut group = c.benchmark_group("stream");
    group.throughput(Throughput::Bytes(STREAM_BYTES as u64));
    for chunk in CHUNKS {
        let source: Vec<u8> = (0..chunk).map(|i| i as u8).collect();
        let mut sink = vec![0u8; chunk];
        group.bench_with_input(BenchmarkId::new("broker", chunk), &chunk, |b, _| {
            b.iter(|| rt.block_on(stream(&broker, &source, &mut sink)));
        });
        // The same two copies per chunk without the broker in between.
        let mut middle = vec![0u8; chunk];
        group.bench_with_input(BenchmarkId::new("two copies, no broker", chunk), &chunk, |b, _| {
            b.iter(|| {
                for _ in 0..STREAM_BYTES / chunk {
                    middle.copy_from_slice(black_box(&source));
                    sink.copy_from_slice(black_box(&middle));
                }
                black_box(&sink);
            });
        });
    }
    group.finish();
}

fn lifecycle(c: &mut Criterion) {
    let rt = runtime();
    let broker = rt.block_on(async { Broker::new(BrokerConfig::default()) });
    c.bench_function("channel: create, open both refs, close, read the end", |b| {
        b.iter(|| {
            rt.block_on(async {
                let channel = broker.create(&ChannelOptions::default()).expect("a channel");
                let mut writer = broker.open_writer(&channel.writer_ref).expect("the writer ref opens");
                let mut reader = broker.open_reader(&channel.reader_ref).expect("the reader ref opens");
                writer.close().expect("close");
                assert!(reader.read(1).await.expect("the end").is_none());
            })
        });
    });
}

fn refs(c: &mut Criterion) {
    let rt = runtime();
    let broker = rt.block_on(async { Broker::new(BrokerConfig::default()) });
    let channel = broker.create(&ChannelOptions::default()).expect("a channel");
    let json = channel.reader_ref.to_value().to_string();
    c.bench_function("ref: parse from JSON", |b| {
        b.iter(|| ChannelRef::from_json(black_box(&json)).expect("a valid ref"));
    });
}

criterion_group!(benches, streaming, lifecycle, refs);
criterion_main!(benches);
