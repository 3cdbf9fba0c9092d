//! Memory figures, read from `/proc/self/status`: the peak RSS a stream adds, and the
//! resident size of idle channels.

use rill::{ChannelOptions, Host};

use crate::report::{Report, Row};

/// A `/proc/self/status` field in KiB (`VmRSS:`, `VmHWM:`), or 0 where it cannot be read.
pub(crate) fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Reset the process's peak RSS (`VmHWM`) to its current RSS, which is returned (KiB), so
/// that a later `VmHWM` is the peak of what ran in between. Where the peak cannot be
/// reset, returns the peak so far: growth beyond it is still measured, but a stream that
/// stays under an earlier peak then counts as adding nothing.
pub(crate) fn reset_peak_rss() -> u64 {
    match std::fs::write("/proc/self/clear_refs", "5") {
        Ok(()) => rss_kib("VmRSS:"),
        Err(err) => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                eprintln!("warning: cannot reset the peak RSS ({err}); peak RSS figures may read low");
            });
            rss_kib("VmHWM:")
        }
    }
}

/// The peak RSS added since [`reset_peak_rss`] returned `resident_before`, in MiB.
pub(crate) fn peak_added_mib(resident_before: u64) -> f64 {
    rss_kib("VmHWM:").saturating_sub(resident_before) as f64 / 1024.0
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
