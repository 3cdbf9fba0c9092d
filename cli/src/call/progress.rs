//! Progress bars for `rill call --server`'s streams: bytes moved and the rate, one bar
//! per stream, on stderr. They appear only when stderr is a terminal (never in a pipe or
//! a log file) and only once a call has run for [`SHOW_AFTER`], so a quick call prints
//! nothing beyond its result.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a call runs before its streams' bars appear.
const SHOW_AFTER: Duration = Duration::from_millis(500);

/// The bars of one call's streams.
pub(super) struct Progress {
    bars: MultiProgress,
    /// Shows the bars once [`SHOW_AFTER`] has passed.
    show: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Bars that will show on stderr if it is a terminal, hidden bars otherwise.
    pub(super) fn on_stderr() -> Progress {
        let bars = MultiProgress::with_draw_target(ProgressDrawTarget::hidden());
        let show = std::io::stderr().is_terminal().then(|| {
            let showing = bars.clone();
            tokio::spawn(async move {
                tokio::time::sleep(SHOW_AFTER).await;
                showing.set_draw_target(ProgressDrawTarget::stderr());
            })
        });
        Progress { bars, show }
    }

    /// The streams are over: bars not shown yet never will be, and shown ones stay as
    /// they ended, with the cursor on the line below them.
    pub(super) fn end(self) {
        if let Some(show) = self.show {
            show.abort();
        }
        if !self.bars.is_hidden() {
            eprintln!();
        }
    }

    /// A bar for the stream `label`, of `total` bytes if that is known.
    pub(super) fn stream(&self, label: String, total: Option<u64>) -> ProgressBar {
        let (bar, template) = match total {
            Some(total) => (
                ProgressBar::new(total),
                "{prefix} {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
            ),
            None => (ProgressBar::no_length(), "{prefix} {binary_bytes} {binary_bytes_per_sec} {elapsed}"),
        };
        // The templates are constants: a failure here is a typo caught by the tests.
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.set_prefix(label);
        self.bars.add(bar)
    }
}
