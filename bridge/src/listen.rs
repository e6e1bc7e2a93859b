//! Which addresses the bridge may listen on: [`resolve`] turns `HOST:PORT` into a socket
//! address and refuses anything that is not loopback (`127.0.0.0/8`, `::1`) — an IP literal
//! directly, a name by every address it resolves to — unless the caller explicitly allows it.
//! Binding is `serve.rs`'s.

use std::net::{IpAddr, SocketAddr};

use crate::Error;

/// Whether `ip` is a loopback address (an IPv4-mapped IPv6 loopback counts).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Resolves `given` (`HOST:PORT`, `[V6]:PORT`) to the address to bind. Every address a name
/// resolves to must be loopback, unless `allow_non_loopback`.
pub async fn resolve(given: &str, allow_non_loopback: bool) -> Result<SocketAddr, Error> {
    let bad = || Error::BadListen {
        given: given.to_owned(),
    };
    if let Ok(addr) = given.parse::<SocketAddr>() {
        return check(given, vec![addr], allow_non_loopback);
    }
    let (host, port) = given.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() || host.contains(['[', ']', '/']) {
        return Err(bad());
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(given)
        .await
        .map_err(|source| Error::Resolve {
            given: given.to_owned(),
            source,
        })?
        .collect();
    check(given, addrs, allow_non_loopback)
}

fn check(given: &str, addrs: Vec<SocketAddr>, allow: bool) -> Result<SocketAddr, Error> {
    let first = *addrs.first().ok_or_else(|| Error::BadListen {
        given: given.to_owned(),
    })?;
    if !allow && let Some(outside) = addrs.iter().find(|a| !is_loopback(a.ip())) {
        return Err(Error::NotLoopback {
            given: given.to_owned(),
            addr: outside.ip(),
        });
    }
    // Prefer IPv4 loopback for a name like localhost: it is what the printed URL names.
    Ok(addrs
        .iter()
        .copied()
        .find(SocketAddr::is_ipv4)
        .unwrap_or(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_literals_and_localhost_pass() {
        for ok in ["127.0.0.1:0", "127.1.2.3:7727", "[::1]:0", "localhost:0"] {
            let addr = resolve(ok, false)
                .await
                .unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(is_loopback(addr.ip()), "{ok}");
        }
    }

    #[tokio::test]
    async fn everything_else_is_refused_unless_allowed() {
        for no in [
            "0.0.0.0:7727",
            "[::]:7727",
            "192.168.1.10:7727",
            "10.0.0.1:80",
            "[::ffff:10.0.0.1]:1",
        ] {
            let err = resolve(no, false).await.expect_err(no);
            assert!(matches!(err, Error::NotLoopback { .. }), "{no}: {err}");
            assert!(err.to_string().contains("not a loopback address"), "{err}");
            assert!(resolve(no, true).await.is_ok(), "{no} with --unsafe-listen");
        }
        for bad in ["7727", "127.0.0.1", ":80", "localhost:http", "[::1:80"] {
            assert!(
                matches!(resolve(bad, false).await, Err(Error::BadListen { .. })),
                "{bad}"
            );
        }
    }
}
