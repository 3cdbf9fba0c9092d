//! Admission to the instance pool: a call that finds every slot in use waits (within its
//! deadline, in a bounded queue) instead of failing, and one function's calls cannot take
//! every slot (`Limits::max_concurrent_calls`), so a flood of blocked children leaves
//! room for everyone else.
//!
//! Slots are filled with `hostile::block`, which holds its instance without using the
//! CPU until its deadline; a block holds a slot once the broker counts its channel.

use std::time::{Duration, Instant};

use rill::{CallError, CallOptions, FunctionConfig, Host, HostConfig, Limits};
use rill_test_artifacts::HOSTILE;
use rill_tests::{assert_no_leaks, component, host_with_functions};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// A host with `pool_slots` instance slots, at most `max_waiting` calls waiting for one,
/// and some functions configured specially; the functions these tests use are compiled.
async fn gated_host(pool_slots: Option<u32>, max_waiting: usize, special: &[(&str, FunctionConfig)]) -> Host {
    let mut config = HostConfig::default();
    config.pool_slots = pool_slots;
    config.max_waiting_calls = max_waiting;
    let host = host_with_functions(config, special);
    for id in ["hostile::block", "hostile::fan_out", "hostile::recurse", "test::echo", "test::call"] {
        host.prepare(id).await.unwrap();
    }
    host
}

/// `hostile::block` registered with at most `max` calls at once.
fn block_limited_to(max: usize) -> (&'static str, FunctionConfig) {
    let mut limits = Limits::default();
    limits.max_concurrent_calls = max;
    ("hostile::block", FunctionConfig::new(component(&HOSTILE)).limits(limits))
}

/// Start `count` calls of `hostile::block` from the embedding API, each ending at
/// `timeout`.
fn start_blocks(host: &Host, count: usize, timeout: Duration) -> Vec<JoinHandle<Result<String, CallError>>> {
    (0..count)
        .map(|_| {
            tokio::spawn(host.trigger_with(
                "hostile::block",
                "{}".into(),
                &CallOptions::new().timeout(timeout),
            ))
        })
        .collect()
}

/// Wait (at most 10 s) until `count` blocks hold their slots.
async fn until_blocking(host: &Host, count: usize) {
    let give_up = Instant::now() + Duration::from_secs(10);
    while host.broker().stats().live_channels != count {
        assert!(Instant::now() < give_up, "{:?} channels, not {count}", host.broker().stats());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every block ended at its deadline, as `timed-out`.
async fn assert_blocks_timed_out(blocks: Vec<JoinHandle<Result<String, CallError>>>) {
    for block in blocks {
        let err = block.await.unwrap().unwrap_err();
        assert!(
            matches!(&err, CallError::TimedOut { function_id, .. } if function_id == "hostile::block"),
            "{err:?}"
        );
    }
}

fn timed_out(function: &str) -> impl Fn(&CallError) -> bool + '_ {
    move |err| matches!(err, CallError::TimedOut { function_id, .. } if function_id == function)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_wait_obeyed() {
    let host = gated_host(Some(2), 8, &[]).await;
    let hold = Duration::from_millis(800);
    let blocks = start_blocks(&host, 2, hold);
    until_blocking(&host, 2).await;
    // The pool is full: the call waits for a slot instead of failing as unavailable.
    let started = Instant::now();
    assert_eq!(host.trigger("test::echo", &json!("waited")).await.unwrap(), json!("waited"));
    assert!(started.elapsed() >= Duration::from_millis(200), "it ran before a slot was free");
    assert_blocks_timed_out(blocks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_wait_violated() {
    let host = gated_host(Some(2), 8, &[]).await;
    let blocks = start_blocks(&host, 2, Duration::from_secs(3));
    until_blocking(&host, 2).await;
    // Waiting counts against the call's own deadline, far before a slot frees up.
    let started = Instant::now();
    let err = host
        .trigger_with("test::echo", "1".into(), &CallOptions::new().timeout(Duration::from_millis(300)))
        .await;
    let err = err.unwrap_err();
    assert!(timed_out("test::echo")(&err), "{err:?}");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300) && took < Duration::from_millis(1500), "{took:?}");
    assert_blocks_timed_out(blocks).await;
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_calls_obeyed() {
    let host = gated_host(Some(1), 2, &[]).await;
    let blocks = start_blocks(&host, 1, Duration::from_millis(500));
    until_blocking(&host, 1).await;
    // As many waiters as the queue holds: each gets a slot in turn.
    let waiters: Vec<_> = (0..2).map(|n| tokio::spawn(host.trigger("test::echo", &json!(n)))).collect();
    for (n, waiter) in waiters.into_iter().enumerate() {
        assert_eq!(waiter.await.unwrap().unwrap(), json!(n));
    }
    assert_blocks_timed_out(blocks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_calls_violated() {
    let host = gated_host(Some(1), 2, &[]).await;
    let blocks = start_blocks(&host, 1, Duration::from_secs(2));
    until_blocking(&host, 1).await;
    let waiters: Vec<_> = (0..2).map(|n| tokio::spawn(host.trigger("test::echo", &json!(n)))).collect();
    // The waiters are queued within moments (their component is compiled).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let err = host.trigger("test::echo", &json!("one too many")).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "refused at once, not after {:?}",
        started.elapsed()
    );
    let CallError::Unavailable { function_id, message } = &err else { panic!("{err:?}") };
    assert_eq!(function_id, "test::echo");
    assert_eq!(
        message,
        "the host is at capacity: all 1 instance slots are in use and 2 calls already wait for one; try again later"
    );
    // The queued calls were not hurt: they run once the slot frees up.
    for (n, waiter) in waiters.into_iter().enumerate() {
        assert_eq!(waiter.await.unwrap().unwrap(), json!(n));
    }
    assert_blocks_timed_out(blocks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_pool_there_is_no_gate() {
    // No pool and no room to wait: calls are still never refused for capacity.
    let host = gated_host(None, 0, &[]).await;
    let blocks = start_blocks(&host, 3, Duration::from_millis(300));
    until_blocking(&host, 3).await;
    assert_eq!(host.trigger("test::echo", &json!("on demand")).await.unwrap(), json!("on demand"));
    assert_blocks_timed_out(blocks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_obeyed() {
    let host = gated_host(Some(16), 8, &[block_limited_to(3)]).await;
    let blocks = start_blocks(&host, 3, Duration::from_millis(500));
    until_blocking(&host, 3).await;
    assert_blocks_timed_out(blocks).await;
    // The places come back when calls end.
    let blocks = start_blocks(&host, 3, Duration::from_millis(300));
    until_blocking(&host, 3).await;
    assert_blocks_timed_out(blocks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_violated() {
    let host = gated_host(Some(16), 8, &[block_limited_to(3)]).await;
    let blocks = start_blocks(&host, 3, Duration::from_secs(2));
    until_blocking(&host, 3).await;
    let started = Instant::now();
    let err = host.trigger("hostile::block", &json!({})).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "refused at once, not after {:?}",
        started.elapsed()
    );
    assert_eq!(
        err,
        CallError::LimitExceeded("calls of function \"hostile::block\" running at once: at most 3".into())
    );
    // Other functions are not limited by it.
    assert_eq!(host.trigger("test::echo", &json!("other")).await.unwrap(), json!("other"));
    assert_blocks_timed_out(blocks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_violated_by_recursion_fails_rather_than_deadlocks() {
    // A function calling itself past its own limit: each level waits on the next, so a
    // limit that made calls wait would wait forever (until the deadline). It fails at once.
    let mut limits = Limits::default();
    limits.max_concurrent_calls = 4;
    let recurse = ("hostile::recurse", FunctionConfig::new(component(&HOSTILE)).limits(limits));
    let host = gated_host(Some(16), 8, &[recurse]).await;
    let started = Instant::now();
    let result = host.trigger("hostile::recurse", &json!({})).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert_eq!(
        result,
        json!({
            "depth": 4,
            "error": "limit-exceeded: call limit exceeded: calls of function \"hostile::recurse\" running at once: at most 4"
        })
    );
}

/// Void children of `hostile::block` each flooding caller starts through
/// `hostile::fan_out`.
const FLOOD_CHILDREN: usize = 30;
/// The flood's deadline; its children inherit it.
const FLOOD_DEADLINE: Duration = Duration::from_secs(4);

/// Start a flood from `callers` callers at once; each returns as soon as it has started
/// what it could, and its children block until the flood's deadline.
async fn flood(host: &Host, callers: usize) -> Vec<Value> {
    let payload = json!({ "count": FLOOD_CHILDREN, "ms": 0, "function": "hostile::block" }).to_string();
    let callers: Vec<_> = (0..callers)
        .map(|_| {
            tokio::spawn(host.trigger_with(
                "hostile::fan_out",
                payload.clone(),
                &CallOptions::new().timeout(FLOOD_DEADLINE),
            ))
        })
        .collect();
    let mut results = Vec::new();
    for caller in callers {
        results.push(serde_json::from_str(&caller.await.unwrap().unwrap()).unwrap());
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_blocked_children_leaves_slots_for_other_functions() {
    // 16 slots; the flood's function may hold 8 of them, so the four callers and what
    // they start never need to wait. Without that limit the flood fills the pool (see the
    // next test).
    let host = gated_host(Some(16), 64, &[block_limited_to(8)]).await;
    let started = flood(&host, 4).await;
    let started_total: u64 = started.iter().map(|r| r["started"].as_u64().unwrap()).sum();
    assert_eq!(started_total, 8, "{started:?}");
    for result in started.iter().filter(|r| r["started"] != FLOOD_CHILDREN) {
        assert_eq!(
            result["error"],
            "limit-exceeded: call limit exceeded: calls of function \"hostile::block\" running at once: at most 8"
        );
    }
    until_blocking(&host, 8).await;

    // While the flood holds its slots, other functions are served at once: a call from
    // the embedding API, and one that starts a tree of its own.
    let served = Instant::now();
    let echo = host.trigger("test::echo", &json!({ "through": "the flood" }));
    let nested =
        host.trigger("test::call", &json!({ "function": "test::echo", "payload": 7, "mode": "spawn" }));
    let (echo, nested) = tokio::join!(echo, nested);
    let took = served.elapsed();
    assert_eq!(echo.unwrap(), json!({ "through": "the flood" }));
    assert_eq!(nested.unwrap(), json!({ "ok": 7 }));
    assert!(
        took < Duration::from_secs(1),
        "served after {took:?}, the flood's deadline is {FLOOD_DEADLINE:?}"
    );

    // The flood ends at its deadline and gives everything back.
    tokio::time::sleep(FLOOD_DEADLINE).await;
    assert_no_leaks(&host).await;
    let blocks = start_blocks(&host, 8, Duration::from_millis(200));
    until_blocking(&host, 8).await;
    assert_blocks_timed_out(blocks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_that_fills_the_pool_makes_others_wait_only_until_their_deadline() {
    // With the default per-function limit (64) one flooding caller's children take all
    // 16 slots and queue the rest; a call arriving then waits, and times out at its own
    // deadline. (One caller: a second would itself queue behind the children.)
    let host = gated_host(Some(16), 1024, &[]).await;
    assert_eq!(flood(&host, 1).await, [json!({ "started": FLOOD_CHILDREN })]);
    until_blocking(&host, 16).await;

    let waited = Instant::now();
    let err = host
        .trigger_with("test::echo", "1".into(), &CallOptions::new().timeout(Duration::from_millis(400)))
        .await;
    let err = err.unwrap_err();
    let took = waited.elapsed();
    assert!(timed_out("test::echo")(&err), "{err:?}");
    assert!(took >= Duration::from_millis(400) && took < Duration::from_millis(1500), "{took:?}");

    // Once the flood is over, the pool serves again.
    tokio::time::sleep(FLOOD_DEADLINE).await;
    assert_no_leaks(&host).await;
    assert_eq!(host.trigger("test::echo", &json!("after")).await.unwrap(), json!("after"));
}
