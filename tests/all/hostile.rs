//! The hostile-guest suite: every attack ends in the exact error kind for the attacker,
//! within a bound, with host memory bounded, while a normal function running at the same
//! time returns the right result ([`with_bystander`]).
//!
//! Cases covered elsewhere: forged refs and a reader ref used as a writer
//! (`channels::a_ref_opens_only_its_own_direction`, `forged_and_unknown_refs_are_not_found`),
//! oversized payloads (`calls::payload_size_violated`), write after close
//! (`channels::write_after_close_is_finished`), a trap mid-stream
//! (`channels::writer_trap_mid_stream_is_an_error_at_the_reader`).

use std::time::{Duration, Instant};

use rill::{BrokerConfig, CallError, CallOptions, ChannelOptions, FunctionConfig, HostConfig, Item, Limits};
use rill_test_artifacts::{COMPONENTS, HOSTILE};
use rill_tests::{
    assert_no_leaks, call, component, host_with, host_with_functions, rss_bytes, warm_up, with_bystander,
};
use serde_json::{Value, json};

/// Far above anything the suite should make the test process hold: a coarse check that
/// an attack did not balloon host memory (the attacks would reach gigabytes).
const RSS_CEILING: u64 = 1 << 30;

/// How soon unattached channels expire in this suite: soon enough that flood tests can
/// check everything is released, late enough for a bystander whose consumer is still
/// being compiled on a loaded machine.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(2);

/// A host whose unattached channels expire soon, with every component compiled.
async fn hostile_host() -> rill::Host {
    let mut config = HostConfig::default();
    config.broker = BrokerConfig::default().attach_timeout(ATTACH_TIMEOUT);
    let host = host_with(config);
    warm_up(&host).await;
    host
}

fn assert_rss_bounded() {
    let rss = rss_bytes();
    assert!(rss < RSS_CEILING, "host RSS {} MiB", rss >> 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_times_out() {
    let host = hostile_host().await;
    let started = Instant::now();
    let attack = host.trigger_with(
        "hostile::loop",
        "{}".into(),
        &CallOptions::new().timeout(Duration::from_millis(300)),
    );
    let err = with_bystander(&host, attack).await.unwrap_err();
    assert!(matches!(err, CallError::TimedOut { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert_rss_bounded();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_hits_the_memory_limit() {
    let host = hostile_host().await;
    let started = Instant::now();
    let err = with_bystander(&host, host.trigger("hostile::memory_bomb", &json!({}))).await.unwrap_err();
    let CallError::MemoryLimitExceeded { max_bytes, .. } = &err else { panic!("{err:?}") };
    assert_eq!(*max_bytes, rill::limits::DEFAULT_MAX_MEMORY_BYTES);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_rss_bounded();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limit_obeyed() {
    let host = hostile_host().await;
    let result = call(&host, "test::alloc", json!({ "bytes": 32 << 20 })).await;
    assert_eq!(result["allocated"], 32 << 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limit_violated() {
    let host = hostile_host().await;
    let err = host.trigger("test::alloc", &json!({ "bytes": 80 << 20 })).await.unwrap_err();
    assert!(matches!(err, CallError::MemoryLimitExceeded { .. }), "{err}");
    assert_eq!(err.kind(), "limit-exceeded", "what a guest calling it would see");
}

/// Stream `hostile::huge_write`'s single write of `bytes` into a host-side reader.
async fn huge_write(
    host: &rill::Host,
    bytes: usize,
) -> (Result<Value, CallError>, Result<usize, rill::ChannelError>) {
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let payload = json!({ "writer": channel.writer_ref, "bytes": bytes });
    let mut reader = channel.reader;
    let read = async {
        let mut total = 0;
        loop {
            match reader.next().await {
                Ok(Some(Item::Bytes(b))) => total += b.len(),
                Ok(Some(Item::Text(_))) => {}
                Ok(None) => return Ok(total),
                Err(err) => return Err(err),
            }
        }
    };
    tokio::join!(host.trigger("hostile::huge_write", &payload), read)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostcall_bytes_obeyed() {
    let host = hostile_host().await;
    let bytes = rill::limits::DEFAULT_MAX_HOSTCALL_BYTES - 4096;
    let (written, read) = huge_write(&host, bytes).await;
    assert_eq!(written.unwrap()["written"], bytes);
    assert_eq!(read, Ok(bytes), "split into chunks by the host, delivered whole");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostcall_bytes_violated_by_a_huge_write() {
    let host = hostile_host().await;
    let (written, read) = with_bystander(&host, huge_write(&host, 8 << 20)).await;
    let err = written.unwrap_err();
    let CallError::LimitExceeded(message) = &err else { panic!("{err:?}") };
    assert!(message.starts_with("bytes passed to the host in one call"), "{message}");
    assert!(
        matches!(read, Err(rill::ChannelError::Aborted(_))),
        "the reader learns the writer failed: {read:?}"
    );
    assert_rss_bounded();
    assert_no_leaks(&host).await;
}

async fn tree_limited_host(channels: usize, bytes: usize) -> rill::Host {
    let mut config = HostConfig::default();
    config.broker = BrokerConfig::default().attach_timeout(ATTACH_TIMEOUT);
    config.limits.max_tree_channels = channels;
    config.limits.max_tree_buffer_bytes = bytes;
    let host = host_with(config);
    warm_up(&host).await;
    host
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn millions_of_channels_stop_at_the_tree_limit() {
    let host = tree_limited_host(100, usize::MAX).await;
    let result =
        with_bystander(&host, call(&host, "hostile::channel_flood", json!({ "count": 1_000_000 }))).await;
    assert_eq!(result["created"], 100, "tree channels obeyed up to the limit: {result}");
    let error = result["error"].as_str().unwrap();
    assert!(error.starts_with("limit-exceeded") && error.contains("live channels per call tree"), "{error}");
    assert_rss_bounded();
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_buffer_bytes_obeyed_and_violated() {
    let host = tree_limited_host(usize::MAX, 10 * rill::broker::DEFAULT_BUFFER_BYTES).await;
    // A buffer is reserved when its writer attaches: ten channels in use fit, the
    // eleventh writer is refused.
    let result = call(&host, "hostile::channel_flood", json!({ "count": 1000, "write": true })).await;
    assert_eq!(result["created"], 10, "{result}");
    assert_eq!(
        result["error"],
        format!(
            "limit-exceeded: channel limit exceeded: limit exceeded: channel buffer bytes per call tree is at most {}",
            10 * rill::broker::DEFAULT_BUFFER_BYTES
        ),
        "{result}"
    );
    // Channels created and dropped unused reserve nothing, so they are bounded by the
    // channel count alone.
    let result = call(&host, "hostile::channel_flood", json!({ "count": 1000 })).await;
    assert_eq!(result["created"], 1000, "{result}");
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_obeyed() {
    let host = hostile_host().await;
    // Two handles per channel: 400 channels hold 800 of the 1000 allowed.
    let result = call(&host, "hostile::handle_flood", json!({ "count": 400 })).await;
    assert_eq!(result["created"], 400);
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_violated_by_a_handle_flood() {
    let host = hostile_host().await;
    let err = with_bystander(&host, host.trigger("hostile::handle_flood", &json!({ "count": 100_000 })))
        .await
        .unwrap_err();
    let CallError::LimitExceeded(message) = &err else { panic!("{err:?}") };
    assert!(message.starts_with("resource handles"), "{message}");
    assert_rss_bounded();
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessed_refs_never_open_anything() {
    let host = hostile_host().await;
    // A few live channels to aim at.
    let _channels: Vec<_> =
        (0..10).map(|_| host.create_channel(&ChannelOptions::default()).unwrap()).collect();
    let result =
        with_bystander(&host, call(&host, "hostile::guess_refs", json!({ "count": 20_000, "seed": 7 })))
            .await;
    let outcomes = result["outcomes"].as_object().unwrap();
    assert_eq!(outcomes.len(), 1, "{result}");
    let (kind, count) = outcomes.iter().next().unwrap();
    assert!(kind.contains("NotFound"), "{kind}");
    assert_eq!(count, 20_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_channels_refs_cannot_be_replayed() {
    let host = hostile_host().await;
    let result = call(&host, "hostile::replay", json!({})).await;
    assert_eq!(result["read"], "once");
    assert!(result["reader_again"].as_str().unwrap().contains("NotFound"), "{result}");
    assert!(result["writer_again"].as_str().unwrap().contains("NotFound"), "{result}");
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recursion_bomb_stops_at_the_call_depth() {
    let host = hostile_host().await;
    let started = Instant::now();
    let result = with_bystander(&host, call(&host, "hostile::recurse", json!({}))).await;
    assert_eq!(result["depth"], rill::limits::DEFAULT_MAX_CALL_DEPTH + 1, "{result}");
    let error = result["error"].as_str().unwrap();
    assert!(error.starts_with("limit-exceeded") && error.contains("call depth"), "{result}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_depth_obeyed() {
    let host = hostile_host().await;
    let depth = rill::limits::DEFAULT_MAX_JSON_DEPTH;
    let payload = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert_eq!(host.trigger_json("test::echo", payload.clone()).await.unwrap(), payload);
    // `depth` levels of `[…]` around an empty array: exactly the limit.
    let result = call(&host, "hostile::deep_result", json!({ "depth": depth - 1 })).await;
    assert!(result.is_array());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_depth_violated_by_a_deep_payload() {
    let host = hostile_host().await;
    let payload = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let err = host.trigger_json("test::echo", payload).await.unwrap_err();
    let CallError::LimitExceeded(message) = &err else { panic!("{err:?}") };
    assert!(message.starts_with("the payload nests 100000 levels deep"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_depth_violated_by_a_deep_result() {
    let host = hostile_host().await;
    let err = with_bystander(&host, host.trigger("hostile::deep_result", &json!({ "depth": 1000 })))
        .await
        .unwrap_err();
    let CallError::LimitExceeded(message) = &err else { panic!("{err:?}") };
    // 1000 levels of `[…]` around an empty array.
    assert!(message.starts_with("the result nests 1001 levels deep"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_size_violated() {
    let host = hostile_host().await;
    let err = host.trigger("hostile::big_result", &json!({ "bytes": 2 << 20 })).await.unwrap_err();
    let CallError::LimitExceeded(message) = &err else { panic!("{err:?}") };
    assert!(message.starts_with("the result is"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_size_obeyed() {
    let host = hostile_host().await;
    let result = call(&host, "hostile::big_result", json!({ "bytes": 1000 })).await;
    assert_eq!(result.as_str().unwrap().len(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdout_flood_is_cut_not_fatal() {
    let host = hostile_host().await;
    let started = Instant::now();
    let bytes = 32 << 20;
    let result = with_bystander(&host, call(&host, "hostile::stdout_flood", json!({ "bytes": bytes }))).await;
    assert!(result["printed"].as_u64().unwrap() >= bytes as u64);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_rss_bounded();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_never_reads_blocks_the_writer_in_bounded_memory_until_it_times_out() {
    let host = hostile_host().await;
    let buffer = rill::broker::MIN_BUFFER_BYTES;
    let channel = host.create_channel(&ChannelOptions::buffer_bytes(buffer)).unwrap();
    let reader = host.trigger_with(
        "hostile::never_read",
        json!({ "reader": channel.reader_ref }).to_string(),
        &CallOptions::new().timeout(Duration::from_secs(2)),
    );
    let writer = host.trigger_with(
        "test::write_until_error",
        json!({ "writer": channel.writer_ref, "chunk": 4096 }).to_string(),
        &CallOptions::new().timeout(Duration::from_millis(600)),
    );
    let broker = host.broker().clone();
    let watch = async {
        let mut peak = 0;
        for _ in 0..50 {
            peak = peak.max(broker.stats().buffered_bytes);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        peak
    };
    // The broker's figures are host-wide, so the call served meanwhile streams nothing.
    let served = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        call(&host, "test::echo", json!("still serving")).await
    };
    let started = Instant::now();
    let (reader, writer, peak, served) = tokio::join!(reader, writer, watch, served);
    assert_eq!(served, json!("still serving"));
    assert_eq!(writer.unwrap_err().kind(), "timed-out", "the blocked writer times out");
    assert_eq!(reader.unwrap_err().kind(), "timed-out");
    assert!(peak > 0 && peak <= buffer, "buffered {peak} bytes, buffer {buffer}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuel_obeyed_and_violated() {
    let mut generous = Limits::default();
    generous.fuel = Some(u64::MAX / 2);
    let mut scarce = Limits::default();
    scarce.fuel = Some(1_000_000);
    let host = host_with_functions(
        HostConfig::default(),
        &[
            ("test::spin", FunctionConfig::new(component(&COMPONENTS)).limits(generous)),
            ("hostile::loop", FunctionConfig::new(component(&HOSTILE)).limits(scarce)),
        ],
    );
    let spun = host.trigger_with(
        "test::spin",
        json!({ "ms": 20 }).to_string(),
        &CallOptions::new().timeout(Duration::from_secs(10)),
    );
    assert!(spun.await.is_ok(), "a metered guest within its fuel finishes");
    let err = with_bystander(&host, host.trigger("hostile::loop", &json!({}))).await.unwrap_err();
    assert_eq!(err, CallError::OutOfFuel { function_id: "hostile::loop".into(), fuel: 1_000_000 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_calls_obeyed() {
    let host = hostile_host().await;
    // The root is one of the tree's calls; the rest may run alongside it.
    let fan = rill::limits::DEFAULT_MAX_TREE_CALLS - 1;
    let result = call(&host, "hostile::fan_out", json!({ "count": fan, "ms": 100 })).await;
    assert_eq!(result["started"], fan, "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_calls_violated_by_a_fan_out_bomb() {
    let host = hostile_host().await;
    let result =
        with_bystander(&host, call(&host, "hostile::fan_out", json!({ "count": 100_000, "ms": 300 }))).await;
    assert_eq!(result["started"], rill::limits::DEFAULT_MAX_TREE_CALLS - 1, "{result}");
    let error = result["error"].as_str().unwrap();
    assert!(error.starts_with("limit-exceeded") && error.contains("calls running at once"), "{error}");
    assert_rss_bounded();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spinning_guests_share_threads_and_stop_at_their_deadlines() {
    let host = hostile_host().await;
    let started = Instant::now();
    let deadline = Duration::from_millis(500);
    let spinners: Vec<_> = (0..6)
        .map(|_| host.trigger_with("hostile::loop", "{}".into(), &CallOptions::new().timeout(deadline)))
        .map(tokio::spawn)
        .collect();
    // More spinners than threads, yet the host's timers still fire on time...
    let sleep_started = Instant::now();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let slept = sleep_started.elapsed();
    // ...and an unrelated call is served meanwhile.
    let echo_started = Instant::now();
    assert_eq!(call(&host, "test::echo", json!("hi")).await, json!("hi"));
    let echo_took = echo_started.elapsed();
    for spinner in spinners {
        assert_eq!(spinner.await.unwrap().unwrap_err().kind(), "timed-out");
    }
    let all_took = started.elapsed();
    assert!(
        echo_took < Duration::from_millis(400),
        "a spinning guest stalled another call for {echo_took:?}"
    );
    assert!(all_took < deadline + Duration::from_millis(1500), "deadlines held: {all_took:?}");
    assert!(slept < Duration::from_millis(350), "spinning guests starved a 100 ms timer: {slept:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_error_is_the_abort_reason_of_its_unclosed_writers() {
    let host = hostile_host().await;
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let payload = json!({ "writer": channel.writer_ref, "bytes": 1000 });
    let err = host.trigger("hostile::write_then_fail", &payload).await.unwrap_err();
    assert_eq!(err.kind(), "failed");
    let mut reader = channel.reader;
    let mut bytes = 0;
    let outcome = loop {
        match reader.next().await {
            Ok(Some(Item::Bytes(b))) => bytes += b.len(),
            Ok(Some(Item::Text(_))) => {}
            Ok(None) => panic!("a failed writer is never a clean end"),
            Err(err) => break err,
        }
    };
    assert_eq!(bytes, 1000);
    let rill::ChannelError::Aborted(reason) = outcome else { panic!("{outcome:?}") };
    assert!(reason.contains("gave up half way"), "{reason}");
}
