//! The on-disk cache of compiled components.
//!
//! Compiling a component costs from tens of milliseconds (a small Rust guest) to seconds
//! (a Python or JavaScript guest, which carries an interpreter). The cache keeps
//! wasmtime's compiled form of each component so that later hosts load it instead.
//!
//! # Why not wasmtime's own cache
//!
//! wasmtime has one (`Config::cache`, the `cache` feature), and it covers components.
//! rill keeps its own for two measured reasons: loading an entry through wasmtime's cache
//! (a hash of the whole input, then zstd decompression) took 1.2–2 ms against 0.66 ms for
//! this cache's CRC check and copy; and this cache checks an entry's length and checksum
//! before the `unsafe` deserialize, where wasmtime's trusts the file. (Measured when the
//! cache was written, commit `d19ef60`.) The `cache` feature is therefore not enabled.
//!
//! # Layout and keys
//!
//! One entry is two files in the cache directory, named by a key: the SHA-256 of the
//! engine's compatibility hash (wasmtime's version and every setting that changes the
//! compiled code) followed by the component's bytes. `KEY.cwasm` holds the compiled
//! component; `KEY.check` its length and CRC-32. A changed component or a changed
//! engine configuration simply gets a new key.
//!
//! # Trust
//!
//! Loading compiled code runs it without validating it, so an entry is used only if
//! its length and checksum match: a truncated, corrupted or half-written file is
//! recompiled, never loaded. (A CRC is enough to catch accidents and costs a fraction of
//! a cryptographic hash, which would dominate the load time.) A file compiled by another
//! wasmtime or configuration is refused by wasmtime's own header check and recompiled
//! too. The checksum detects accidents, not
//! attackers: whoever can write the cache directory can run code as the host, exactly
//! as with wasmtime's own cache, so it must be private to the user running rill.
//!
//! Files are written to a temporary name and renamed into place, so a reader never sees
//! a partial entry (one torn by a crash fails its check), and the verified bytes are
//! copied into the engine's own memory rather than mapped, so a file changed later cannot
//! affect a loaded component.
//!
//! Every cache failure (unreadable directory, full disk, a bad entry) costs only a
//! compilation and a warning; it never fails a call. The directory holds at most
//! [`MAX_CACHE_ENTRIES`] entries and [`MAX_CACHE_BYTES`]; the least recently used are
//! removed beyond that, and so are the leftovers of writes that never finished. It is
//! created readable by its owner only.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::limits::{MAX_CACHE_BYTES, MAX_CACHE_ENTRIES};

/// Temporary files are named with this prefix until they are renamed into place.
const TEMP_PREFIX: &str = ".rill-tmp-";

/// A temporary file, or a compiled file without its check, this old is the leftover of
/// a write that never finished (a killed process, a full disk) and is removed.
const LEFTOVER_AGE: Duration = Duration::from_secs(3600);

const COMPILED: &str = "cwasm";
const CHECKSUM: &str = "check";

/// A directory of compiled components for one engine.
pub(crate) struct ComponentCache {
    dir: PathBuf,
    /// The engine's compatibility hash, folded into every key.
    engine_key: [u8; 32],
}

impl ComponentCache {
    pub(crate) fn new(dir: &Path, engine: &Engine) -> ComponentCache {
        let mut hasher = DigestHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        ComponentCache { dir: dir.to_path_buf(), engine_key: hasher.0.finalize().into() }
    }

    /// The compiled form of `wasm`, from the cache if it holds a sound entry, else
    /// compiled now (and stored).
    pub(crate) fn load_or_compile(&self, engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Component> {
        let key = self.key(wasm);
        match self.load(engine, &key) {
            Ok(Some(component)) => return Ok(component),
            Ok(None) => {}
            Err(why) => {
                tracing::warn!(entry = %self.path(&key, COMPILED).display(), "recompiling: {why}");
            }
        }
        let compiled = engine.precompile_component(wasm)?;
        if let Err(err) = self.store(&key, &compiled) {
            tracing::warn!(dir = %self.dir.display(), "cannot cache the compiled component: {err}");
        }
        // SAFETY: `compiled` was produced by this engine a moment ago.
        #[allow(unsafe_code, reason = "loading code this engine just compiled, without compiling twice")]
        unsafe {
            Component::deserialize(engine, &compiled)
        }
    }

    fn key(&self, wasm: &[u8]) -> String {
        let digest = Sha256::new().chain_update(self.engine_key).chain_update(wasm).finalize();
        hex(&digest)
    }

    fn path(&self, key: &str, extension: &str) -> PathBuf {
        self.dir.join(format!("{key}.{extension}"))
    }

    /// `Ok(None)`: no entry. `Err`: an entry that cannot be used (it will be replaced).
    fn load(&self, engine: &Engine, key: &str) -> Result<Option<Component>, String> {
        let checksum = match std::fs::read_to_string(self.path(key, CHECKSUM)) {
            Ok(checksum) => checksum,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(format!("cannot read its checksum: {err}")),
        };
        let compiled = std::fs::read(self.path(key, COMPILED))
            .map_err(|err| format!("cannot read the compiled component: {err}"))?;
        if checksum.trim() != check_line(&compiled) {
            return Err("its checksum does not match (a corrupt or partly written file)".into());
        }
        // SAFETY: these bytes are exactly what `store` wrote from `precompile_component`
        // (the checksum matches), and wasmtime refuses code compiled for another
        // version or configuration. See the module docs for who may write the cache.
        #[allow(unsafe_code, reason = "loading a checked cache entry is the point of the cache")]
        let component = unsafe { Component::deserialize(engine, &compiled) };
        let component = component.map_err(|err| format!("wasmtime refused it: {err}"))?;
        // Mark the entry used, so eviction removes the least recently used first.
        let touched = std::fs::File::options()
            .write(true)
            .open(self.path(key, CHECKSUM))
            .and_then(|file| file.set_modified(SystemTime::now()));
        if let Err(err) = touched {
            tracing::debug!(key, "cannot mark a cache entry used: {err}");
        }
        Ok(Some(component))
    }

    fn store(&self, key: &str, compiled: &[u8]) -> std::io::Result<()> {
        create_private_dir(&self.dir)?;
        self.evict(compiled.len() as u64);
        // The compiled file first: an entry counts only once its checksum exists. No
        // fsync: a file torn by a crash fails its check and is recompiled.
        self.write_atomically(&self.path(key, COMPILED), compiled)?;
        self.write_atomically(&self.path(key, CHECKSUM), check_line(compiled).as_bytes())
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let mut file = tempfile::Builder::new().prefix(TEMP_PREFIX).tempfile_in(&self.dir)?;
        file.write_all(bytes)?;
        file.persist(path).map_err(|err| err.error)?;
        Ok(())
    }

    /// Make room for an entry of `incoming` bytes: remove the least recently used entries
    /// beyond [`MAX_CACHE_ENTRIES`] - 1 or [`MAX_CACHE_BYTES`], and the leftovers of writes
    /// that never finished. Best effort: what cannot be removed is logged and skipped (a
    /// concurrent host may have removed it first).
    fn evict(&self, incoming: u64) {
        let Ok(listing) = std::fs::read_dir(&self.dir) else { return };
        let now = SystemTime::now();
        let mut entries = Vec::new();
        for entry in listing.flatten() {
            let (path, Ok(meta)) = (entry.path(), entry.metadata()) else { continue };
            let touched = meta.modified().unwrap_or(UNIX_EPOCH);
            let stale = now.duration_since(touched).is_ok_and(|age| age > LEFTOVER_AGE);
            let name = entry.file_name();
            let extension = path.extension();
            if extension.is_some_and(|ext| ext == CHECKSUM) {
                let size = std::fs::metadata(path.with_extension(COMPILED)).map_or(0, |m| m.len());
                entries.push((touched, size, path));
            } else if stale
                && (name.to_string_lossy().starts_with(TEMP_PREFIX)
                    || (extension.is_some_and(|ext| ext == COMPILED)
                        && !path.with_extension(CHECKSUM).exists()))
            {
                remove_logged(&path);
            }
        }
        entries.sort();
        let mut count = entries.len();
        let mut bytes: u64 = entries.iter().map(|(_, size, _)| size).sum::<u64>() + incoming;
        for (_, size, checksum) in entries {
            if count < MAX_CACHE_ENTRIES && bytes <= MAX_CACHE_BYTES {
                break;
            }
            // Checksum first, so a half-removed entry is never taken for a sound one.
            remove_logged(&checksum);
            remove_logged(&checksum.with_extension(COMPILED));
            count -= 1;
            bytes = bytes.saturating_sub(size);
        }
    }
}

/// Remove a cache file; one already gone is fine, any other failure is logged.
fn remove_logged(path: &Path) {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!(file = %path.display(), "cannot remove from the component cache: {err}");
        }
        _ => {}
    }
}

/// Create the cache directory (and its parents), readable and writable by its owner only.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Feeds what a [`Hash`] implementation writes into a SHA-256.
struct DigestHasher(Sha256);

impl Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        // Only the digest is used; this exists because `Hasher` requires it.
        let digest = self.0.clone().finalize();
        u64::from_le_bytes([
            digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
        ])
    }
}

/// What `KEY.check` holds for a compiled file: its length and CRC-32.
fn check_line(compiled: &[u8]) -> String {
    format!("{} {:08x}", compiled.len(), crc32fast::hash(compiled))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
