//! The on-disk cache of compiled components.
//!
//! Compiling a component costs from tens of milliseconds (a small Rust guest) to seconds
//! (a Python or JavaScript guest, which carries an interpreter). The cache keeps
//! wasmtime's compiled form of each component so that later hosts load it instead.
//!
//! # Why not wasmtime's own cache
//!
//! wasmtime has one (`Config::cache`, the `cache` feature), and it covers components.
//! rill keeps its own because starting from it must be fast for components that carry an
//! interpreter (a Python component is ~18 MB, compiled ~32 MB): wasmtime's cache hashes
//! the whole input and decompresses the entry on every load, and trusts the file it
//! loads. Here a component file seen before loads without being read (the source index
//! below), an entry's checksum is checked streaming through one small buffer, and the
//! entry is then mapped (`Component::deserialize_file`) rather than copied. Measured
//! with `rill bench` on the Python component: ~70 ms before these three, the figure in
//! the README's language table after. The `cache` feature is therefore not enabled.
//!
//! # Layout and keys
//!
//! One entry is two files in the cache directory, named by a key: the SHA-256 of the
//! engine's compatibility hash (wasmtime's version and every setting that changes the
//! compiled code) followed by the component's bytes. `KEY.cwasm` holds the compiled
//! component; `KEY.check` its length and CRC-32. A changed component or a changed
//! engine configuration simply gets a new key.
//!
//! The **source index** (`sources/`) remembers, per component path, the key its bytes
//! had and the file's length, modification time (nanoseconds), device and inode when
//! they were read. While all four are unchanged the key is reused without reading the
//! file; any change (a rebuilt component is a new file: a new inode and time) means
//! reading and hashing it again. Like make and cargo, this trusts that nobody rewrites a
//! file in place keeping its length and its nanosecond modification time.
//!
//! # Trust
//!
//! Loading compiled code runs it without validating it, so an entry is used only if
//! its length and checksum match: a truncated, corrupted or half-written file is
//! recompiled, never loaded. (A CRC is enough to catch accidents and costs a fraction of
//! a cryptographic hash, which would dominate the load time.) A file compiled by another
//! wasmtime or configuration is refused by wasmtime's own header check and recompiled
//! too. The checksum detects accidents, not attackers: whoever can write the cache
//! directory can run code as the host, exactly as with wasmtime's own cache, so it must
//! be private to the user running rill.
//!
//! Files are written to a temporary name and renamed into place, so a reader never sees
//! a partial entry (one torn by a crash fails its check), and rill never changes an
//! entry in place: a replaced entry is a new file, so one already mapped by a host keeps
//! its bytes.
//!
//! Every cache failure (unreadable directory, full disk, a bad entry) costs only a
//! compilation and a warning; it never fails a call. The directory holds at most
//! [`MAX_CACHE_ENTRIES`] entries and [`MAX_CACHE_BYTES`]; the least recently used are
//! removed beyond that, and so are the leftovers of writes that never finished; the
//! source index keeps at most [`MAX_CACHE_SOURCES`] paths, the least recently written
//! going first.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::limits::{MAX_CACHE_BYTES, MAX_CACHE_ENTRIES, MAX_CACHE_SOURCES};

/// Temporary files are named with this prefix until they are renamed into place.
const TEMP_PREFIX: &str = ".rill-tmp-";

/// A temporary file, or a compiled file without its check, this old is the leftover of
/// a write that never finished (a killed process, a full disk) and is removed.
const LEFTOVER_AGE: Duration = Duration::from_secs(3600);

const COMPILED: &str = "cwasm";
const CHECKSUM: &str = "check";

/// The source index's directory, inside the cache directory.
const SOURCES: &str = "sources";

/// What identifies one version of a file without reading it: length, modification time
/// (nanoseconds since the epoch), device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    len: u64,
    modified_ns: u128,
    device: u64,
    inode: u64,
}

impl FileStamp {
    /// The stamp of the file at `path` now; `None` if it cannot be read (or on a
    /// platform without inodes, where the index is not used).
    pub(crate) fn of(path: &Path) -> Option<FileStamp> {
        let meta = std::fs::metadata(path).ok()?;
        let modified_ns = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_nanos();
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Some(FileStamp { len: meta.len(), modified_ns, device: meta.dev(), inode: meta.ino() })
        }
        #[cfg(not(unix))]
        {
            let _ = modified_ns;
            None
        }
    }

    fn line(&self, key: &str) -> String {
        format!("{} {} {} {} {key}\n", self.len, self.modified_ns, self.device, self.inode)
    }

    /// The key an index line records for this stamp, if the line is for this stamp.
    fn key_from(&self, line: &str) -> Option<String> {
        let mut words = line.split_whitespace();
        let mut number = || words.next().and_then(|word| word.parse::<u128>().ok());
        let recorded = (number()?, number()?, number()?, number()?);
        let key = words.next()?;
        let now = (u128::from(self.len), self.modified_ns, u128::from(self.device), u128::from(self.inode));
        (recorded == now && key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| key.to_owned())
    }
}

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

    /// The compiled component of the file at `path`, if the source index knows the file
    /// unchanged and the cache holds a sound entry for it; `None` otherwise (then read
    /// the file and use [`load_or_compile`](Self::load_or_compile)).
    pub(crate) fn load_known_file(&self, engine: &Engine, path: &Path) -> Option<Component> {
        let stamp = FileStamp::of(path)?;
        let line = std::fs::read_to_string(self.index_path(path)).ok()?;
        let key = stamp.key_from(&line)?;
        match self.load(engine, &key) {
            Ok(component) => component,
            Err(why) => {
                tracing::warn!(entry = %self.path(&key, COMPILED).display(), "recompiling: {why}");
                None
            }
        }
    }

    /// The compiled form of `wasm`, from the cache if it holds a sound entry, else
    /// compiled now (and stored). `source` is the file `wasm` was read from and its stamp
    /// taken *before* reading it, recorded in the source index.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        wasm: &[u8],
        source: Option<(&Path, FileStamp)>,
    ) -> wasmtime::Result<Component> {
        let key = self.key(wasm);
        if let Some((path, stamp)) = source {
            self.remember(path, stamp, &key);
        }
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

    /// Where the source index keeps the line for the component file at `path`.
    fn index_path(&self, path: &Path) -> PathBuf {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let digest = Sha256::digest(absolute.as_os_str().as_encoded_bytes());
        self.dir.join(SOURCES).join(hex(&digest))
    }

    /// Record in the source index that the file at `path`, as of `stamp`, has `key`.
    /// Best effort: without the line the file is only read and hashed again.
    fn remember(&self, path: &Path, stamp: FileStamp, key: &str) {
        let index = self.index_path(path);
        let written = create_private_dir(&self.dir.join(SOURCES)).and_then(|()| {
            let mut file =
                tempfile::Builder::new().prefix(TEMP_PREFIX).tempfile_in(self.dir.join(SOURCES))?;
            file.write_all(stamp.line(key).as_bytes())?;
            file.persist(&index).map_err(|err| err.error)?;
            Ok(())
        });
        if let Err(err) = written {
            tracing::debug!(index = %index.display(), "cannot update the component cache's source index: {err}");
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
        let check = match std::fs::read_to_string(self.path(key, CHECKSUM)) {
            Ok(check) => check,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(format!("cannot read its check: {err}")),
        };
        let compiled = self.path(key, COMPILED);
        let found =
            file_check_line(&compiled).map_err(|err| format!("cannot read the compiled component: {err}"))?;
        if check.trim() != found {
            return Err("its checksum does not match (a corrupt or partly written file)".into());
        }
        // SAFETY: the file holds exactly what `store` wrote from `precompile_component`
        // (the checksum matches), rill never changes an entry in place, and wasmtime
        // refuses code compiled for another version or configuration. See the module
        // docs for who may write the cache.
        #[allow(unsafe_code, reason = "loading a checked cache entry is the point of the cache")]
        let component = unsafe { Component::deserialize_file(engine, &compiled) };
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
        self.write_atomically(
            &self.path(key, CHECKSUM),
            check_line(compiled.len() as u64, crc32fast::hash(compiled)).as_bytes(),
        )
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
        self.evict_sources();
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

impl ComponentCache {
    /// Keep the source index within [`MAX_CACHE_SOURCES`] lines, removing the least
    /// recently written first.
    fn evict_sources(&self) {
        let Ok(listing) = std::fs::read_dir(self.dir.join(SOURCES)) else { return };
        let mut lines: Vec<(SystemTime, PathBuf)> = listing
            .flatten()
            .filter_map(|entry| Some((entry.metadata().ok()?.modified().ok()?, entry.path())))
            .collect();
        let keep = MAX_CACHE_SOURCES;
        if lines.len() > keep {
            lines.sort();
            let excess = lines.len() - keep;
            for (_, path) in lines.into_iter().take(excess) {
                remove_logged(&path);
            }
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
fn check_line(len: u64, crc: u32) -> String {
    format!("{len} {crc:08x}")
}

/// The check line of the file at `path`, read through one small buffer: reading a
/// compiled Python component (tens of MB) whole into a new buffer cost more than the
/// checksum itself (page faults on fresh memory).
fn file_check_line(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buffer = vec![0; 1 << 20];
    let (mut hasher, mut len) = (crc32fast::Hasher::new(), 0u64);
    loop {
        match file.read(&mut buffer) {
            Ok(0) => return Ok(check_line(len, hasher.finalize())),
            Ok(n) => {
                hasher.update(&buffer[..n]);
                len += n as u64;
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
