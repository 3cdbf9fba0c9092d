//! Channel semantics, end to end through the broker's public API.
//!
//! iii's channel acceptance cases as they apply to rill, plus what iii lacked: direction
//! enforcement, double attach as an error, visible writer failure, reader drop reaching
//! the writer, expiry, and channels freed when they finish.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::time::Duration;

use bytes::Bytes;
use rill_broker::{
    Broker, BrokerConfig, ChannelError, ChannelOptions, ChannelRef, Direction, FailureCause,
    ITEM_OVERHEAD_BYTES, Item, MAX_CHUNK_BYTES, MAX_TEXT_BYTES, MIN_BUFFER_BYTES, NewChannel,
    SMALL_CHUNK_BYTES,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn broker() -> Broker {
    Broker::new(BrokerConfig::default())
}

fn channel(broker: &Broker) -> NewChannel {
    broker.create(&ChannelOptions::default()).unwrap()
}

fn assert_drained(broker: &Broker) {
    let stats = broker.stats();
    assert_eq!(stats.live_channels, 0, "channels leaked: {stats:?}");
    assert_eq!(stats.buffered_bytes, 0, "buffered bytes leaked: {stats:?}");
}

/// Read every item until the end or an error.
async fn drain(reader: &mut rill_broker::Reader) -> (Vec<Item>, Result<(), ChannelError>) {
    let mut items = Vec::new();
    loop {
        match reader.next().await {
            Ok(Some(item)) => items.push(item),
            Ok(None) => return (items, Ok(())),
            Err(err) => return (items, Err(err)),
        }
    }
}

fn bytes_of(items: &[Item]) -> Vec<u8> {
    items
        .iter()
        .flat_map(|item| match item {
            Item::Bytes(b) => b.to_vec(),
            Item::Text(_) => Vec::new(),
        })
        .collect()
}

#[tokio::test]
async fn create_returns_two_refs_with_different_keys() {
    let broker = broker();
    let ch = channel(&broker);
    assert_eq!(ch.writer_ref.channel_id, ch.reader_ref.channel_id);
    assert_ne!(
        ch.writer_ref.access_key, ch.reader_ref.access_key,
        "iii's shared key is a weakness rill fixes"
    );
    assert_eq!(ch.writer_ref.direction, Direction::Write);
    assert_eq!(ch.reader_ref.direction, Direction::Read);
    assert!(ch.writer_ref.access_key.len() >= 32, "at least 128 bits of key");
    let other = channel(&broker);
    assert_ne!(ch.writer_ref.channel_id, other.writer_ref.channel_id);
}

#[tokio::test]
async fn seed_flow_bytes_then_end() {
    let broker = broker();
    let ch = channel(&broker);
    let mut writer = ch.writer;
    let mut reader = broker.open_reader(&ch.reader_ref).unwrap();
    drop(ch.reader);
    writer.write(&b"file contents"[..]).await.unwrap();
    writer.close().unwrap();
    let (items, outcome) = drain(&mut reader).await;
    assert_eq!(outcome, Ok(()));
    assert_eq!(bytes_of(&items), b"file contents");
    assert_eq!(reader.next().await, Ok(None), "the end repeats");
    drop(reader);
    assert_drained(&broker);
}

#[tokio::test]
async fn text_and_bytes_keep_their_order() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    writer.send_text("t0").await.unwrap();
    writer.write(&b"b1"[..]).await.unwrap();
    writer.send_text("t2").await.unwrap();
    writer.write(&b"b3"[..]).await.unwrap();
    writer.close().unwrap();
    let (items, outcome) = drain(&mut reader).await;
    assert_eq!(outcome, Ok(()));
    assert_eq!(
        items,
        vec![
            Item::Text("t0".into()),
            Item::Bytes(Bytes::from_static(b"b1")),
            Item::Text("t2".into()),
            Item::Bytes(Bytes::from_static(b"b3")),
        ]
    );
}

#[tokio::test]
async fn direction_is_enforced() {
    let broker = broker();
    let ch = channel(&broker);
    assert_eq!(broker.open_writer(&ch.reader_ref).unwrap_err(), ChannelError::NotFound);
    assert_eq!(broker.open_reader(&ch.writer_ref).unwrap_err(), ChannelError::NotFound);
    // The reader's key presented as a writer ref (iii's single key would allow this).
    let forged = ChannelRef { direction: Direction::Write, ..ch.reader_ref.clone() };
    assert_eq!(broker.open_writer(&forged).unwrap_err(), ChannelError::NotFound);
    let forged = ChannelRef { direction: Direction::Read, ..ch.writer_ref.clone() };
    assert_eq!(broker.open_reader(&forged).unwrap_err(), ChannelError::NotFound);
    // The rightful owners can still attach.
    broker.open_writer(&ch.writer_ref).unwrap();
    broker.open_reader(&ch.reader_ref).unwrap();
}

#[tokio::test]
async fn forged_and_unknown_refs_are_not_found() {
    let broker = broker();
    let ch = channel(&broker);
    let wrong_key = ChannelRef { access_key: "0".repeat(64), ..ch.reader_ref.clone() };
    let unknown_id = ChannelRef { channel_id: uuid_like(), ..ch.reader_ref.clone() };
    let garbage_id = ChannelRef { channel_id: "../../etc/passwd".into(), ..ch.reader_ref.clone() };
    let empty_key = ChannelRef { access_key: String::new(), ..ch.reader_ref.clone() };
    for r in [wrong_key, unknown_id, garbage_id, empty_key] {
        assert_eq!(broker.open_reader(&r).unwrap_err(), ChannelError::NotFound, "{r:?}");
    }
}

fn uuid_like() -> String {
    "00000000-0000-4000-8000-000000000000".into()
}

#[tokio::test]
async fn each_end_attaches_once() {
    let broker = broker();
    let ch = channel(&broker);
    let _w = broker.open_writer(&ch.writer_ref).unwrap();
    let _r = broker.open_reader(&ch.reader_ref).unwrap();
    assert_eq!(broker.open_writer(&ch.writer_ref).unwrap_err(), ChannelError::AlreadyAttached);
    assert_eq!(broker.open_reader(&ch.reader_ref).unwrap_err(), ChannelError::AlreadyAttached);
    // The lazy local ends now lose the race too, with the same error, not an empty stream.
    let (mut writer, mut reader) = (ch.writer, ch.reader);
    assert_eq!(writer.write(&b"x"[..]).await.unwrap_err(), ChannelError::AlreadyAttached);
    assert_eq!(reader.next().await.unwrap_err(), ChannelError::AlreadyAttached);
}

#[tokio::test]
async fn a_used_local_end_blocks_the_ref() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, writer_ref, reader_ref, .. } = channel(&broker);
    writer.write(&b"x"[..]).await.unwrap();
    assert_eq!(reader.next().await.unwrap(), Some(Item::Bytes(Bytes::from_static(b"x"))));
    assert_eq!(broker.open_writer(&writer_ref).unwrap_err(), ChannelError::AlreadyAttached);
    assert_eq!(broker.open_reader(&reader_ref).unwrap_err(), ChannelError::AlreadyAttached);
}

#[tokio::test]
async fn dropping_an_unused_local_end_does_not_claim_it() {
    let broker = broker();
    let ch = channel(&broker);
    drop(ch.reader);
    drop(ch.writer);
    let mut writer = broker.open_writer(&ch.writer_ref).unwrap();
    let mut reader = broker.open_reader(&ch.reader_ref).unwrap();
    writer.write(&b"still works"[..]).await.unwrap();
    writer.close().unwrap();
    assert_eq!(bytes_of(&drain(&mut reader).await.0), b"still works");
}

#[tokio::test]
async fn abort_reaches_the_reader_after_the_buffered_data() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    writer.write(&b"partial"[..]).await.unwrap();
    writer.abort("disk on fire");
    let (items, outcome) = drain(&mut reader).await;
    assert_eq!(bytes_of(&items), b"partial");
    assert_eq!(outcome, Err(ChannelError::Aborted("disk on fire".into())));
    assert_eq!(reader.next().await, Err(ChannelError::Aborted("disk on fire".into())), "the error stays");
    drop((writer, reader));
    assert_drained(&broker);
}

#[tokio::test]
async fn aborting_before_the_first_write_reaches_the_reader() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    writer.abort("the input could not be read");
    let (items, end) = drain(&mut reader).await;
    assert!(items.is_empty());
    assert_eq!(end, Err(ChannelError::Aborted("the input could not be read".into())));
    drop((writer, reader));
    assert_drained(&broker);
}

#[tokio::test]
async fn aborting_a_local_end_whose_ref_was_opened_elsewhere_does_nothing() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, writer_ref, .. } = channel(&broker);
    let mut remote = broker.open_writer(&writer_ref).unwrap();
    writer.abort("not mine to abort");
    remote.write(Bytes::from_static(b"ok")).await.unwrap();
    remote.close().unwrap();
    let (items, end) = drain(&mut reader).await;
    assert_eq!(bytes_of(&items), b"ok");
    assert_eq!(end, Ok(()));
    drop((writer, reader, remote));
    assert_drained(&broker);
}

#[tokio::test]
async fn dropping_a_used_writer_without_close_is_an_abort_not_an_end() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    writer.write(&b"some"[..]).await.unwrap();
    drop(writer);
    let (items, outcome) = drain(&mut reader).await;
    assert_eq!(bytes_of(&items), b"some");
    assert_eq!(outcome, Err(ChannelError::Aborted("writer dropped without close".into())));
}

#[tokio::test]
async fn a_failure_cause_names_why_the_writer_died() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    let cause = FailureCause::new();
    writer.set_failure_cause(cause.clone());
    writer.write(&b"some"[..]).await.unwrap();
    cause.set("function `x` trapped: unreachable");
    drop(writer);
    assert_eq!(
        drain(&mut reader).await.1,
        Err(ChannelError::Aborted("function `x` trapped: unreachable".into()))
    );
}

#[tokio::test]
async fn reader_drop_makes_the_writer_see_closed() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    writer.write(&b"first"[..]).await.unwrap();
    assert!(reader.next().await.unwrap().is_some());
    writer.write(&b"unread"[..]).await.unwrap();
    drop(reader);
    assert_eq!(broker.stats().buffered_bytes, 0, "unread data is released with the reader");
    assert_eq!(writer.write(&b"more"[..]).await.unwrap_err(), ChannelError::Closed);
    assert_eq!(writer.send_text("more").await.unwrap_err(), ChannelError::Closed);
    assert_eq!(
        writer.close().unwrap_err(),
        ChannelError::Closed,
        "a close that delivered nothing is not success"
    );
    assert_drained(&broker);
}

#[tokio::test]
async fn reader_drop_wakes_a_blocked_writer() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, .. } =
        broker.create(&ChannelOptions::buffer_bytes(MIN_BUFFER_BYTES)).unwrap();
    writer.write(&b"!"[..]).await.unwrap();
    assert_eq!(reader.next().await.unwrap(), Some(Item::Bytes(Bytes::from_static(b"!"))));
    let blocked = tokio::spawn(async move { writer.write(vec![0u8; 4 * MIN_BUFFER_BYTES]).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!blocked.is_finished(), "the writer must wait for room");
    drop(reader);
    assert_eq!(blocked.await.unwrap().unwrap_err(), ChannelError::Closed);
    assert_eq!(broker.stats().buffered_bytes, 0);
}

#[tokio::test]
async fn write_after_close_is_finished() {
    let broker = broker();
    let NewChannel { mut writer, reader: _reader, .. } = channel(&broker);
    writer.close().unwrap();
    assert_eq!(writer.write(&b"late"[..]).await.unwrap_err(), ChannelError::Finished);
    assert_eq!(writer.send_text("late").await.unwrap_err(), ChannelError::Finished);
    assert_eq!(writer.close().unwrap_err(), ChannelError::Finished);
}

#[tokio::test]
async fn buffer_is_bounded_in_bytes_and_the_writer_waits() {
    let broker = broker();
    let capacity = MIN_BUFFER_BYTES;
    let NewChannel { mut writer, mut reader, .. } =
        broker.create(&ChannelOptions::buffer_bytes(capacity)).unwrap();
    let total = 10 * capacity;
    let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
    let expected = data.clone();
    let producer = tokio::spawn(async move {
        writer.write(data).await.unwrap();
        writer.close().unwrap();
    });
    let mut got = Vec::new();
    loop {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let buffered = broker.stats().buffered_bytes;
        assert!(buffered <= capacity, "buffered {buffered} > capacity {capacity}");
        match reader.next().await.unwrap() {
            Some(Item::Bytes(b)) => {
                assert!(b.len() <= MAX_CHUNK_BYTES);
                got.extend_from_slice(&b);
            }
            Some(Item::Text(t)) => panic!("unexpected text {t}"),
            None => break,
        }
    }
    producer.await.unwrap();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn ready_says_what_fits_and_waits_for_room() {
    let broker = broker();
    let capacity = MIN_BUFFER_BYTES;
    let NewChannel { mut writer, mut reader, .. } =
        broker.create(&ChannelOptions::buffer_bytes(capacity)).unwrap();
    let empty_room = capacity - ITEM_OVERHEAD_BYTES;
    assert_eq!(writer.ready().await.unwrap(), empty_room.min(MAX_CHUNK_BYTES));
    // A write of exactly what fits is buffered whole and leaves no room.
    writer.write(vec![7u8; empty_room]).await.unwrap();
    assert_eq!(broker.stats().buffered_bytes, capacity);
    let waiting = tokio::time::timeout(Duration::from_millis(50), writer.ready()).await;
    assert!(waiting.is_err(), "a full buffer has no room: {waiting:?}");

    // Reading makes room, and what `ready` then promises is buffered without waiting.
    let (ready, read) = tokio::join!(writer.ready(), reader.read(1000));
    assert_eq!(read.unwrap(), Some(Item::Bytes(Bytes::from(vec![7u8; 1000]))));
    let room = ready.unwrap();
    assert_eq!(room, 1000 - ITEM_OVERHEAD_BYTES, "the new chunk pays its bookkeeping");
    let write = writer.write(vec![8u8; room]);
    let written = tokio::time::timeout(Duration::from_millis(50), write).await;
    assert!(matches!(written, Ok(Ok(()))), "{written:?}");
    assert_eq!(broker.stats().buffered_bytes, capacity);

    drop(reader);
    assert_eq!(writer.ready().await, Err(ChannelError::Closed));
    writer.close().unwrap_err();
    assert_eq!(writer.ready().await, Err(ChannelError::Finished));
    assert_drained(&broker);
}

#[tokio::test]
async fn tiny_items_are_charged_their_bookkeeping() {
    let broker = broker();
    let NewChannel { mut writer, reader: _reader, .. } =
        broker.create(&ChannelOptions::buffer_bytes(MIN_BUFFER_BYTES)).unwrap();
    writer.write(&b"!"[..]).await.unwrap();
    // Empty messages are not free: the buffer fills after capacity / overhead of them.
    let fits = (MIN_BUFFER_BYTES - (1 + ITEM_OVERHEAD_BYTES)) / ITEM_OVERHEAD_BYTES;
    for _ in 0..fits {
        writer.send_text("").await.unwrap();
    }
    let blocked = tokio::time::timeout(Duration::from_millis(50), writer.send_text("")).await;
    assert!(blocked.is_err(), "a full buffer must make the writer wait");
    assert!(broker.stats().buffered_bytes <= MIN_BUFFER_BYTES);
}

#[tokio::test]
async fn read_caps_the_chunk_size() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    writer.write(&b"abcdefghij"[..]).await.unwrap();
    writer.close().unwrap();
    let mut chunks = Vec::new();
    while let Some(item) = reader.read(3).await.unwrap() {
        match item {
            Item::Bytes(b) => chunks.push(b.to_vec()),
            Item::Text(_) => unreachable!(),
        }
    }
    assert_eq!(chunks, vec![b"abc".to_vec(), b"def".to_vec(), b"ghi".to_vec(), b"j".to_vec()]);
    assert_eq!(reader.read(0).await.unwrap_err().kind(), "invalid-argument");
}

/// Write `pieces` (bytes, or text when the piece starts with `#`) and close.
async fn write_pieces(writer: &mut rill_broker::Writer, pieces: &[&str]) {
    for piece in pieces {
        match piece.strip_prefix('#') {
            Some(text) => writer.send_text(text).await.unwrap(),
            None => writer.write(piece.as_bytes().to_vec()).await.unwrap(),
        }
    }
    writer.close().unwrap();
}

/// Every item until the end, read with `read(max)`, written as `write_pieces` takes them.
async fn read_pieces(reader: &mut rill_broker::Reader, max: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    while let Some(item) = reader.read(max).await.unwrap() {
        pieces.push(match item {
            Item::Bytes(b) => {
                assert!(b.len() <= max, "read({max}) returned {} bytes", b.len());
                String::from_utf8(b.to_vec()).unwrap()
            }
            Item::Text(t) => format!("#{t}"),
        });
    }
    pieces
}

#[tokio::test]
async fn a_reader_asking_for_more_gets_adjacent_chunks_joined() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    write_pieces(&mut writer, &["ab", "cd", "ef"]).await;
    assert_eq!(read_pieces(&mut reader, 100).await, ["abcdef"]);
    drop((writer, reader));
    assert_drained(&broker);
}

#[tokio::test]
async fn a_joined_read_never_returns_more_than_asked() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    write_pieces(&mut writer, &["ab", "cd", "ef", "g"]).await;
    // The join takes whole chunks while they fit and a prefix of the next.
    assert_eq!(read_pieces(&mut reader, 3).await, ["abc", "def", "g"]);
}

#[tokio::test]
async fn text_between_byte_chunks_stops_the_join() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    write_pieces(&mut writer, &["ab", "cd", "#t1", "ef", "#t2", "#t3", "gh", "ij"]).await;
    assert_eq!(read_pieces(&mut reader, 100).await, ["abcd", "#t1", "ef", "#t2", "#t3", "ghij"]);
}

#[tokio::test]
async fn an_abort_reaches_the_reader_after_the_joined_data() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    writer.write(&b"par"[..]).await.unwrap();
    writer.write(&b"tial"[..]).await.unwrap();
    writer.abort("disk on fire");
    assert_eq!(reader.read(100).await, Ok(Some(Item::Bytes(Bytes::from_static(b"partial")))));
    assert_eq!(reader.read(100).await, Err(ChannelError::Aborted("disk on fire".into())));
}

#[tokio::test]
async fn a_joined_read_gives_back_exactly_what_its_pieces_were_charged() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    for piece in [&b"aaaa"[..], b"bbbb", b"cccc"] {
        writer.write(piece).await.unwrap();
    }
    // Small writes are joined as they are buffered: one item's bookkeeping for the three.
    assert_eq!(broker.stats().buffered_bytes, ITEM_OVERHEAD_BYTES + 3 * 4);
    // A prefix gives back only its bytes, and the rest keeps the item's charge.
    assert_eq!(reader.read(10).await, Ok(Some(Item::Bytes(Bytes::from_static(b"aaaabbbbcc")))));
    assert_eq!(broker.stats().buffered_bytes, ITEM_OVERHEAD_BYTES + 2);
    assert_eq!(reader.read(10).await, Ok(Some(Item::Bytes(Bytes::from_static(b"cc")))));
    assert_eq!(broker.stats().buffered_bytes, 0);
}

#[tokio::test]
async fn joined_reads_obey_the_chunk_size() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    let piece = SMALL_CHUNK_BYTES - 1;
    let pieces: Vec<Vec<u8>> = (0..5u8).map(|byte| vec![byte; piece]).collect();
    for piece in &pieces {
        writer.write(piece.clone()).await.unwrap();
    }
    let Some(Item::Bytes(joined)) = reader.read(MAX_CHUNK_BYTES).await.unwrap() else { panic!("bytes") };
    assert_eq!(joined.len(), MAX_CHUNK_BYTES, "small chunks joined into one of the largest size");
    assert_eq!(joined[..], pieces.concat()[..MAX_CHUNK_BYTES]);
}

#[tokio::test]
async fn joined_reads_violating_the_chunk_size_are_capped() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    let piece = SMALL_CHUNK_BYTES - 1;
    for byte in 0..5u8 {
        writer.write(vec![byte; piece]).await.unwrap();
    }
    writer.close().unwrap();
    // Asking for more than the chunk size gets the chunk size.
    let mut lens = Vec::new();
    while let Some(Item::Bytes(b)) = reader.read(4 * MAX_CHUNK_BYTES).await.unwrap() {
        lens.push(b.len());
    }
    assert_eq!(lens, [MAX_CHUNK_BYTES, 5 * piece - MAX_CHUNK_BYTES]);
    assert_eq!(
        reader.read(0).await,
        Err(ChannelError::InvalidArgument("a read must allow at least 1 byte".into()))
    );
}

#[tokio::test]
async fn chunks_that_are_not_small_are_handed_out_as_they_were_queued() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    let large = Bytes::from(vec![1u8; SMALL_CHUNK_BYTES]);
    writer.write(vec![0u8; 10]).await.unwrap();
    writer.write(large.clone()).await.unwrap();
    writer.write(vec![2u8; 10]).await.unwrap();
    writer.write(vec![3u8; 10]).await.unwrap();
    writer.close().unwrap();
    // A small chunk does not take a large one along, and the large one is not copied.
    assert_eq!(reader.read(MAX_CHUNK_BYTES).await, Ok(Some(Item::Bytes(vec![0u8; 10].into()))));
    let Some(Item::Bytes(got)) = reader.read(MAX_CHUNK_BYTES).await.unwrap() else { panic!("bytes") };
    assert_eq!((got.as_ptr(), got.len()), (large.as_ptr(), large.len()), "the very chunk that was written");
    let small: Vec<u8> = [[2u8; 10], [3u8; 10]].concat();
    assert_eq!(reader.read(MAX_CHUNK_BYTES).await, Ok(Some(Item::Bytes(small.into()))));
    assert_eq!(reader.read(MAX_CHUNK_BYTES).await, Ok(None));
}

#[tokio::test]
async fn text_size_obeyed() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    writer.send_text("x".repeat(MAX_TEXT_BYTES)).await.unwrap();
    writer.close().unwrap();
    assert_eq!(reader.next().await.unwrap(), Some(Item::Text("x".repeat(MAX_TEXT_BYTES))));
}

#[tokio::test]
async fn text_size_violated() {
    let broker = broker();
    let NewChannel { mut writer, .. } = channel(&broker);
    let err = writer.send_text("x".repeat(MAX_TEXT_BYTES + 1)).await.unwrap_err();
    assert_eq!(err, ChannelError::LimitExceeded { limit: "text message bytes", max: MAX_TEXT_BYTES as u64 });
}

#[tokio::test]
async fn max_channels_obeyed() {
    let broker = Broker::new(BrokerConfig::default().max_channels(3));
    let channels: Vec<_> = (0..3).map(|_| channel(&broker)).collect();
    assert_eq!(broker.stats().live_channels, 3);
    drop(channels);
}

#[tokio::test]
async fn max_channels_violated() {
    let broker = Broker::new(BrokerConfig::default().max_channels(3));
    let _channels: Vec<_> = (0..3).map(|_| channel(&broker)).collect();
    let err = broker.create(&ChannelOptions::default()).unwrap_err();
    assert_eq!(err, ChannelError::LimitExceeded { limit: "live channels in this host", max: 3 });
}

#[tokio::test]
async fn finished_channels_are_freed_at_once() {
    let broker = broker();
    for _ in 0..100 {
        let NewChannel { mut writer, mut reader, .. } = channel(&broker);
        writer.write(vec![1u8; 1000]).await.unwrap();
        writer.close().unwrap();
        drain(&mut reader).await.1.unwrap();
    }
    assert_drained(&broker);
}

#[tokio::test(start_paused = true)]
async fn an_unattached_reader_expires_the_channel() {
    let timeout = Duration::from_secs(60);
    let broker = Broker::new(BrokerConfig::default().attach_timeout(timeout));
    let ch = broker.create(&ChannelOptions::buffer_bytes(MIN_BUFFER_BYTES)).unwrap();
    let reader_ref = ch.reader_ref.clone();
    let mut writer = ch.writer;
    // Fill the buffer; the writer then waits for a reader that never comes.
    let started = tokio::time::Instant::now();
    let err = writer.write(vec![0u8; 2 * MIN_BUFFER_BYTES]).await.unwrap_err();
    assert_eq!(err, ChannelError::TimedOut);
    let waited = started.elapsed();
    assert!(waited >= timeout && waited <= timeout + Duration::from_secs(16), "waited {waited:?}");
    assert_eq!(broker.open_reader(&reader_ref).unwrap_err(), ChannelError::NotFound, "refs become not-found");
    assert_eq!(writer.write(&b"x"[..]).await.unwrap_err(), ChannelError::TimedOut);
    assert_drained(&broker);
}

#[tokio::test(start_paused = true)]
async fn an_unattached_writer_expires_the_channel() {
    let broker = Broker::new(BrokerConfig::default().attach_timeout(Duration::from_secs(10)));
    let ch = channel(&broker);
    let mut reader = ch.reader;
    assert_eq!(reader.next().await.unwrap_err(), ChannelError::TimedOut);
    assert_eq!(broker.open_writer(&ch.writer_ref).unwrap_err(), ChannelError::NotFound);
    assert_drained(&broker);
}

#[tokio::test(start_paused = true)]
async fn a_channel_nobody_opens_is_swept() {
    let broker = Broker::new(BrokerConfig::default().attach_timeout(Duration::from_secs(10)));
    let ch = channel(&broker);
    drop((ch.writer, ch.reader));
    assert_eq!(broker.stats().live_channels, 1);
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert_eq!(broker.stats().live_channels, 1, "not before the deadline");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_drained(&broker);
    assert_eq!(broker.open_writer(&ch.writer_ref).unwrap_err(), ChannelError::NotFound);
}

#[tokio::test(start_paused = true)]
async fn attached_channels_do_not_expire() {
    let broker = Broker::new(BrokerConfig::default().attach_timeout(Duration::from_secs(10)));
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    writer.write(&b"a"[..]).await.unwrap();
    reader.next().await.unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    writer.write(&b"b"[..]).await.unwrap();
    writer.close().unwrap();
    assert_eq!(bytes_of(&drain(&mut reader).await.0), b"b");
}

#[tokio::test]
async fn async_read_and_write_adapters() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, .. } =
        broker.create(&ChannelOptions::buffer_bytes(MIN_BUFFER_BYTES)).unwrap();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    let expected = data.clone();
    let producer = tokio::spawn(async move {
        writer.write_all(&data[..500_000]).await.unwrap();
        writer.send_text("halfway").await.unwrap();
        writer.write_all(&data[500_000..]).await.unwrap();
        writer.shutdown().await.unwrap();
    });
    let mut got = Vec::new();
    reader.read_to_end(&mut got).await.unwrap();
    producer.await.unwrap();
    assert_eq!(got, expected);
    assert_eq!(reader.take_texts(), vec!["halfway".to_string()]);
}

#[tokio::test]
async fn set_aside_text_violated() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    let producer = tokio::spawn(async move {
        loop {
            if writer.send_text("x".repeat(MAX_TEXT_BYTES)).await.is_err() {
                return;
            }
        }
    });
    let mut sink = Vec::new();
    let err = reader.read_to_end(&mut sink).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory);
    let kept = reader.take_texts();
    assert_eq!(
        kept.len(),
        rill_broker::ends::MAX_SET_ASIDE_TEXT_BYTES / MAX_TEXT_BYTES + 1,
        "nothing read was lost"
    );
    drop(reader);
    producer.await.unwrap();
}

#[tokio::test]
async fn async_read_reports_an_abort_as_an_error() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    writer.write(&b"abc"[..]).await.unwrap();
    writer.abort("boom");
    let mut got = Vec::new();
    let err = reader.read_to_end(&mut got).await.unwrap_err();
    assert_eq!(got, b"abc");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted);
    let inner = err.into_inner().unwrap().downcast::<ChannelError>().unwrap();
    assert_eq!(*inner, ChannelError::Aborted("boom".into()));
}

#[tokio::test]
async fn reserved_bytes_obeyed() {
    let broker = Broker::new(BrokerConfig::default().max_reserved_bytes(2 * MIN_BUFFER_BYTES));
    let a = broker.create(&ChannelOptions::buffer_bytes(MIN_BUFFER_BYTES)).unwrap();
    let b = broker.create(&ChannelOptions::buffer_bytes(MIN_BUFFER_BYTES)).unwrap();
    assert_eq!(broker.stats().reserved_bytes, 0, "an unused channel reserves nothing");
    let NewChannel { mut writer, mut reader, .. } = a;
    writer.write(&b"x"[..]).await.unwrap();
    let mut b_writer = b.writer;
    b_writer.write(&b"y"[..]).await.unwrap();
    assert_eq!(
        broker.stats().reserved_bytes,
        2 * MIN_BUFFER_BYTES,
        "each attached writer reserves its buffer"
    );
    // Finishing a channel gives its reservation back.
    writer.close().unwrap();
    assert_eq!(reader.next().await, Ok(Some(Item::Bytes("x".into()))));
    assert_eq!(reader.next().await, Ok(None));
    assert_eq!(broker.stats().reserved_bytes, MIN_BUFFER_BYTES);
    let mut c = broker.create(&ChannelOptions::buffer_bytes(MIN_BUFFER_BYTES)).unwrap().writer;
    c.write(&b"z"[..]).await.unwrap();
}

#[tokio::test]
async fn reserved_bytes_violated() {
    let broker = Broker::new(BrokerConfig::default().max_reserved_bytes(2 * MIN_BUFFER_BYTES));
    let a = broker.create(&ChannelOptions::buffer_bytes(MIN_BUFFER_BYTES)).unwrap();
    let NewChannel { writer: mut a_writer, reader: mut a_reader, .. } = a;
    a_writer.write(&b"x"[..]).await.unwrap();
    let big = broker.create(&ChannelOptions::buffer_bytes(MIN_BUFFER_BYTES + 1)).unwrap();
    let expected = ChannelError::LimitExceeded {
        limit: "channel buffer bytes in this host",
        max: 2 * MIN_BUFFER_BYTES as u64,
    };
    // Through the lazy local writer's first operation, and through the writer ref.
    let mut lazy = big.writer;
    assert_eq!(lazy.write(&b"y"[..]).await, Err(expected.clone()));
    assert_eq!(broker.open_writer(&big.writer_ref).unwrap_err(), expected);
    assert_eq!(broker.stats().reserved_bytes, MIN_BUFFER_BYTES, "a refused attach reserves nothing");
    // The end stays unattached: once the first channel is freed, it attaches.
    a_writer.close().unwrap();
    assert_eq!(a_reader.next().await, Ok(Some(Item::Bytes("x".into()))));
    assert_eq!(a_reader.next().await, Ok(None));
    lazy.write(&b"y"[..]).await.unwrap();
    lazy.close().unwrap();
    let mut reader = big.reader;
    assert_eq!(reader.next().await, Ok(Some(Item::Bytes("y".into()))));
    assert_eq!(reader.next().await, Ok(None));
    assert_eq!(broker.stats().reserved_bytes, 0);
}

#[tokio::test]
async fn budget_bytes_are_reserved_when_the_writer_attaches() {
    let broker = broker();
    let budget = rill_broker::Budget::new(usize::MAX, MIN_BUFFER_BYTES);
    let a = broker.create_within(&ChannelOptions::buffer_bytes(MIN_BUFFER_BYTES), Some(&budget)).unwrap();
    // Abandoned unused channels cost no bytes: many fit in a one-buffer budget.
    let abandoned: Vec<_> = (0..100)
        .map(|_| {
            broker.create_within(&ChannelOptions::buffer_bytes(MIN_BUFFER_BYTES), Some(&budget)).unwrap()
        })
        .collect();
    assert_eq!((budget.channels(), budget.reserved_bytes()), (101, 0));
    let mut writer = a.writer;
    writer.write(&b"x"[..]).await.unwrap();
    assert_eq!(budget.reserved_bytes(), MIN_BUFFER_BYTES);
    assert_eq!(
        broker.open_writer(&abandoned[0].writer_ref).unwrap_err(),
        ChannelError::LimitExceeded {
            limit: "channel buffer bytes per call tree",
            max: MIN_BUFFER_BYTES as u64
        }
    );
    drop(abandoned);
    writer.close().unwrap();
    let mut reader = broker.open_reader(&a.reader_ref).unwrap();
    assert_eq!(reader.next().await, Ok(Some(Item::Bytes("x".into()))));
    assert_eq!(reader.next().await, Ok(None));
    assert_eq!(budget.reserved_bytes(), 0, "freeing the channel gave its bytes back");
}

#[tokio::test]
async fn a_failed_creator_finishes_the_ends_nobody_attached() {
    let broker = broker();
    let budget = rill_broker::Budget::new(10, usize::MAX);
    // Neither end attached: freed at once, refs not found.
    let unused = broker.create_within(&ChannelOptions::default(), Some(&budget)).unwrap();
    unused.owner.fail_unattached("the creator trapped");
    assert_eq!(broker.stats().live_channels, 0);
    assert_eq!(budget.channels(), 0);
    assert_eq!(broker.open_reader(&unused.reader_ref).unwrap_err(), ChannelError::NotFound);
    assert_eq!(broker.open_writer(&unused.writer_ref).unwrap_err(), ChannelError::NotFound);

    // The reader attached elsewhere: it learns at once, with the reason.
    let handed = broker.create_within(&ChannelOptions::default(), Some(&budget)).unwrap();
    let mut reader = broker.open_reader(&handed.reader_ref).unwrap();
    let waiting = tokio::spawn(async move { (reader.next().await, reader.next().await) });
    tokio::task::yield_now().await;
    handed.owner.fail_unattached("the creator trapped");
    let (first, again) = waiting.await.unwrap();
    assert_eq!(first, Err(ChannelError::Aborted("the creator trapped".into())));
    assert_eq!(again, first, "repeated reads repeat the outcome");
    assert_eq!(broker.open_writer(&handed.writer_ref).unwrap_err(), ChannelError::NotFound, "freed");

    // The writer attached elsewhere: its next write fails with closed.
    let writing = broker.create_within(&ChannelOptions::default(), Some(&budget)).unwrap();
    let mut writer = broker.open_writer(&writing.writer_ref).unwrap();
    writer.write(&b"abc"[..]).await.unwrap();
    writing.owner.fail_unattached("the creator trapped");
    assert_eq!(writer.write(&b"d"[..]).await, Err(ChannelError::Closed));
    assert_eq!(broker.open_reader(&writing.reader_ref).unwrap_err(), ChannelError::AlreadyAttached);
    drop(writer);
    assert_eq!(broker.stats().live_channels, 0);
    assert_eq!((budget.channels(), budget.reserved_bytes()), (0, 0));

    // Attached ends are left alone.
    let used = broker.create_within(&ChannelOptions::default(), Some(&budget)).unwrap();
    let NewChannel { mut writer, mut reader, owner, .. } = used;
    writer.write(&b"abc"[..]).await.unwrap();
    assert_eq!(reader.next().await, Ok(Some(Item::Bytes("abc".into()))));
    owner.fail_unattached("late");
    writer.close().unwrap();
    assert_eq!(reader.next().await, Ok(None));
    assert_eq!(broker.stats().live_channels, 0);
}

#[tokio::test]
async fn budget_channels_obeyed_and_violated() {
    let broker = broker();
    let budget = rill_broker::Budget::new(2, usize::MAX);
    let a = broker.create_within(&ChannelOptions::default(), Some(&budget)).unwrap();
    let _b = broker.create_within(&ChannelOptions::default(), Some(&budget)).unwrap();
    let err = broker.create_within(&ChannelOptions::default(), Some(&budget)).unwrap_err();
    assert_eq!(err, ChannelError::LimitExceeded { limit: "live channels per call tree", max: 2 });
    // Outside the budget, creating still works; inside, only after a channel is freed.
    broker.create(&ChannelOptions::default()).unwrap();
    let NewChannel { mut writer, mut reader, .. } = a;
    writer.close().unwrap();
    assert_eq!(reader.next().await, Ok(None));
    assert_eq!(budget.channels(), 1);
    broker.create_within(&ChannelOptions::default(), Some(&budget)).unwrap();
}

#[tokio::test(start_paused = true)]
async fn expiry_gives_back_the_reservation() {
    let broker = Broker::new(BrokerConfig::default().attach_timeout(Duration::from_secs(1)));
    let budget = rill_broker::Budget::new(10, usize::MAX);
    let ch = broker.create_within(&ChannelOptions::default(), Some(&budget)).unwrap();
    drop(ch);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!((budget.channels(), budget.reserved_bytes()), (0, 0));
    assert_eq!(broker.stats().reserved_bytes, 0);
}

#[tokio::test]
async fn a_dropped_writer_aborts_at_once_with_the_reason_known_when_the_reader_gets_there() {
    let broker = broker();
    // Recorded after the drop, before the reader reaches the abort: that reason.
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    let cause = FailureCause::new();
    writer.set_failure_cause(cause.clone());
    writer.write(&b"0123456789"[..]).await.unwrap();
    drop(writer);
    cause.set("the function failed: gave up");
    assert_eq!(reader.next().await, Ok(Some(Item::Bytes("0123456789".into()))));
    assert_eq!(reader.next().await, Err(ChannelError::Aborted("the function failed: gave up".into())));

    // A reader already waiting learns at once, with the reason known then; it stays.
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    let cause = FailureCause::new();
    writer.set_failure_cause(cause.clone());
    writer.write(&b"x"[..]).await.unwrap();
    assert_eq!(reader.next().await, Ok(Some(Item::Bytes("x".into()))));
    let waiting = tokio::spawn(async move {
        let first = reader.next().await;
        (first, reader.next().await)
    });
    tokio::task::yield_now().await;
    drop(writer);
    let (first, again) = tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap();
    assert_eq!(first, Err(ChannelError::Aborted("writer dropped without close".into())));
    assert_eq!(again, first);
    assert_eq!(broker.stats().live_channels, 0);
}

#[tokio::test]
async fn each_end_can_tell_what_the_other_did() {
    use rill_broker::{ReaderStatus, WriterStatus};
    let broker = broker();
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    assert_eq!(
        (writer.reader_status(), reader.writer_status()),
        (ReaderStatus::Unattached, WriterStatus::Unattached)
    );
    writer.write(&b"ab"[..]).await.unwrap();
    assert_eq!(reader.writer_status(), WriterStatus::Writing);
    assert_eq!(reader.next().await, Ok(Some(Item::Bytes("ab".into()))));
    assert_eq!(writer.reader_status(), ReaderStatus::Reading);
    writer.close().unwrap();
    assert_eq!(reader.writer_status(), WriterStatus::Closed);
    assert_eq!(reader.next().await, Ok(None));
    assert_eq!(writer.reader_status(), ReaderStatus::Finished);

    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    writer.write(&b"ab"[..]).await.unwrap();
    assert_eq!(reader.next().await, Ok(Some(Item::Bytes("ab".into()))));
    drop(reader);
    assert_eq!(writer.reader_status(), ReaderStatus::Dropped);
    drop(writer);

    let NewChannel { mut writer, reader, .. } = channel(&broker);
    writer.abort("no");
    assert_eq!(reader.writer_status(), WriterStatus::Aborted);
}

#[tokio::test]
async fn small_writes_are_joined_as_they_are_buffered() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    let handle = writer.try_writer().unwrap();
    let pieces: Vec<Vec<u8>> = (0..16u8).map(|byte| vec![byte; 4 << 10]).collect();
    for piece in &pieces {
        assert_eq!(handle.try_write(piece), Ok(piece.len()));
    }
    // Sixteen writes, one item: its bookkeeping is charged once.
    assert_eq!(broker.stats().buffered_bytes, ITEM_OVERHEAD_BYTES + MAX_CHUNK_BYTES);
    writer.close().unwrap();
    let Some(Item::Bytes(joined)) = reader.read(MAX_CHUNK_BYTES).await.unwrap() else { panic!("bytes") };
    assert_eq!(joined[..], pieces.concat()[..]);
    assert_eq!(reader.read(MAX_CHUNK_BYTES).await, Ok(None));
    drop((writer, reader));
    assert_drained(&broker);
}

#[tokio::test]
async fn a_try_write_takes_what_fits_and_never_waits() {
    let broker = broker();
    let options = ChannelOptions::buffer_bytes(MIN_BUFFER_BYTES);
    let NewChannel { mut writer, mut reader, .. } = broker.create(&options).unwrap();
    let handle = writer.try_writer().unwrap();
    let room = MIN_BUFFER_BYTES - ITEM_OVERHEAD_BYTES;
    assert_eq!(handle.try_write(&vec![7u8; 2 * MIN_BUFFER_BYTES]), Ok(room), "a prefix, as much as fits");
    assert_eq!(handle.try_write(b"more"), Ok(0), "a full buffer takes nothing");
    assert_eq!(handle.try_write(b""), Ok(0));
    let Some(Item::Bytes(first)) = reader.read(100).await.unwrap() else { panic!("bytes") };
    assert_eq!(first.len(), 100);
    assert_eq!(handle.try_write(b"more"), Ok(4), "room again once the reader took some");
}

#[tokio::test]
async fn a_try_write_after_the_end_fails_with_the_exact_error() {
    let broker = broker();
    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    let handle = writer.try_writer().unwrap();
    assert_eq!(handle.try_write(b"a"), Ok(1));
    assert_eq!(reader.next().await, Ok(Some(Item::Bytes(Bytes::from_static(b"a")))));
    drop(reader);
    assert_eq!(handle.try_write(b"x"), Err(ChannelError::Closed), "the reader is gone");

    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    let handle = writer.try_writer().unwrap();
    assert_eq!(handle.try_write(b"abc"), Ok(3));
    writer.close().unwrap();
    assert_eq!(handle.try_write(b"x"), Err(ChannelError::Finished), "closed");
    assert_eq!(reader.next().await, Ok(Some(Item::Bytes(Bytes::from_static(b"abc")))));
    assert_eq!(reader.next().await, Ok(None));

    let NewChannel { mut writer, mut reader, .. } = channel(&broker);
    let handle = writer.try_writer().unwrap();
    drop(writer);
    assert_eq!(handle.try_write(b"x"), Err(ChannelError::Finished), "the writer was dropped");
    assert_eq!(reader.next().await, Err(ChannelError::Aborted("writer dropped without close".into())));
}
