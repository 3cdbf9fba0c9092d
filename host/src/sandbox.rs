//! The sandbox of one call: the WASI context built from the function's
//! [`Capabilities`] (nothing it was not granted), and the memory limiter.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use crate::capabilities::Capabilities;
use crate::limits::{Limits, MAX_TABLE_ELEMENTS};
use crate::stdio;

/// Grows memories and tables up to the call's limits, and remembers a refusal so that the
/// trap that usually follows is reported as the memory limit it is. (wasmtime's
/// `StoreLimits` bounds the same things but does not say afterwards that it refused.)
pub(crate) struct MemoryLimiter {
    max_memory_bytes: usize,
    refused: bool,
}

impl MemoryLimiter {
    /// A limiter allowing `max_memory_bytes` of linear memory per memory.
    pub(crate) fn new(max_memory_bytes: usize) -> MemoryLimiter {
        MemoryLimiter { max_memory_bytes, refused: false }
    }

    /// Whether a memory was refused growth: the trap that follows is the memory limit.
    pub(crate) fn refused(&self) -> bool {
        self.refused
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_memory_bytes;
        self.refused |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The WASI context of one call: nothing but what the function was granted, and its
/// output turned into log lines.
pub(crate) fn wasi_ctx(
    function_id: &Arc<str>,
    limits: &Limits,
    caps: &Capabilities,
) -> Result<WasiCtx, String> {
    let (stdout, stderr) = stdio::pair(Arc::clone(function_id), limits.max_output_bytes);
    let mut builder = WasiCtxBuilder::new();
    builder.stdout(stdout).stderr(stderr).allow_ip_name_lookup(false);
    for (key, value) in &caps.env {
        builder.env(key, value);
    }
    for dir in &caps.dirs {
        let perms = if dir.writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
        builder
            .preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|e| format!("cannot open the granted directory {}: {e}", dir.host.display()))?;
    }
    if caps.network.is_empty() {
        builder.allow_tcp(false).allow_udp(false);
    } else {
        let grants = caps.network.clone();
        builder.allow_tcp(true).allow_udp(true).socket_addr_check(move |addr, addr_use| {
            let allowed = match addr_use {
                // The implicit bind to an ephemeral local port that precedes a connect or
                // a send; it reaches nothing by itself.
                SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => {
                    addr.ip().is_unspecified() && addr.port() == 0
                }
                SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => {
                    grants.iter().any(|grant| grant.allows(&addr))
                }
                // The allow-list is outbound only: no listening, no accepting.
                SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => false,
            };
            Box::pin(async move { allowed })
        });
    }
    Ok(builder.build())
}
