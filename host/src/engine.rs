//! The one wasmtime [`Engine`] of a host, and its epoch ticker.
//!
//! Wall-clock deadlines on guest code use epoch interruption: a background thread bumps
//! the engine's epoch every [`EPOCH_TICK`]; at each tick a running guest yields its
//! thread to other tasks and is interrupted once its call's deadline has passed. This
//! stops a guest spinning in wasm code without starving anyone; a guest waiting inside a
//! host call is stopped by a timeout around the whole call instead (see `call.rs`).

use std::num::NonZeroUsize;
use std::time::Duration;

use std::path::{Path, PathBuf};

use wasmtime::{Cache, CacheConfig, Config, Engine};

use crate::error::{HostError, boxed};

/// How often the epoch advances (10 ms, as Spin does). A runaway guest is stopped at most
/// about one tick after its deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Most wasm frames kept in a trap's backtrace. Bounds the size of the messages a
/// deeply recursing guest can make the host build.
pub const MAX_BACKTRACE_FRAMES: usize = 32;

/// Build the engine and start its epoch ticker. `fuel` turns on fuel metering (it costs
/// a few percent of guest speed, so it is on only when some function has a fuel limit).
/// `cache_dir` keeps compiled components on disk (see [`crate::HostConfig::cache_dir`]).
pub(crate) fn new(fuel: bool, cache_dir: Option<&Path>) -> Result<Engine, HostError> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.consume_fuel(fuel);
    if let Some(dir) = cache_dir {
        // wasmtime's own cache: keyed by the component's bytes and the engine's
        // configuration and version, and a file that does not load (corrupt, foreign,
        // stale) is simply recompiled. A cache that cannot be set up only costs speed.
        let mut cache_config = CacheConfig::new();
        cache_config.with_directory(dir);
        match Cache::new(cache_config) {
            Ok(cache) => {
                config.cache(Some(cache));
            }
            Err(err) => {
                tracing::warn!(dir = %dir.display(), "compiled components will not be cached: {err:#}")
            }
        }
    }
    config.wasm_backtrace_max_frames(NonZeroUsize::new(MAX_BACKTRACE_FRAMES));
    let engine = Engine::new(&config).map_err(|e| HostError::Engine(boxed(e)))?;
    start_ticker(&engine)?;
    Ok(engine)
}

/// One thread per engine; it holds only a weak reference and stops once the engine is
/// dropped.
fn start_ticker(engine: &Engine) -> Result<(), HostError> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("rill-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => return,
                }
            }
        })
        .map(drop)
        .map_err(|e| HostError::Engine(Box::new(e)))
}

/// Where the `rill` CLI caches compiled components: `$RILL_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/rill`, else `$HOME/.cache/rill`; `None` if none of them is set.
pub fn default_cache_dir() -> Option<PathBuf> {
    let from = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from);
    from("RILL_CACHE_DIR")
        .or_else(|| from("XDG_CACHE_HOME").map(|d| d.join("rill")))
        .or_else(|| from("HOME").map(|d| d.join(".cache").join("rill")))
}
