//! Capabilities: what a function may reach outside its sandbox. Deny by default.
//!
//! A function granted nothing sees no files, no environment variables and no network.
//! Grants are per function (`[functions."id".capabilities]` in `rill.toml`, or
//! [`FunctionConfig::capabilities`](crate::FunctionConfig::capabilities)):
//!
//! ```toml
//! [functions."files::archive".capabilities]
//! dirs = [{ host = "data", guest = "/data" }, { host = "out", guest = "/out", writable = true }]
//! env = { REGION = "eu" }
//! network = ["127.0.0.1:8080", "10.1.2.3:*"]
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use serde::Deserialize;

/// What a function may reach. The default grants nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Capabilities {
    /// Host directories the function sees, read-only unless `writable`.
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
    /// Environment variables the function sees (only these; nothing is inherited).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Addresses the function may connect to (TCP) or send to (UDP). Empty: no network.
    #[serde(default)]
    pub network: Vec<NetworkGrant>,
}

/// One preopened directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DirGrant {
    /// The directory on the host (relative paths are resolved against the manifest).
    pub host: PathBuf,
    /// Where the function sees it (for example `/data`).
    pub guest: String,
    /// Whether the function may create, change and delete files in it.
    #[serde(default)]
    pub writable: bool,
}

impl DirGrant {
    /// A read-only grant of `host` at `guest`.
    pub fn read_only(host: impl Into<PathBuf>, guest: impl Into<String>) -> DirGrant {
        DirGrant { host: host.into(), guest: guest.into(), writable: false }
    }

    /// A read-write grant of `host` at `guest`.
    pub fn writable(host: impl Into<PathBuf>, guest: impl Into<String>) -> DirGrant {
        DirGrant { host: host.into(), guest: guest.into(), writable: true }
    }
}

/// One allowed network peer: an IP address and a port, or any port (`ip:*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetworkGrant {
    /// The peer's address.
    pub ip: IpAddr,
    /// The peer's port; `None` allows every port.
    pub port: Option<u16>,
}

impl NetworkGrant {
    /// Whether this grant allows `addr`.
    pub fn allows(&self, addr: &SocketAddr) -> bool {
        addr.ip() == self.ip && self.port.is_none_or(|port| port == addr.port())
    }
}

/// Why a network grant did not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid network grant {0:?}: expected IP:PORT or IP:* (IPv6 in brackets, e.g. [::1]:80)")]
pub struct NetworkGrantError(String);

impl FromStr for NetworkGrant {
    type Err = NetworkGrantError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || NetworkGrantError(text.to_owned());
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(NetworkGrant { ip: addr.ip(), port: Some(addr.port()) });
        }
        let host = text.strip_suffix(":*").ok_or_else(err)?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let ip = host.parse().map_err(|_| err())?;
        Ok(NetworkGrant { ip, port: None })
    }
}

impl fmt::Display for NetworkGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.ip, self.port) {
            (IpAddr::V6(ip), Some(port)) => write!(f, "[{ip}]:{port}"),
            (IpAddr::V6(ip), None) => write!(f, "[{ip}]:*"),
            (ip, Some(port)) => write!(f, "{ip}:{port}"),
            (ip, None) => write!(f, "{ip}:*"),
        }
    }
}

impl<'de> Deserialize<'de> for NetworkGrant {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_grants_parse_and_match() {
        let exact: NetworkGrant = "127.0.0.1:8080".parse().unwrap();
        assert!(exact.allows(&"127.0.0.1:8080".parse().unwrap()));
        assert!(!exact.allows(&"127.0.0.1:8081".parse().unwrap()));
        assert!(!exact.allows(&"127.0.0.2:8080".parse().unwrap()));
        let any_port: NetworkGrant = "10.1.2.3:*".parse().unwrap();
        assert!(any_port.allows(&"10.1.2.3:1".parse().unwrap()));
        let v6: NetworkGrant = "[::1]:*".parse().unwrap();
        assert!(v6.allows(&"[::1]:443".parse().unwrap()));
        assert_eq!(v6.to_string(), "[::1]:*");
        for bad in ["localhost:80", "127.0.0.1", "127.0.0.1:x", "*:*", ""] {
            assert!(bad.parse::<NetworkGrant>().is_err(), "{bad}");
        }
    }

    #[test]
    fn nothing_is_granted_by_default() {
        let caps = Capabilities::default();
        assert!(caps.dirs.is_empty() && caps.env.is_empty() && caps.network.is_empty());
    }
}
