//! Memory figures, read from `/proc/PID/status`: the peak RSS a stream adds, and the
//! resident size of idle channels (this process's), or of a `rill serve` child's
//! connections and streams (see the `server_memory` module).

use std::path::PathBuf;

use rill::{ChannelOptions, Host};

use crate::report::{Report, Row};

/// A process's directory under `/proc`: this process's, or a child's.
#[derive(Debug, Clone)]
pub(crate) struct Proc {
    dir: PathBuf,
}

impl Proc {
    /// This process.
    pub(crate) fn current() -> Proc {
        Proc { dir: PathBuf::from("/proc/self") }
    }

    /// The process `pid` (a child this process started).
    pub(crate) fn of(pid: u32) -> Proc {
        Proc { dir: PathBuf::from(format!("/proc/{pid}")) }
    }

    /// A `status` field in KiB (`VmRSS:`, `VmHWM:`), or `None` where it cannot be read.
    pub(crate) fn status_kib(&self, field: &str) -> Option<u64> {
        std::fs::read_to_string(self.dir.join("status"))
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Reset the process's peak RSS (`VmHWM`) to its current RSS, which is returned (KiB),
    /// so that a later `VmHWM` is the peak of what ran in between. Where the peak cannot
    /// be reset, returns the peak so far: growth beyond it is still measured, but a
    /// stream that stays under an earlier peak then counts as adding nothing. `None`
    /// where the status cannot be read at all.
    pub(crate) fn reset_peak(&self) -> Option<u64> {
        match std::fs::write(self.dir.join("clear_refs"), "5") {
            Ok(()) => self.status_kib("VmRSS:"),
            Err(err) => {
                static WARNED: std::sync::Once = std::sync::Once::new();
                WARNED.call_once(|| {
                    eprintln!("warning: cannot reset the peak RSS ({err}); peak RSS figures may read low");
                });
                self.status_kib("VmHWM:")
            }
        }
    }

    /// The peak RSS added since [`Proc::reset_peak`] returned `resident_before`, in MiB.
    pub(crate) fn peak_added_mib(&self, resident_before: u64) -> Option<f64> {
        Some(self.status_kib("VmHWM:")?.saturating_sub(resident_before) as f64 / 1024.0)
    }
}

/// This process's `status` field in KiB (`VmRSS:`, `VmHWM:`), or 0 where it cannot be
/// read.
pub(crate) fn rss_kib(field: &str) -> u64 {
    Proc::current().status_kib(field).unwrap_or(0)
}

/// [`Proc::reset_peak`] for this process (0 where its status cannot be read).
pub(crate) fn reset_peak_rss() -> u64 {
    Proc::current().reset_peak().unwrap_or(0)
}

/// This process's peak RSS added since [`reset_peak_rss`] returned `resident_before`, in
/// MiB.
pub(crate) fn peak_added_mib(resident_before: u64) -> f64 {
    Proc::current().peak_added_mib(resident_before).unwrap_or(0.0)
}

/// RSS added by 10,000 idle channels of the smallest buffer.
pub(crate) fn idle_channels(report: &mut Report, host: &Host) -> anyhow::Result<()> {
    let before = rss_kib("VmRSS:");
    let idle: Vec<_> = (0..10_000)
        .map(|_| host.create_channel(&ChannelOptions::buffer_bytes(rill::broker::MIN_BUFFER_BYTES)))
        .collect::<Result<_, _>>()?;
    let idle_mib = rss_kib("VmRSS:").saturating_sub(before) as f64 / 1024.0;
    drop(idle);
    report.row(Row::new("10,000 idle channels", idle_mib, "MiB").target("≤ 10"));
    report.field("idle_channels_10k_mib", idle_mib);
    Ok(())
}
