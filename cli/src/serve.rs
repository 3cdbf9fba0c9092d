//! `rill serve`: the manifest's functions and rill's channels as an iii-compatible engine
//! (see the `rill-server` crate).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use rill::manifest::Manifest;
use rill::{Host, HostConfig};
use rill_server::{DEFAULT_LISTEN, Server, ServerConfig};

use crate::exit;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The manifest declaring the functions to serve.
    #[arg(long, default_value = "rill.toml", value_name = "PATH")]
    manifest: PathBuf,
    /// Address to listen on. The default is loopback only: the functions are untrusted.
    /// Port 0 picks a free port; the address is printed on stdout once listening.
    #[arg(long, default_value = DEFAULT_LISTEN, value_name = "ADDR")]
    listen: String,
    /// Require `Authorization: Bearer TOKEN` on every request (iii SDKs send their
    /// `III_TOKEN` this way).
    #[arg(long, env = "RILL_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Compile components without the on-disk compilation cache.
    #[arg(long)]
    no_cache: bool,
}

pub(crate) async fn run(args: ServeArgs) -> ExitCode {
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(exit::HOST)
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = HostConfig::default().with_cache_dir(if args.no_cache {
        None
    } else {
        rill_build::default_cache_dir()
    });
    let mut manifest = Manifest::from_file(&args.manifest).context("cannot read the manifest")?;
    rill_build::build_manifest(&mut manifest).context("cannot build the manifest's functions")?;
    let host = Host::with_manifest(&manifest, config).context("cannot start the host")?;
    for id in host.function_ids() {
        host.prepare(&id).await.with_context(|| format!("cannot load {id}"))?;
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr().context("cannot read the listening address")?;
    println!("rill serve: listening on ws://{address} ({} functions)", host.function_ids().len());
    let mut server_config = ServerConfig::default();
    if let Some(token) = args.token.filter(|t| !t.is_empty()) {
        server_config = server_config.with_token(token);
    }
    let server = Server::new(host, server_config)?;
    server.serve(listener, shutdown_signal()).await;
    eprintln!("rill serve: stopped");
    Ok(())
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
