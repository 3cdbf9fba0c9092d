//! Any bytes as a `rill.toml`: parsing never panics, and applying what parsed never does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill::Limits;
use rill::manifest::Manifest;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(manifest) = Manifest::parse(text, "/srv") {
        let mut limits = Limits::default();
        manifest.host.limits.apply(&mut limits);
        for function in manifest.functions.values() {
            function.limits.apply(&mut limits);
            let _ = manifest.source(function);
            let _ = manifest.capabilities(function);
        }
    }
});
