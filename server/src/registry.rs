//! Who serves which function id, and the calls waiting for a worker's answer.
//!
//! One owner per id (a worker connection), claimed by the first live registration. The
//! calls forwarded to workers wait in `pending` under an invocation id the server made,
//! together with the connection that must answer them.
//!
//! The workers' side ([`Workers`]) holds no [`Host`]: the host holds it, as its
//! [`RemoteFunctions`], so that guests' calls reach workers, and the [`Registry`] holds
//! both, with no reference cycle.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::Arc;

use rill::{CallError, CallOptions, Host, RemoteCall, RemoteFunctions};
use rill_protocol::CallErrorKind;
use rill_protocol::worker::{
    InvocationError, InvokeFunction, Message, RegisterFunction, RegistrationRejected, codes,
};
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::builtins;
use crate::lifecycle::{Bounded, Held};
use crate::metrics::Metrics;

/// The JSON text of worker-protocol messages on their way to one worker connection.
pub(crate) type Outbox = mpsc::Sender<String>;

/// What a call ends with: the function's JSON result, or why it failed.
pub(crate) type Outcome = Result<Box<RawValue>, InvocationError>;

/// A worker connection, as the registry knows it.
#[derive(Clone, Debug)]
pub(crate) struct Connection {
    /// Unique within this server's lifetime.
    pub(crate) id: u64,
    /// The `worker_id` it was given in `workerregistered`.
    pub(crate) worker_id: String,
    pub(crate) outbox: Outbox,
    /// Calls from this connection running now.
    calls: Bounded,
}

impl Connection {
    pub(crate) fn new(outbox: Outbox) -> Connection {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Connection {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            worker_id: Uuid::new_v4().to_string(),
            outbox,
            calls: Bounded::default(),
        }
    }

    /// Count one more running call, unless `max` already run.
    pub(crate) fn start_call(&self, max: usize) -> Option<Held> {
        self.calls.take(max)
    }
}

/// Routes calls: built-ins, then workers, then the host's wasm functions.
#[derive(Debug)]
pub(crate) struct Registry {
    host: Host,
    workers: Workers,
    metrics: Arc<Metrics>,
}

/// The functions connected workers serve, and the calls waiting for their answers.
#[derive(Clone)]
pub(crate) struct Workers {
    state: Arc<Mutex<State>>,
    /// [`ServerConfig::max_calls_per_function`](crate::ServerConfig::max_calls_per_function).
    max_calls_per_function: usize,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct State {
    functions: HashMap<String, Registered>,
    /// How many of `functions` each connection owns.
    owned: HashMap<u64, usize>,
    pending: HashMap<String, Pending>,
}

struct Registered {
    owner: Connection,
    description: Option<String>,
    /// Calls of this id forwarded to its owner and not answered yet.
    calls: Bounded,
}

struct Pending {
    /// The connection the call was sent to: the only one that may answer it.
    callee: u64,
    reply: oneshot::Sender<Outcome>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Workers")
            .field("functions", &state.functions.len())
            .field("pending_calls", &state.pending.len())
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// A registry for `host`, which from now on sends its guests' calls of ids it does
    /// not serve to the workers; `None` if the host already sends them elsewhere.
    pub(crate) fn new(host: Host, metrics: Arc<Metrics>, max_calls_per_function: usize) -> Option<Registry> {
        let workers =
            Workers { state: Arc::default(), max_calls_per_function, metrics: Arc::clone(&metrics) };
        host.set_remote(Arc::new(workers.clone())).ok()?;
        Some(Registry { host, workers, metrics })
    }

    /// Whether anyone here serves `function_id` right now.
    fn serves(&self, function_id: &str) -> bool {
        builtins::is_builtin(function_id)
            || self.host.has_function(function_id)
            || self.workers.lock().functions.contains_key(function_id)
    }

    /// [`Registry::invoke`], counted in the metrics.
    pub(crate) async fn invoke_counted(&self, call: InvokeFunction) -> Outcome {
        let function_id = call.function_id.clone();
        let served = self.serves(&function_id);
        let began = std::time::Instant::now();
        let outcome = self.invoke(call).await;
        let label = match &outcome {
            Ok(_) => "ok",
            Err(error) => crate::metrics::outcome_label(&error.code),
        };
        self.metrics.call(&function_id, served, label, began.elapsed());
        outcome
    }

    pub(crate) fn host(&self) -> &Host {
        &self.host
    }

    pub(crate) fn workers(&self) -> &Workers {
        &self.workers
    }

    /// Route calls of `function.id` to `conn`, unless someone else serves that id.
    pub(crate) fn register(
        &self,
        conn: &Connection,
        function: RegisterFunction,
        max_per_worker: usize,
    ) -> Result<(), RegistrationRejected> {
        if builtins::is_builtin(&function.id) || self.host.has_function(&function.id) {
            return Err(rejected(&function.id, "rill"));
        }
        self.workers.register(conn, function, max_per_worker)
    }

    /// The functions this server serves: the host's, then the workers', with the
    /// descriptions workers gave.
    pub(crate) fn functions(&self) -> Vec<(String, Option<String>)> {
        let mut list: Vec<(String, Option<String>)> =
            self.host.function_ids().into_iter().map(|id| (id, None)).collect();
        let state = self.workers.lock();
        list.extend(state.functions.iter().map(|(id, r)| (id.clone(), r.description.clone())));
        list.sort();
        list
    }

    /// Call `function_id` wherever it is served and wait for its outcome. Dropping the
    /// future forgets the call (a worker's late answer is then dropped).
    pub(crate) async fn invoke(&self, call: InvokeFunction) -> Outcome {
        if let Some(outcome) = builtins::call(self, &call.function_id, &call.data) {
            return outcome;
        }
        match self.workers.owner(&call.function_id) {
            Some(owner) => self.workers.forward(owner, call).await,
            None => self.call_host(call).await,
        }
    }

    async fn call_host(&self, call: InvokeFunction) -> Outcome {
        let result = self
            .host
            .trigger_with(&call.function_id, call.data.get().to_owned(), &CallOptions::default())
            .await;
        match result {
            Ok(text) => RawValue::from_string(text).map_err(|err| {
                InvocationError::new(
                    codes::INVOCATION_FAILED,
                    format!("the function's result is not JSON: {err}"),
                )
            }),
            Err(err) => {
                if matches!(err, CallError::Trapped { .. }) {
                    self.metrics.trap();
                }
                Err(call_error(&err))
            }
        }
    }
}

fn rejected(function_id: &str, owner: &str) -> RegistrationRejected {
    RegistrationRejected {
        code: codes::FUNCTION_NAMESPACE_CONFLICT.to_owned(),
        namespace: "default".to_owned(),
        function_id: Some(function_id.to_owned()),
        owner_worker_id: owner.to_owned(),
    }
}

impl Workers {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section is a few map operations that cannot panic halfway.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn register(
        &self,
        conn: &Connection,
        function: RegisterFunction,
        max: usize,
    ) -> Result<(), RegistrationRejected> {
        let mut state = self.lock();
        match state.functions.get(&function.id) {
            Some(existing) if existing.owner.id != conn.id => {
                Err(rejected(&function.id, &existing.owner.worker_id))
            }
            Some(_) => {
                // Registered again by its owner (a reconnecting SDK replays): an update,
                // which keeps the count of the calls running.
                if let Some(registered) = state.functions.get_mut(&function.id) {
                    registered.description = function.description;
                }
                Ok(())
            }
            None => {
                let owned = state.owned.entry(conn.id).or_default();
                if *owned >= max {
                    return Err(RegistrationRejected {
                        code: codes::FUNCTION_LIMIT_EXCEEDED.to_owned(),
                        ..rejected(&function.id, &conn.worker_id)
                    });
                }
                *owned += 1;
                let registered = Registered {
                    owner: conn.clone(),
                    description: function.description,
                    calls: Bounded::default(),
                };
                state.functions.insert(function.id, registered);
                Ok(())
            }
        }
    }

    /// The connection serving `function_id`, with that id's count of running calls.
    fn owner(&self, function_id: &str) -> Option<(Connection, Bounded)> {
        self.lock().functions.get(function_id).map(|r| (r.owner.clone(), r.calls.clone()))
    }

    /// Stop routing `id` to `conn` (another owner's id is left alone).
    pub(crate) fn unregister(&self, conn: &Connection, id: &str) {
        let mut state = self.lock();
        if state.functions.get(id).is_some_and(|r| r.owner.id == conn.id) {
            state.functions.remove(id);
            if let Some(owned) = state.owned.get_mut(&conn.id) {
                *owned = owned.saturating_sub(1);
            }
        }
    }

    /// `conn` is gone: drop its functions and fail the calls it was serving.
    pub(crate) fn disconnect(&self, conn: &Connection) {
        let stopped: Vec<Pending> = {
            let mut state = self.lock();
            state.functions.retain(|_, r| r.owner.id != conn.id);
            state.owned.remove(&conn.id);
            let ids: Vec<String> =
                state.pending.iter().filter(|(_, p)| p.callee == conn.id).map(|(id, _)| id.clone()).collect();
            ids.iter().filter_map(|id| state.pending.remove(id)).collect()
        };
        for pending in stopped {
            let _ = pending.reply.send(Err(InvocationError::new(
                codes::INVOCATION_STOPPED,
                "the worker serving this call disconnected before answering",
            )));
        }
    }

    /// A worker's answer to a call forwarded to it. Answers to unknown ids, or to calls
    /// sent to another connection, are dropped.
    pub(crate) fn answer(&self, conn: &Connection, invocation_id: &str, outcome: Outcome) {
        let pending = {
            let mut state = self.lock();
            match state.pending.get(invocation_id) {
                Some(p) if p.callee == conn.id => state.pending.remove(invocation_id),
                _ => None,
            }
        };
        match pending {
            Some(pending) => {
                let _ = pending.reply.send(outcome);
            }
            None => tracing::debug!(invocation_id, "dropped an answer to no call of this connection"),
        }
    }

    /// Send `call` to `owner` and wait for its answer, counted against the function's
    /// `calls`. When they are full the call is refused with `unavailable`: the function
    /// is at capacity, and a later call may succeed.
    async fn forward(&self, (owner, calls): (Connection, Bounded), call: InvokeFunction) -> Outcome {
        let Some(_running) = calls.take(self.max_calls_per_function) else {
            self.metrics.limit_hit("calls_per_function");
            return Err(InvocationError::new(
                CallErrorKind::Unavailable.wit_name(),
                format!(
                    "{:?} already has {} calls running, the most one function may; try again later",
                    call.function_id, self.max_calls_per_function
                ),
            ));
        };
        let invocation_id = Uuid::new_v4().to_string();
        let (reply, answer) = oneshot::channel();
        self.lock().pending.insert(invocation_id.clone(), Pending { callee: owner.id, reply });
        let forget = ForgetOnDrop { workers: self, invocation_id: &invocation_id };
        let message = Message::InvokeFunction(InvokeFunction {
            invocation_id: Some(invocation_id.clone()),
            action: None,
            ..call
        });
        let stopped =
            || InvocationError::new(codes::INVOCATION_STOPPED, "the worker serving this call disconnected");
        if owner.outbox.send(message.to_json()).await.is_err() {
            return Err(stopped());
        }
        let outcome = answer.await.unwrap_or_else(|_| Err(stopped()));
        drop(forget);
        outcome
    }
}

/// A guest's call of a function a worker serves.
impl RemoteFunctions for Workers {
    fn call(&self, function_id: &str, payload: String) -> Option<RemoteCall> {
        let owner = self.owner(function_id)?;
        let workers = self.clone();
        let function_id = function_id.to_owned();
        Some(Box::pin(async move {
            let data = RawValue::from_string(payload)
                .map_err(|err| CallError::InvalidInput(format!("the payload is not JSON: {err}")))?;
            let call = InvokeFunction {
                invocation_id: None,
                function_id: function_id.clone(),
                data,
                action: None,
                traceparent: None,
                baggage: None,
            };
            match workers.forward(owner, call).await {
                Ok(result) => Ok(result.get().to_owned()),
                Err(error) => Err(worker_error(function_id, error)),
            }
        }))
    }
}

/// A worker's error as a guest sees it: the iii code and message kept in the text.
fn worker_error(function_id: String, error: InvocationError) -> CallError {
    let message = format!("{} ({})", error.message, error.code);
    match error.code.as_str() {
        codes::FUNCTION_NOT_FOUND => CallError::NotFound(function_id),
        code if code == CallErrorKind::LimitExceeded.wit_name() => CallError::LimitExceeded(message),
        code if code == CallErrorKind::Unavailable.wit_name() => {
            CallError::Unavailable { function_id, message }
        }
        codes::INVOCATION_STOPPED => CallError::Unavailable { function_id, message },
        _ => CallError::Failed { function_id, message },
    }
}

/// A host call's error in iii's terms: `function_not_found` for an unknown id,
/// `invocation_failed` for the function's own error, and rill's WIT error kind (e.g.
/// `timed-out`, `trapped`, `limit-exceeded`) for the rest, with the full message.
fn call_error(err: &CallError) -> InvocationError {
    let code = match err.error_kind() {
        CallErrorKind::NotFound => codes::FUNCTION_NOT_FOUND,
        CallErrorKind::Failed => codes::INVOCATION_FAILED,
        other => other.wit_name(),
    };
    InvocationError::new(code, err.to_string())
}

/// Removes a forwarded call from `pending` when its caller stops waiting.
struct ForgetOnDrop<'a> {
    workers: &'a Workers,
    invocation_id: &'a str,
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        self.workers.lock().pending.remove(self.invocation_id);
    }
}
