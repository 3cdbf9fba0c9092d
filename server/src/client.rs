//! A minimal iii worker-protocol client: connect to an engine (`rill serve`, or iii
//! itself), call functions and wait for their answers. What `rill call --server` and
//! `rill bench` speak to a server; an application that wants iii's full SDK (function
//! registration, reconnects, telemetry) should use iii's own.
//!
//! Calls are started and answered separately ([`WorkerClient::start`],
//! [`WorkerClient::answer`]), so a caller can stream through a channel while its call
//! runs; [`WorkerClient::call`] does both.

use futures::{SinkExt, StreamExt};
use rill_protocol::worker::{InvocationResult, InvokeFunction, Message, MessageError};
use serde_json::value::RawValue;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// A WebSocket to a server, as this client and the channel endpoints use it.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why talking to a server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not a `ws://` URL, or the token not a valid header value.
    #[error("{0}")]
    InvalidRequest(String),
    /// The connection could not be made, or broke.
    #[error("the connection to the server failed")]
    Connection(#[source] tokio_tungstenite::tungstenite::Error),
    /// The server closed the connection (with its Close frame, if it sent one).
    #[error("the server closed the connection{}", .0.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Closed(Option<String>),
    /// The server sent something that is not a worker-protocol message.
    #[error("the server sent a malformed message")]
    Malformed(#[source] MessageError),
    /// The server's first message was not `workerregistered`: it is not an iii engine.
    #[error("the server did not greet as an iii engine does (got {0})")]
    NotAnEngine(String),
}

/// A connection to a server as an iii worker that only calls.
#[derive(Debug)]
pub struct WorkerClient {
    socket: Socket,
    next_id: u64,
}

/// Open a WebSocket to `url`, with `Authorization: Bearer <token>` when a token is given.
///
/// # Errors
///
/// [`ClientError::InvalidRequest`] or [`ClientError::Connection`].
pub async fn connect(url: &str, token: Option<&str>) -> Result<Socket, ClientError> {
    let mut request = url
        .into_client_request()
        .map_err(|err| ClientError::InvalidRequest(format!("{url} is not a ws:// URL: {err}")))?;
    if let Some(token) = token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| ClientError::InvalidRequest("the token is not a valid header value".into()))?;
        request.headers_mut().insert("authorization", value);
    }
    let (socket, _) = connect_async(request).await.map_err(ClientError::Connection)?;
    Ok(socket)
}

impl WorkerClient {
    /// Connect to the worker endpoint at `url` (e.g. `ws://127.0.0.1:49134`) and wait for
    /// the server's `workerregistered`.
    ///
    /// # Errors
    ///
    /// [`ClientError`]: the connection, or a server that is not an iii engine.
    pub async fn connect(url: &str, token: Option<&str>) -> Result<WorkerClient, ClientError> {
        let mut client = WorkerClient { socket: connect(url, token).await?, next_id: 0 };
        match client.next_message().await? {
            Message::WorkerRegistered(_) => Ok(client),
            other => Err(ClientError::NotAnEngine(format!("{other:?}"))),
        }
    }

    async fn next_message(&mut self) -> Result<Message, ClientError> {
        loop {
            match self.socket.next().await {
                Some(Ok(Frame::Text(text))) => {
                    return Message::from_json(text.as_str()).map_err(ClientError::Malformed);
                }
                Some(Ok(Frame::Close(frame))) => {
                    return Err(ClientError::Closed(frame.map(|f| format!("{} {}", f.code, f.reason))));
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(ClientError::Connection(err)),
                None => return Err(ClientError::Closed(None)),
            }
        }
    }

    /// Start a call of `function_id` with `data` and return its invocation id, for
    /// [`WorkerClient::answer`].
    ///
    /// # Errors
    ///
    /// [`ClientError::Connection`] if the message cannot be sent.
    pub async fn start(&mut self, function_id: &str, data: Box<RawValue>) -> Result<String, ClientError> {
        self.next_id += 1;
        let invocation_id = format!("{:08x}-0000-4000-8000-{:012x}", std::process::id(), self.next_id);
        let call = InvokeFunction {
            invocation_id: Some(invocation_id.clone()),
            function_id: function_id.to_owned(),
            data,
            action: None,
            traceparent: None,
            baggage: None,
        };
        let text = Message::InvokeFunction(call).to_json();
        self.socket.send(Frame::Text(text.into())).await.map_err(ClientError::Connection)?;
        Ok(invocation_id)
    }

    /// Wait for the answer to the call `invocation_id` (other messages are passed over).
    ///
    /// # Errors
    ///
    /// [`ClientError`] if the connection ends first or the server sends garbage.
    pub async fn answer(&mut self, invocation_id: &str) -> Result<InvocationResult, ClientError> {
        loop {
            if let Message::InvocationResult(answer) = self.next_message().await?
                && answer.invocation_id == invocation_id
            {
                return Ok(answer);
            }
        }
    }

    /// Call `function_id` with `data` and wait for its answer (a result or the function's
    /// error, both in the [`InvocationResult`]).
    ///
    /// # Errors
    ///
    /// [`ClientError`] when the call could not be made or answered.
    pub async fn call(
        &mut self,
        function_id: &str,
        data: Box<RawValue>,
    ) -> Result<InvocationResult, ClientError> {
        let invocation_id = self.start(function_id, data).await?;
        self.answer(&invocation_id).await
    }
}
