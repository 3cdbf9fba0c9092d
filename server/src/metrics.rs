//! `GET /metrics`: Prometheus metrics (OpenMetrics text, through `prometheus-client`).
//!
//! All names start with `rill_` and use base units (seconds, bytes). Function ids are
//! chosen by clients, so they never become label values unchecked: a call is labelled
//! with its id only if the id is one the server serves when the call is made, and only
//! the first [`MAX_FUNCTION_LABELS`] such ids get a label of their own; every other call
//! is counted under `function="other"`. A client can therefore neither break the scrape
//! (the crate escapes label values) nor grow it without end.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Most function ids with a label of their own (256); calls of any other id share
/// `function="other"`. Bounds the series a scrape can hold.
pub const MAX_FUNCTION_LABELS: usize = 256;

/// The label value of calls counted under no id of their own.
const OTHER: &str = "other";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    function: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionLabel {
    function: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabel {
    limit: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: String,
}

/// What kind of WebSocket connection a gauge counts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ConnectionKind {
    Worker,
    Channel,
    Telemetry,
}

impl ConnectionKind {
    fn label(self) -> KindLabel {
        let kind = match self {
            ConnectionKind::Worker => "worker",
            ConnectionKind::Channel => "channel",
            ConnectionKind::Telemetry => "telemetry",
        };
        KindLabel { kind: kind.to_owned() }
    }
}

pub(crate) struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    duration: Family<FunctionLabel, Histogram, fn() -> Histogram>,
    connections: Family<KindLabel, Gauge>,
    limit_hits: Family<LimitLabel, Counter>,
    channel_bytes: Family<DirectionLabel, Counter>,
    channels_live: Gauge,
    buffered_bytes: Gauge,
    traps: Counter,
    labelled: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn call_duration_histogram() -> Histogram {
    // 100 µs to ~105 s, doubling.
    Histogram::new(exponential_buckets(0.0001, 2.0, 21))
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("rill");
        let calls = Family::<CallLabels, Counter>::default();
        let duration: Family<FunctionLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(call_duration_histogram);
        let connections = Family::<KindLabel, Gauge>::default();
        let limit_hits = Family::<LimitLabel, Counter>::default();
        let channel_bytes = Family::<DirectionLabel, Counter>::default();
        let channels_live = Gauge::default();
        let buffered_bytes = Gauge::default();
        let traps = Counter::default();
        registry.register("traps", "Wasm functions that trapped in calls the server routed", traps.clone());
        registry.register("calls", "Calls routed by the server, by function and outcome", calls.clone());
        registry.register("call_duration_seconds", "How long routed calls took", duration.clone());
        registry.register("connections", "Open WebSocket connections, by kind", connections.clone());
        registry.register("limit_hits", "Requests refused by a limit, by limit", limit_hits.clone());
        registry.register(
            "channel_websocket_bytes",
            "Bytes moved through channel WebSockets (in: from writing clients; out: to reading clients)",
            channel_bytes.clone(),
        );
        registry.register("channels_live", "Channels alive in the broker", channels_live.clone());
        registry.register("channel_buffered_bytes", "Bytes buffered in all channels", buffered_bytes.clone());
        Metrics {
            registry,
            calls,
            duration,
            connections,
            limit_hits,
            channel_bytes,
            channels_live,
            buffered_bytes,
            traps,
            labelled: Mutex::new(HashSet::new()),
        }
    }

    /// The label value for calls of `function_id`, which `served` says the server serves.
    fn function_label(&self, function_id: &str, served: bool) -> String {
        if !served {
            return OTHER.to_owned();
        }
        let mut labelled = self.labelled.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if labelled.contains(function_id) {
            return function_id.to_owned();
        }
        if labelled.len() < MAX_FUNCTION_LABELS {
            labelled.insert(function_id.to_owned());
            return function_id.to_owned();
        }
        OTHER.to_owned()
    }

    /// Count one finished call. `outcome` is `ok` or an error code (from a fixed set).
    pub(crate) fn call(&self, function_id: &str, served: bool, outcome: &str, took: Duration) {
        let function = self.function_label(function_id, served);
        self.calls
            .get_or_create(&CallLabels { function: function.clone(), outcome: outcome.to_owned() })
            .inc();
        self.duration.get_or_create(&FunctionLabel { function }).observe(took.as_secs_f64());
    }

    pub(crate) fn trap(&self) {
        self.traps.inc();
    }

    pub(crate) fn limit_hit(&self, limit: &'static str) {
        self.limit_hits.get_or_create(&LimitLabel { limit: limit.to_owned() }).inc();
    }

    pub(crate) fn channel_bytes(&self, incoming: bool, bytes: usize) {
        let direction = if incoming { "in" } else { "out" };
        self.channel_bytes
            .get_or_create(&DirectionLabel { direction: direction.to_owned() })
            .inc_by(bytes as u64);
    }

    /// Count a connection open until the guard drops.
    pub(crate) fn connection(&self, kind: ConnectionKind) -> ConnectionGauge {
        let gauge = self.connections.get_or_create(&kind.label()).clone();
        gauge.inc();
        ConnectionGauge(gauge)
    }

    /// The scrape: the broker's figures as of now, then everything in OpenMetrics text.
    pub(crate) fn render(&self, broker: &rill::broker::BrokerStats) -> String {
        self.channels_live.set(i64::try_from(broker.live_channels).unwrap_or(i64::MAX));
        self.buffered_bytes.set(i64::try_from(broker.buffered_bytes).unwrap_or(i64::MAX));
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Decrements a connection gauge when dropped.
#[derive(Debug)]
pub(crate) struct ConnectionGauge(Gauge);

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The `outcome` label of a call's error code: one of a fixed set, whatever a worker
/// sent.
pub(crate) fn outcome_label(code: &str) -> &'static str {
    use rill_protocol::worker::codes;
    match code {
        codes::FUNCTION_NOT_FOUND => codes::FUNCTION_NOT_FOUND,
        codes::INVOCATION_STOPPED => codes::INVOCATION_STOPPED,
        codes::INVOCATION_FAILED => codes::INVOCATION_FAILED,
        codes::INVOCATION_ERROR => codes::INVOCATION_ERROR,
        codes::ENQUEUE_ERROR => codes::ENQUEUE_ERROR,
        "timed-out" => "timed-out",
        "limit-exceeded" => "limit-exceeded",
        "invalid-input" => "invalid-input",
        "unavailable" => "unavailable",
        _ => "other-error",
    }
}
