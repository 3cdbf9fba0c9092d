//! Guest stdout and stderr, turned into log lines tagged with the function id.
//!
//! Guests get no terminal and no file: each line they print becomes a `tracing` event
//! (target `rill::guest`) carrying the function id and the stream name. Control
//! characters are escaped so a guest cannot forge log lines or drive a terminal, lines
//! are cut at [`MAX_LOG_LINE_BYTES`], and one invocation may print at most its
//! [`Limits::max_output_bytes`](crate::Limits::max_output_bytes); past that its output is
//! dropped with one notice.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::limits::MAX_LOG_LINE_BYTES;

/// Which stream a line came from.
#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// The output state of one invocation, shared by its stdout and stderr.
#[derive(Debug)]
struct OutputBudget {
    remaining: usize,
    max: usize,
    announced_cut: bool,
}

/// The stdout or stderr of one invocation.
#[derive(Clone)]
pub(crate) struct GuestLog {
    function_id: Arc<str>,
    stream: Stream,
    budget: Arc<Mutex<OutputBudget>>,
    line: Arc<Mutex<Vec<u8>>>,
}

/// Make the stdout and stderr of one invocation of `function_id`.
pub(crate) fn pair(function_id: Arc<str>, max_bytes: usize) -> (GuestLog, GuestLog) {
    let budget =
        Arc::new(Mutex::new(OutputBudget { remaining: max_bytes, max: max_bytes, announced_cut: false }));
    let make = |stream| GuestLog {
        function_id: Arc::clone(&function_id),
        stream,
        budget: Arc::clone(&budget),
        line: Arc::default(),
    };
    (make(Stream::Stdout), make(Stream::Stderr))
}

impl GuestLog {
    fn accept(&self, mut bytes: &[u8]) {
        {
            let mut budget = self.budget.lock().unwrap_or_else(|p| p.into_inner());
            if bytes.len() > budget.remaining {
                bytes = &bytes[..budget.remaining];
                if !budget.announced_cut {
                    budget.announced_cut = true;
                    tracing::warn!(
                        target: "rill::guest",
                        function = %inert(&self.function_id),
                        "guest printed more than {} bytes in one call; the rest is dropped",
                        budget.max
                    );
                }
            }
            budget.remaining -= bytes.len();
        }
        let mut line = self.line.lock().unwrap_or_else(|p| p.into_inner());
        for &byte in bytes {
            if byte == b'\n' {
                self.emit(&line);
                line.clear();
            } else {
                line.push(byte);
                if line.len() >= MAX_LOG_LINE_BYTES {
                    self.emit(&line);
                    line.clear();
                }
            }
        }
    }

    fn emit(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        tracing::info!(
            target: "rill::guest",
            function = %inert(&self.function_id),
            stream = self.stream.name(),
            "{}",
            inert(text)
        );
    }
}

impl Drop for GuestLog {
    fn drop(&mut self) {
        // The last clone of a stream flushes its unterminated line.
        if Arc::strong_count(&self.line) == 1 {
            let line = self.line.lock().unwrap_or_else(|p| p.into_inner());
            if !line.is_empty() {
                self.emit(&line);
            }
        }
    }
}

/// `text` with every character that could change how a log line reads shown as a
/// `\u{…}` escape, so untrusted text can neither forge log lines nor drive a terminal nor
/// reorder what an operator reads:
///
/// - control characters (Unicode category Cc: escape sequences, newlines, carriage
///   returns);
/// - format characters (category Cf): the bidirectional overrides and isolates
///   (U+202A–U+202E, U+2066–U+2069) that make a terminal display text in another order
///   than it was written, the directional marks, zero-width joiners and spaces, and the
///   like;
/// - the line and paragraph separators U+2028 and U+2029 (categories Zl, Zp), which some
///   viewers break lines at.
pub fn inert(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Whether [`inert`] escapes `c`.
fn needs_escape(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    c.is_control()
        || matches!(
            c.general_category(),
            GeneralCategory::Format | GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator
        )
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for GuestLog {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.accept(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestLog {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestLog {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.accept(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always ready: output past the budget is dropped, never blocked on, so a
        // guest cannot stall itself (or a host thread) on its own logging.
        Ok(MAX_LOG_LINE_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remaining(log: &GuestLog) -> usize {
        log.budget.lock().unwrap().remaining
    }

    #[test]
    fn output_budget_obeyed() {
        let (stdout, stderr) = pair("f".into(), 100);
        stdout.accept(&[b'x'; 60]);
        stderr.accept(&[b'y'; 40]);
        assert_eq!(remaining(&stdout), 0, "stdout and stderr share one budget");
        assert!(!stdout.budget.lock().unwrap().announced_cut);
    }

    #[test]
    fn output_budget_violated() {
        let (stdout, stderr) = pair("f".into(), 100);
        stdout.accept(&[b'x'; 150]);
        assert_eq!(remaining(&stdout), 0);
        assert!(stdout.budget.lock().unwrap().announced_cut, "the cut is announced once");
        // Past the budget nothing more is kept, not even a partial line.
        stderr.accept(b"more\n");
        assert!(stderr.line.lock().unwrap().is_empty());
        assert_eq!(stdout.line.lock().unwrap().len(), 100 % MAX_LOG_LINE_BYTES);
    }

    #[test]
    fn long_lines_are_split() {
        let (stdout, _) = pair("f".into(), usize::MAX);
        stdout.accept(&vec![b'z'; MAX_LOG_LINE_BYTES * 2 + 5]);
        assert_eq!(stdout.line.lock().unwrap().len(), 5, "two full lines were emitted");
    }

    #[test]
    fn control_characters_are_made_inert() {
        assert_eq!(inert("plain {\"json\": 1}"), "plain {\"json\": 1}");
        assert_eq!(inert("a\nb\x1b[31m"), "a\\u{a}b\\u{1b}[31m");
    }

    #[test]
    fn bidirectional_and_format_characters_are_made_inert() {
        // "Trojan Source": an override makes `nimda` display as `admin`.
        assert_eq!(inert("user=\u{202e}nimda\u{202c} ok"), "user=\\u{202e}nimda\\u{202c} ok");
        for c in ['\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}'] {
            assert_eq!(inert(&c.to_string()), c.escape_unicode().to_string(), "embedding/override {c:?}");
        }
        for c in ['\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}'] {
            assert_eq!(inert(&c.to_string()), c.escape_unicode().to_string(), "isolate {c:?}");
        }
        // Marks, zero-width characters, the byte-order mark, tag characters, separators.
        for c in [
            '\u{200e}',
            '\u{200f}',
            '\u{061c}',
            '\u{200b}',
            '\u{200d}',
            '\u{feff}',
            '\u{e0041}',
            '\u{2028}',
            '\u{2029}',
        ] {
            assert_eq!(inert(&c.to_string()), c.escape_unicode().to_string(), "{c:?}");
        }
        // Ordinary non-ASCII text is left alone.
        assert_eq!(inert("héllo ünïcode — 日本語 עברית 🙂"), "héllo ünïcode — 日本語 עברית 🙂");
    }
}
