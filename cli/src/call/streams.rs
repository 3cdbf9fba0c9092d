//! The streams of `rill call`: where `--reader-from` streams come from and `--writer-to`
//! streams go, and the tasks that run [`rill::pipe`]'s pumps for them during a call.
//!
//! Both kinds of task are told when the function has returned (a `watch` flag), because
//! only then do the channel's statuses say what the function did:
//!
//! - A feed stops at once and reports its reader's [`ReaderStatus`]: whether the function
//!   opened its input and read it to the end. It never waits for a reader that is gone.
//! - A drain fails at once if the function never opened its output; otherwise it keeps
//!   copying until the end of the stream, however long a slow consumer takes, as long as
//!   the consumer keeps accepting bytes (see [`rill::pipe::STALLED_OUTPUT_TIMEOUT`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rill::pipe::{self, Drained};
use rill::{Reader, ReaderStatus, Writer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

/// Where a `--reader-from` stream comes from.
pub(crate) enum Input {
    /// Standard input, a pipe, a device: read asynchronously, each read passed on as it
    /// arrives (a thread blocked reading it could not be stopped).
    Stream(Box<dyn AsyncRead + Send + Unpin>),
    /// A regular file, read on a blocking thread straight into the chunks handed to the
    /// channel ([`pipe::feed_file`]).
    File(std::fs::File),
}

/// Where a `--writer-to` stream goes.
pub(crate) type Output = Box<dyn AsyncWrite + Send + Unpin>;

/// Completes once `returned` is raised (or its sender is gone).
async fn raised(mut returned: watch::Receiver<bool>) {
    let _ = returned.wait_for(|returned| *returned).await;
}

/// Feed `input` into the channel until the function returns (`returned` is raised), then
/// report what the function did with it. The feed never outlives the call: whatever the
/// function left unread is dropped.
pub(crate) async fn feed_until_return(
    input: Input,
    mut writer: Writer,
    returned: watch::Receiver<bool>,
) -> anyhow::Result<ReaderStatus> {
    let writer = match input {
        Input::Stream(mut stream) => {
            pipe::feed(&mut stream, &mut writer, raised(returned.clone())).await?;
            writer
        }
        Input::File(file) => pipe::feed_file(file, writer, raised(returned.clone())).await?.1,
    };
    // The input ended first: the function may still be reading it. Its reader's status
    // means something only once the function returned.
    raised(returned).await;
    Ok(writer.reader_status())
}

/// Copy the channel into `output`; text messages go to stderr, one per line, made inert.
///
/// `consumer_closed` is raised (before the reader is dropped, so before the function's
/// next write can fail with `closed`) when the output's consumer closes the pipe.
pub(crate) async fn drain(
    mut reader: Reader,
    mut output: Output,
    returned: watch::Receiver<bool>,
    consumer_closed: Arc<AtomicBool>,
) -> anyhow::Result<Drained> {
    let print = |text: String| eprintln!("{}", rill::inert(&text));
    let drained = pipe::drain(&mut reader, &mut output, raised(returned), print).await?;
    if drained == Drained::ConsumerClosed {
        consumer_closed.store(true, Ordering::SeqCst);
    }
    drop(reader);
    Ok(drained)
}
