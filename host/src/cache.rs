//! The on-disk cache of compiled components.
//!
//! Compiling a component costs from tens of milliseconds (a small Rust guest) to seconds
//! (a Python or JavaScript guest, which carries an interpreter). The cache keeps
//! wasmtime's compiled form of each component so that later hosts load it instead.
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
//! a cryptographic hash, which would dominate the load time.) A file compiled by another wasmtime or configuration is refused by
//! wasmtime's own header check and recompiled too. The checksum detects accidents, not
//! attackers: whoever can write the cache directory can run code as the host, exactly
//! as with wasmtime's own cache, so it must be private to the user running rill.
//!
//! Files are written to a temporary name and renamed into place, so a reader never sees
//! a partial entry, and the verified bytes are copied into the engine's own memory
//! rather than mapped, so a file changed later cannot affect a loaded component.
//!
//! Every cache failure (unreadable directory, full disk, a bad entry) costs only a
//! compilation and a warning; it never fails a call. The directory holds at most
//! [`MAX_CACHE_ENTRIES`] entries; the least recently written are removed beyond that.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Most compiled components kept in a cache directory. Bounds its disk use as
/// components change (a small Rust component compiles to a few hundred KiB, a Python
/// one to tens of MiB).
pub const MAX_CACHE_ENTRIES: usize = 256;

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
        component.map(Some).map_err(|err| format!("wasmtime refused it: {err}"))
    }

    fn store(&self, key: &str, compiled: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        self.evict()?;
        // The compiled file first: an entry counts only once its checksum exists.
        self.write_atomically(&self.path(key, COMPILED), compiled)?;
        self.write_atomically(&self.path(key, CHECKSUM), check_line(compiled).as_bytes())
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        file.write_all(bytes)?;
        // On disk before it has its name, so a crash cannot leave a named, empty file.
        file.as_file().sync_all()?;
        file.persist(path).map_err(|err| err.error)?;
        Ok(())
    }

    /// Make room for one more entry: remove the oldest beyond [`MAX_CACHE_ENTRIES`] - 1.
    fn evict(&self) -> std::io::Result<()> {
        let mut entries: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&self.dir)?
            .flatten()
            .filter(|entry| entry.path().extension().is_some_and(|ext| ext == CHECKSUM))
            .map(|entry| {
                let written = entry.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH);
                (written, entry.path())
            })
            .collect();
        if entries.len() < MAX_CACHE_ENTRIES {
            return Ok(());
        }
        entries.sort();
        for (_, checksum) in &entries[..=entries.len() - MAX_CACHE_ENTRIES] {
            // Checksum first, so a half-removed entry is never taken for a sound one.
            std::fs::remove_file(checksum)?;
            std::fs::remove_file(checksum.with_extension(COMPILED)).ok();
        }
        Ok(())
    }
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
