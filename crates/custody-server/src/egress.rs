//! Where the server may send requests on its users' behalf.
//!
//! Webhook and Slack targets are URLs users give; without a check, a
//! reader of delivery results could make the server fetch its own
//! internal services (cloud metadata at 169.254.169.254, a database admin
//! page on 10.x) — server-side request forgery. So a target must be
//! http(s), and every address its host resolves to must be public, both
//! when the action is saved and at every send: the HTTP client's resolver
//! is [`GuardedResolver`], so a name that resolved to a public address
//! yesterday and to a private one now (DNS rebinding) is refused, and the
//! connection goes only to the addresses that were checked. Redirects are
//! not followed. `--notify-allow-private` lifts the address check, for
//! installations whose receivers are internal (and for tests).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What a target may be.
#[derive(Debug, Clone, Copy, Default)]
pub struct EgressPolicy {
    pub allow_private: bool,
}

/// Why a target is refused; said to the user who gave it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

impl EgressPolicy {
    /// Checks a target URL as written: scheme, host, and (for an address
    /// written as such) the address. Names are checked when resolved.
    pub fn check_url(&self, raw: &str) -> Result<reqwest::Url, Refused> {
        let url = reqwest::Url::parse(raw)
            .map_err(|e| Refused(format!("target URL '{raw}' is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused(format!("target URL '{raw}' is not an http(s) URL")));
        }
        match url.host() {
            None => Err(Refused(format!("target URL '{raw}' has no host"))),
            Some(url::Host::Ipv4(a)) => self.check_ip(IpAddr::V4(a), raw).map(|_| url),
            Some(url::Host::Ipv6(a)) => self.check_ip(IpAddr::V6(a), raw).map(|_| url),
            Some(url::Host::Domain(_)) => Ok(url),
        }
    }

    /// Checks a URL and every address its host resolves to now.
    pub async fn check_target(&self, raw: &str) -> Result<reqwest::Url, Refused> {
        let url = self.check_url(raw)?;
        if let Some(url::Host::Domain(host)) = url.host() {
            let port = url.port_or_known_default().unwrap_or(443);
            self.resolve(host, port).await?;
        }
        Ok(url)
    }

    fn check_ip(&self, ip: IpAddr, what: &str) -> Result<(), Refused> {
        if self.allow_private || is_public(ip) {
            Ok(())
        } else {
            Err(Refused(format!(
                "target '{what}' is a private, loopback or otherwise internal address ({ip}); \
                 the server sends notifications to public addresses only unless it is started with --notify-allow-private"
            )))
        }
    }

    /// The addresses of `host`, all of them checked.
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| Refused(format!("cannot resolve the host '{host}'")))?
            .collect();
        if addrs.is_empty() {
            return Err(Refused(format!("the host '{host}' has no address")));
        }
        for a in &addrs {
            self.check_ip(a.ip(), host)?;
        }
        Ok(addrs)
    }
}

/// Whether an address is one the public internet routes to: not loopback,
/// private (RFC 1918, ULA), link-local (cloud metadata), shared (CGNAT),
/// multicast, documentation, benchmarking or reserved; IPv4 inside IPv6
/// (mapped, NAT64, 6to4) is judged as the IPv4 it carries.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => public_v4(a),
        IpAddr::V6(a) => public_v6(a),
    }
}

fn public_v4(a: Ipv4Addr) -> bool {
    let [x, y, z, _] = a.octets();
    !(a.is_unspecified()
        || a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_broadcast()
        || a.is_multicast()
        || x == 0
        || (x == 100 && (64..128).contains(&y))
        || (x == 192 && y == 0 && z == 0)
        || (x == 192 && y == 0 && z == 2)
        || (x == 198 && (y == 18 || y == 19))
        || (x == 198 && y == 51 && z == 100)
        || (x == 203 && y == 0 && z == 113)
        || x >= 240)
}

fn public_v6(a: Ipv6Addr) -> bool {
    if let Some(v4) = a.to_ipv4_mapped() {
        return public_v4(v4);
    }
    let s = a.segments();
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return public_v4(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ));
    }
    if s[0] == 0x2002 {
        return public_v4(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    !(a.is_unspecified()
        || a.is_loopback()
        || a.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard
        // IPv4-compatible (deprecated) ::a.b.c.d
        || (s[0..6] == [0, 0, 0, 0, 0, 0]))
}

/// The HTTP client's resolver: every address checked, only checked ones
/// handed to the connector.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub policy: EgressPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let addrs = policy
                .resolve(name.as_str(), 0)
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The client notifications are sent with: no redirects, no proxies (a
/// proxy would resolve names itself, past the check), the guarded
/// resolver.
pub fn client(policy: EgressPolicy) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_not_public() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:c0a8:0101::1",
            "2001:db8::1",
            "::127.0.0.1",
        ] {
            assert!(!is_public(a.parse().unwrap()), "{a}");
        }
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn urls_are_checked_as_written() {
        let p = EgressPolicy::default();
        assert!(p.check_url("https://hooks.example.com/x").is_ok());
        for bad in [
            "ftp://example.com/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]:8080/",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f.0.0.1/",
            "not a url",
        ] {
            assert!(p.check_url(bad).is_err(), "{bad}");
        }
        let open = EgressPolicy {
            allow_private: true,
        };
        assert!(open.check_url("http://127.0.0.1:9/").is_ok());
    }

    #[tokio::test]
    async fn names_are_checked_when_resolved() {
        let p = EgressPolicy::default();
        let e = p.check_target("http://localhost:9/hook").await.unwrap_err();
        assert!(e.0.contains("127.0.0.1") || e.0.contains("::1"), "{e}");
    }
}
