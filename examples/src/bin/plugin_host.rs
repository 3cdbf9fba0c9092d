//! An application that hosts user plugins with rill: its own wasmtime `Store`, its own
//! imports, and rill's channels beside them.
//!
//! The application defines its own plugin world (`examples/wit/plugin.wit`): a plugin
//! imports rill's `channels` interface and the application's `app` interface (a `log`
//! function), and exports `number-lines`. The application runs each plugin in a store
//! whose data is its own type, `PluginState`, which implements `WasiView` for WASI and
//! `rill::RillView` for rill's imports; `rill::add_to_linker` adds those imports to the
//! application's own linker, next to its `app` import.
//!
//! The stream goes: this program → channel 1 → the plugin (numbers the lines) → channel 2
//! → `files::process`, a function of the rill host (counts bytes, sha256). The plugin and
//! the host's function share channels through refs, as any two rill functions do. The
//! program prints the plugin's result (or error), its log lines and `files::process`'s
//! result (or error) as one JSON object, and fails if either failed.
//!
//! A plugin that fails must not look like a clean end to whoever reads what it wrote:
//! the application records the failure with `RillCtx::fail` and drops the plugin's store,
//! so `files::process` sees `aborted` with the reason. The plugin traps on input that is
//! not text (a NUL byte) to show it.
//!
//! Run it from the repository root (it reads `rill.toml` for `files::process`; the plugin
//! is the `line-numbers` guest crate, built before it runs):
//!
//! ```sh
//! cargo run -p rill-examples --bin plugin_host -- README.md
//! ```

#![allow(clippy::print_stdout, reason = "an example program prints its result")]

use anyhow::{Context, bail};
use rill::{ChannelOptions, ChannelRef, HostConfig, Limits, RillCtx, RillCtxView, RillView};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod bindings {
    wasmtime::component::bindgen!({
        world: "example:plugin/plugin",
        path: ["../wit", "wit"],
        exports: { default: async },
        // The plugin's rill types are rill's own, so its refs are `rill::bindings` refs.
        with: { "rill:host/channels": ::rill::bindings::channels },
    });
}

use bindings::example::plugin::app;

/// The data of a plugin's store: the application's own state next to WASI's and rill's.
struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    rill: RillCtx,
    /// What the plugin logged through the application's `app.log`.
    log: Vec<String>,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl RillView for PluginState {
    fn rill(&mut self) -> RillCtxView<'_> {
        RillCtxView { ctx: &mut self.rill, table: &mut self.table }
    }
}

/// The application's own import.
impl app::Host for PluginState {
    fn log(&mut self, message: String) {
        self.log.push(message);
    }
}

/// Where the plugin's component is built (the `line-numbers` crate of the guest
/// workspace).
const PLUGIN_CRATE: &str = "guests/rust/examples/line-numbers";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(path), None) = (args.next(), args.next()) else {
        bail!("usage: plugin_host FILE (run from the repository root, where rill.toml is)");
    };
    let input = tokio::fs::read(&path).await.with_context(|| format!("cannot read {path}"))?;

    // The rill host: its broker carries the channels, its functions are callable.
    // It needs `files::process` (a Rust guest; the manifest's guests in other languages
    // are not built).
    let host = rill_build::host_from_manifest_for("rill.toml".as_ref(), HostConfig::default(), |id| {
        id == "files::process"
    })
    .context("cannot load rill.toml")?;
    host.prepare("files::process").await?;

    // The application's own engine and linker: WASI, rill's imports and its own `app`.
    let engine = Engine::default();
    let mut linker: Linker<PluginState> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    rill::add_to_linker(&mut linker)?;
    app::add_to_linker::<_, HasSelf<PluginState>>(&mut linker, |state| state)?;
    let plugin_path = rill_build::build_crate(PLUGIN_CRATE.as_ref()).context("cannot build the plugin")?;
    let component = Component::from_file(&engine, &plugin_path)?;

    // channel 1: the file, from this program to the plugin;
    // channel 2: the numbered lines, from the plugin to `files::process`.
    let options = ChannelOptions::default();
    let (first, second) = (host.create_channel(&options)?, host.create_channel(&options)?);
    let process = host.trigger("files::process", &json!({ "reader": second.reader_ref }));
    let plugin = number_lines(
        &engine,
        &linker,
        &component,
        host.context("plugin_host::line-numbers", &Limits::default()),
        first.reader_ref,
        second.writer_ref,
    );
    let mut writer = first.writer;
    let feed = async move {
        writer.write_all(&input).await?;
        writer.shutdown().await // the clean end
    };
    let ((numbered, log), fed, processed) = tokio::join!(plugin, feed, process);
    fed.context("feeding the plugin")?;

    let ok = numbered.is_ok() && processed.is_ok();
    let report = json!({
        "plugin": match numbered {
            Ok(lines) => json!({ "lines": lines, "log": log }),
            Err(error) => json!({ "error": error, "log": log }),
        },
        "files::process": processed.unwrap_or_else(|error| json!({ "error": error.to_string() })),
    });
    println!("{report}");
    if !ok {
        bail!("the stream did not get through");
    }
    Ok(())
}

/// Run the plugin's `number-lines` on `input` and `output` in a store of its own, with
/// `rill` as rill's part of it. Returns what the plugin returned (or why it failed) and
/// what it logged. A failure is recorded before the store is dropped, so the reader of
/// `output` sees `aborted` with the reason.
async fn number_lines(
    engine: &Engine,
    linker: &Linker<PluginState>,
    component: &Component,
    rill: RillCtx,
    input: ChannelRef,
    output: ChannelRef,
) -> (Result<u64, String>, Vec<String>) {
    let state =
        PluginState { wasi: WasiCtx::builder().build(), table: ResourceTable::new(), rill, log: vec![] };
    let mut store = Store::new(engine, state);
    let outcome = match bindings::Plugin::instantiate_async(&mut store, component, linker).await {
        Ok(plugin) => match plugin.call_number_lines(&mut store, &input.into(), &output.into()).await {
            Ok(returned) => returned,
            Err(trap) => Err(match trap.downcast_ref::<Trap>() {
                Some(trap) => format!("the plugin trapped: {trap}"),
                None => format!("the plugin failed: {trap:#}"),
            }),
        },
        Err(err) => Err(format!("cannot instantiate the plugin: {err:#}")),
    };
    if let Err(reason) = &outcome {
        store.data_mut().rill.fail(reason);
    }
    let log = std::mem::take(&mut store.data_mut().log);
    drop(store); // the plugin's channel ends go with it
    (outcome, log)
}
