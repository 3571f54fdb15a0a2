//! Where webhook delivery may connect: the SSRF policy on URLs and on resolved addresses.

#[cfg(any(test, feature = "test-support"))]
use std::collections::HashMap;
use std::error::Error;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
#[cfg(any(test, feature = "test-support"))]
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Instance-metadata and credential endpoints. They hand out cloud credentials, so they stay
/// refused even in local development, where loopback and private targets are allowed.
const METADATA_ADDRESSES: [IpAddr; 6] = [
    // AWS, GCP, Azure, OpenStack instance metadata.
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    // ECS task metadata and container credentials.
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
    // EKS Pod Identity agent.
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 23)),
    // Alibaba Cloud instance metadata.
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    // AWS IMDS over IPv6.
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
    // EKS Pod Identity agent over IPv6.
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)),
];

/// Which targets delivery may connect to.
#[derive(Clone, Copy, Debug)]
pub struct TargetPolicy {
    /// The development switch: allows loopback, private and other non-public addresses (but
    /// never cloud metadata endpoints).
    pub allow_private: bool,
}

impl TargetPolicy {
    /// Only public internet addresses: what a deployment uses.
    pub const PUBLIC_ONLY: Self = Self {
        allow_private: false,
    };

    /// Refuses an address delivery must not connect to; the error names the address and rule.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        // An IPv6 address that embeds an IPv4 one reaches that IPv4 host, so it is judged as it.
        let effective = embedded_ipv4(ip).map_or(ip, IpAddr::V4);
        let shown = if effective == ip {
            ip.to_string()
        } else {
            format!("{ip} (IPv4 {effective})")
        };
        if METADATA_ADDRESSES.contains(&effective) {
            return Err(format!("{shown} is a cloud metadata address"));
        }
        if self.allow_private {
            return Ok(());
        }
        let rule = match effective {
            IpAddr::V4(v4) => ipv4_rule(v4),
            IpAddr::V6(v6) => ipv6_rule(v6),
        };
        match rule {
            Some(rule) => Err(format!("{shown} is {rule}")),
            None => Ok(()),
        }
    }

    /// Checks what the resolver cannot: the scheme and IP-literal hosts (reqwest connects to
    /// those without resolving). `localhost` names are refused here too, so the reason names the
    /// host the user typed rather than whichever loopback address it resolved to.
    pub fn check_url(&self, url: &Url) -> Result<(), String> {
        match url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(format!(
                    "scheme {other:?} is not allowed (use http or https)"
                ))
            }
        }
        match url.host() {
            None => Err(format!("{url} has no host")),
            Some(Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            Some(Host::Domain(domain)) => {
                let name = domain.trim_end_matches('.').to_ascii_lowercase();
                if !self.allow_private && (name == "localhost" || name.ends_with(".localhost")) {
                    Err(format!("{domain} is a loopback host name"))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// The addresses among `resolved` this policy allows; when there are none, why the first
    /// refused one was refused (`None` when nothing was resolved at all).
    fn allowed(&self, resolved: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, Option<String>> {
        let mut allowed = Vec::new();
        let mut first_refusal = None;
        for addr in resolved {
            match self.check_ip(addr.ip()) {
                Ok(()) => allowed.push(addr),
                Err(reason) => {
                    first_refusal.get_or_insert(reason);
                }
            }
        }
        if allowed.is_empty() {
            Err(first_refusal)
        } else {
            Ok(allowed)
        }
    }

    /// The DNS resolver that enforces this policy on every address a connection may use.
    pub fn resolver(self) -> GuardedResolver {
        self.resolver_with(Lookup::System)
    }

    /// Like [`Self::resolver`], looking names up in `lookup`.
    pub fn resolver_with(self, lookup: Lookup) -> GuardedResolver {
        GuardedResolver {
            policy: self,
            lookup,
        }
    }
}

/// Where host names are looked up, for connections and for the checks made when a URL is given.
#[derive(Clone, Debug, Default)]
pub enum Lookup {
    /// The system resolver, through tokio: what every deployment and local mode use.
    #[default]
    System,
    /// These names only, each with its addresses; any other name does not resolve. Points a
    /// name at any address without asking DNS, for tests.
    #[cfg(any(test, feature = "test-support"))]
    Hosts(Arc<HashMap<String, Vec<IpAddr>>>),
}

impl Lookup {
    /// A [`Lookup::Hosts`] table of `(name, addresses)`.
    #[cfg(any(test, feature = "test-support"))]
    pub fn hosts<'a>(entries: impl IntoIterator<Item = (&'a str, Vec<IpAddr>)>) -> Self {
        let table = entries
            .into_iter()
            .map(|(name, ips)| (name.to_ascii_lowercase(), ips))
            .collect();
        Lookup::Hosts(Arc::new(table))
    }

    async fn addresses(&self, host: &str) -> io::Result<Vec<SocketAddr>> {
        match self {
            Lookup::System => Ok(tokio::net::lookup_host((host, 0)).await?.collect()),
            #[cfg(any(test, feature = "test-support"))]
            Lookup::Hosts(table) => {
                let name = host.trim_end_matches('.').to_ascii_lowercase();
                let ips = match name.parse::<IpAddr>() {
                    Ok(ip) => vec![ip],
                    Err(_) => table.get(&name).cloned().ok_or_else(|| {
                        io::Error::new(io::ErrorKind::NotFound, "not in the hosts table")
                    })?,
                };
                Ok(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect())
            }
        }
    }
}

/// The rule a refused destination breaks, as a caller giving a URL reads it.
const DESTINATION_RULE: &str =
    "Delivery refuses private, loopback, link-local and metadata addresses";

/// How long a URL's check waits for DNS before leaving the name to the guard at connect time:
/// a slow resolver must not hold up the request that gave the URL.
const DESTINATION_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// The IPv4 address an IPv6 address carries, for the forms that route to it: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`) and well-known-prefix NAT64
/// (`64:ff9b::a.b.c.d`).
fn embedded_ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else { return None };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let o = v6.octets();
    let low32 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    // `::` and `::1` are IPv6's own unspecified and loopback addresses, not IPv4-compatible.
    let compatible = s[..6] == [0; 6] && !matches!(s[6..], [0, 0] | [0, 1]);
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    (compatible || nat64).then_some(low32)
}

fn ipv4_rule(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let rule = if ip.is_unspecified() {
        "an unspecified address"
    } else if a == 0 {
        "a \"this network\" address (0.0.0.0/8)"
    } else if ip.is_loopback() {
        "a loopback address"
    } else if ip.is_private() {
        "a private address (RFC 1918)"
    } else if a == 100 && (64..128).contains(&b) {
        "a shared CGNAT address (100.64.0.0/10)"
    } else if ip.is_link_local() {
        "a link-local address"
    } else if a == 192 && b == 0 && c == 0 {
        "an IETF protocol assignment address (192.0.0.0/24)"
    } else if ip.is_documentation() {
        "a documentation address"
    } else if a == 198 && (b & 0xfe) == 18 {
        "a benchmarking address (198.18.0.0/15)"
    } else if ip.is_multicast() {
        "a multicast address"
    } else if ip.is_broadcast() {
        "the broadcast address"
    } else if a >= 240 {
        "a reserved address (240.0.0.0/4)"
    } else {
        return None;
    };
    Some(rule)
}

fn ipv6_rule(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let rule = if ip.is_unspecified() {
        "an unspecified address"
    } else if ip.is_loopback() {
        "a loopback address"
    } else if ip.is_unique_local() {
        "a unique local address (fc00::/7)"
    } else if ip.is_unicast_link_local() {
        "a link-local address (fe80::/10)"
    } else if (s[0] & 0xffc0) == 0xfec0 {
        "a site-local address (fec0::/10)"
    } else if ip.is_multicast() {
        "a multicast address"
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        "a documentation address (2001:db8::/32)"
    } else if s[..4] == [0x100, 0, 0, 0] {
        "a discard-only address (100::/64)"
    } else if s[..3] == [0x64, 0xff9b, 1] {
        // Local-use NAT64 places the IPv4 address by prefix length, which we cannot know.
        "a local-use NAT64 address (64:ff9b:1::/48)"
    } else {
        return None;
    };
    Some(rule)
}

/// A reqwest DNS resolver that drops addresses the policy forbids. reqwest connects only to the
/// addresses it returns, so the checked address is the connected one (no DNS rebinding window).
#[derive(Clone, Debug)]
pub struct GuardedResolver {
    policy: TargetPolicy,
    lookup: Lookup,
}

impl GuardedResolver {
    pub fn policy(&self) -> TargetPolicy {
        self.policy
    }

    /// The addresses of `host` the policy allows, or why there are none.
    pub async fn resolve_allowed(&self, host: &str) -> Result<Vec<SocketAddr>, TargetRefused> {
        let resolved = self
            .lookup
            .addresses(host)
            .await
            .map_err(|e| TargetRefused {
                message: format!("could not resolve {host}: {e}"),
            })?;
        self.policy.allowed(resolved).map_err(|refusal| {
            let message = match refusal {
                Some(reason) => format!("refusing to connect to {host}: {reason}"),
                None => format!("could not resolve {host}: no addresses"),
            };
            TargetRefused { message }
        })
    }

    /// Refuses a URL given for delivery whose every connection this guard would refuse, as far
    /// as that can be told now: IP literals in any notation (parsing normalized them), IPv6
    /// that embeds IPv4, `localhost` names, and names resolving only to refused addresses.
    /// A name that does not resolve now passes: where it leads later is judged at connect time.
    /// With private targets allowed, names are not looked up at all.
    pub async fn check_destination(&self, url: &Url) -> Result<(), String> {
        if !matches!(url.scheme(), "http" | "https") {
            return self.policy.check_url(url);
        }
        self.policy
            .check_url(url)
            .map_err(|reason| format!("{DESTINATION_RULE}: {reason}"))?;
        let Some(Host::Domain(host)) = url.host() else {
            return Ok(());
        };
        if self.policy.allow_private {
            // Where private targets are allowed (a developer's machine) only metadata addresses
            // are refused; a name leading there is caught at connect time, and no name is
            // looked up just to be given.
            return Ok(());
        }
        let lookup = self.lookup.addresses(host);
        let Ok(Ok(resolved)) = tokio::time::timeout(DESTINATION_LOOKUP_TIMEOUT, lookup).await
        else {
            return Ok(());
        };
        match self.policy.allowed(resolved) {
            Err(Some(reason)) => Err(format!(
                "{DESTINATION_RULE}: {host} resolves only to such addresses ({reason})"
            )),
            Ok(_) | Err(None) => Ok(()),
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = self.clone();
        Box::pin(async move {
            let allowed = resolver.resolve_allowed(name.as_str()).await?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Why the resolver gave reqwest no address; its message is shown in the delivery log.
#[derive(Debug)]
pub struct TargetRefused {
    message: String,
}

impl fmt::Display for TargetRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for TargetRefused {}

#[cfg(test)]
mod tests {
    use super::*;

    const PRODUCTION: TargetPolicy = TargetPolicy::PUBLIC_ONLY;
    const DEVELOPMENT: TargetPolicy = TargetPolicy {
        allow_private: true,
    };

    fn refusal(policy: TargetPolicy, ip: &str) -> String {
        let ip: IpAddr = ip.parse().unwrap();
        policy
            .check_ip(ip)
            .expect_err(&format!("{ip} should be refused"))
    }

    fn assert_allowed(ip: &str) {
        let ip: IpAddr = ip.parse().unwrap();
        assert_eq!(PRODUCTION.check_ip(ip), Ok(()), "{ip}");
    }

    fn assert_refused(ip: &str, rule: &str) {
        let message = refusal(PRODUCTION, ip);
        let ip: IpAddr = ip.parse().unwrap();
        assert!(
            message.starts_with(&ip.to_string()),
            "{message:?} should name {ip}"
        );
        assert!(message.contains(rule), "{message:?} should say {rule:?}");
        assert_eq!(DEVELOPMENT.check_ip(ip), Ok(()), "{ip} in development");
    }

    fn url(raw: &str) -> Url {
        Url::parse(raw).unwrap()
    }

    #[test]
    fn names_the_address_and_the_rule() {
        assert_eq!(
            refusal(PRODUCTION, "127.0.0.1"),
            "127.0.0.1 is a loopback address"
        );
    }

    #[test]
    fn refuses_every_non_public_ipv4_range() {
        for (ip, rule) in [
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "0.0.0.0/8"),
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("10.0.0.1", "private"),
            ("10.255.255.255", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "CGNAT"),
            ("100.127.255.255", "CGNAT"),
            ("169.254.1.1", "link-local"),
            ("192.0.0.8", "192.0.0.0/24"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
        ] {
            assert_refused(ip, rule);
        }
    }

    #[test]
    fn allows_public_ipv4_including_range_neighbours() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "192.169.0.1",
            "198.17.255.255",
            "198.20.0.1",
            "11.0.0.1",
            "223.255.255.255",
        ] {
            assert_allowed(ip);
        }
    }

    #[test]
    fn refuses_every_non_public_ipv6_range() {
        for (ip, rule) in [
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("100::1", "discard-only"),
            ("64:ff9b:1::a00:1", "local-use NAT64"),
        ] {
            assert_refused(ip, rule);
        }
    }

    #[test]
    fn allows_public_ipv6() {
        for ip in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "64:ff9b::808:808",
        ] {
            assert_allowed(ip);
        }
    }

    #[test]
    fn judges_ipv6_that_embeds_ipv4_as_the_ipv4_address() {
        for (ip, rule) in [
            ("::ffff:127.0.0.1", "(IPv4 127.0.0.1) is a loopback address"),
            ("::ffff:10.1.2.3", "(IPv4 10.1.2.3) is a private address"),
            ("::ffff:192.168.0.1", "private"),
            ("::ffff:100.64.0.1", "CGNAT"),
            ("::127.0.0.1", "(IPv4 127.0.0.1) is a loopback address"),
            ("::10.0.0.1", "private"),
            ("64:ff9b::7f00:1", "(IPv4 127.0.0.1) is a loopback address"),
        ] {
            assert_refused(ip, rule);
        }
        let public: IpAddr = "::ffff:8.8.8.8".parse().unwrap();
        assert_eq!(PRODUCTION.check_ip(public), Ok(()));
    }

    #[test]
    fn refuses_metadata_addresses_even_when_private_targets_are_allowed() {
        for ip in [
            "169.254.169.254",
            "169.254.170.2",
            "169.254.170.23",
            "100.100.100.200",
            "fd00:ec2::254",
            "fd00:ec2::23",
            "::ffff:169.254.169.254",
            "::169.254.169.254",
        ] {
            for policy in [PRODUCTION, DEVELOPMENT] {
                let message = refusal(policy, ip);
                let shown = ip.parse::<IpAddr>().unwrap().to_string();
                assert!(message.starts_with(&shown), "{message:?}");
                assert!(
                    message.ends_with("is a cloud metadata address"),
                    "{message:?}"
                );
            }
        }
    }

    #[test]
    fn allows_private_targets_in_development() {
        for ip in [
            "127.0.0.1",
            "::1",
            "10.0.0.1",
            "192.168.1.1",
            "fd12::1",
            "169.254.1.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(DEVELOPMENT.check_ip(ip), Ok(()), "{ip}");
        }
    }

    #[test]
    fn checks_literal_ip_hosts_in_urls() {
        for (raw, expected) in [
            (
                "http://127.0.0.1:8080/hook",
                "127.0.0.1 is a loopback address",
            ),
            (
                "https://10.0.0.5/",
                "10.0.0.5 is a private address (RFC 1918)",
            ),
            ("http://[::1]/", "::1 is a loopback address"),
            (
                "http://[::ffff:7f00:1]/",
                "::ffff:127.0.0.1 (IPv4 127.0.0.1) is a loopback",
            ),
            (
                "http://169.254.169.254/latest/meta-data/",
                "is a cloud metadata address",
            ),
            ("http://[fd00:ec2::254]/", "is a cloud metadata address"),
            // WHATWG URL parsing turns these spellings into 127.0.0.1 before we see them.
            ("http://2130706433/", "127.0.0.1 is a loopback address"),
            ("http://0x7f.1/", "127.0.0.1 is a loopback address"),
        ] {
            let message = PRODUCTION.check_url(&url(raw)).unwrap_err();
            assert!(message.contains(expected), "{raw}: {message:?}");
        }
        assert!(DEVELOPMENT
            .check_url(&url("http://127.0.0.1:8080/"))
            .is_ok());
        assert!(DEVELOPMENT
            .check_url(&url("http://169.254.169.254/"))
            .is_err());
        assert!(PRODUCTION.check_url(&url("https://93.184.215.14/")).is_ok());
        assert!(PRODUCTION
            .check_url(&url("https://example.com/hook"))
            .is_ok());
    }

    #[test]
    fn refuses_localhost_names_and_non_http_schemes() {
        for raw in [
            "http://localhost/",
            "http://LOCALHOST:3000/",
            "http://localhost./",
            "http://api.localhost/",
        ] {
            let message = PRODUCTION.check_url(&url(raw)).unwrap_err();
            assert!(message.contains("loopback host name"), "{raw}: {message:?}");
            assert!(DEVELOPMENT.check_url(&url(raw)).is_ok(), "{raw}");
        }
        for raw in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://example.com/",
        ] {
            let message = DEVELOPMENT.check_url(&url(raw)).unwrap_err();
            assert!(message.contains("is not allowed"), "{raw}: {message:?}");
        }
    }

    /// A guard looking names up in a fixed table (no DNS): `metadata.google.internal` and
    /// `intranet.example` lead only to refused addresses, `mixed.example` also to a public one.
    fn guard(policy: TargetPolicy) -> GuardedResolver {
        let ip = |raw: &str| raw.parse::<IpAddr>().unwrap();
        policy.resolver_with(Lookup::hosts([
            ("metadata.google.internal", vec![ip("169.254.169.254")]),
            ("intranet.example", vec![ip("10.0.0.7"), ip("fd00::7")]),
            ("mixed.example", vec![ip("10.0.0.7"), ip("93.184.215.14")]),
        ]))
    }

    #[tokio::test]
    async fn a_given_url_is_refused_in_every_ip_notation_before_any_delivery() {
        // The WHATWG parser turns every IPv4 spelling into the dotted address, so the one
        // address rule sees them all.
        for (raw, host, reason) in [
            (
                "http://127.1/",
                "127.0.0.1",
                "127.0.0.1 is a loopback address",
            ),
            (
                "http://0x7f000001/",
                "127.0.0.1",
                "127.0.0.1 is a loopback address",
            ),
            (
                "http://2130706433/",
                "127.0.0.1",
                "127.0.0.1 is a loopback address",
            ),
            (
                "http://0177.0.0.1/",
                "127.0.0.1",
                "127.0.0.1 is a loopback address",
            ),
            (
                "https://0x7f.0.0.1:8443/",
                "127.0.0.1",
                "127.0.0.1 is a loopback address",
            ),
            (
                "http://[::ffff:127.0.0.1]/",
                "[::ffff:7f00:1]",
                "::ffff:127.0.0.1 (IPv4 127.0.0.1) is a loopback address",
            ),
            (
                "http://[::127.0.0.1]/",
                "[::7f00:1]",
                "::7f00:1 (IPv4 127.0.0.1) is a loopback address",
            ),
            ("http://[::1]/", "[::1]", "::1 is a loopback address"),
            (
                "http://[fe80::1]/",
                "[fe80::1]",
                "fe80::1 is a link-local address",
            ),
            (
                "http://10.0.0.1/",
                "10.0.0.1",
                "10.0.0.1 is a private address",
            ),
            (
                "http://012.0.0.1/",
                "10.0.0.1",
                "10.0.0.1 is a private address",
            ),
            (
                "http://169.254.169.254/latest/",
                "169.254.169.254",
                "169.254.169.254 is a cloud metadata address",
            ),
            (
                "http://localhost/",
                "localhost",
                "localhost is a loopback host name",
            ),
            (
                "http://app.localhost./",
                "app.localhost.",
                "loopback host name",
            ),
        ] {
            let url = url(raw);
            assert_eq!(url.host_str(), Some(host), "{raw} parses to {host}");
            let message = guard(PRODUCTION).check_destination(&url).await.unwrap_err();
            assert!(
                message.starts_with(DESTINATION_RULE),
                "{raw}: {message:?} names the rule"
            );
            assert!(message.contains(reason), "{raw}: {message:?}");
            let development = guard(DEVELOPMENT).check_destination(&url).await;
            assert_eq!(
                development.is_ok(),
                !reason.contains("metadata"),
                "{raw} in development: {development:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_given_name_is_refused_only_when_it_resolves_to_refused_addresses_alone() {
        for (raw, reason) in [
            (
                "https://metadata.google.internal/computeMetadata/v1/",
                "metadata.google.internal resolves only to such addresses (169.254.169.254 is a cloud metadata address)",
            ),
            (
                "https://INTRANET.example./hook",
                "intranet.example. resolves only to such addresses (10.0.0.7 is a private address",
            ),
        ] {
            let message = guard(PRODUCTION)
                .check_destination(&url(raw))
                .await
                .unwrap_err();
            assert!(message.starts_with(DESTINATION_RULE), "{message:?}");
            assert!(message.contains(reason), "{raw}: {message:?}");
        }
        // One deliverable address is enough: the connection is made to it alone.
        for raw in [
            "https://mixed.example/hook",
            "https://does-not-resolve.example/hook",
            "https://93.184.215.14/",
        ] {
            assert_eq!(guard(PRODUCTION).check_destination(&url(raw)).await, Ok(()));
        }
        assert_eq!(
            guard(DEVELOPMENT)
                .check_destination(&url("https://intranet.example/"))
                .await,
            Ok(())
        );
        // Where private targets are allowed no name is looked up; a metadata literal is
        // still refused, and the name is refused at connect time.
        assert_eq!(
            guard(DEVELOPMENT)
                .check_destination(&url("https://metadata.google.internal/"))
                .await,
            Ok(())
        );
        assert!(guard(DEVELOPMENT)
            .check_destination(&url("http://169.254.169.254/"))
            .await
            .unwrap_err()
            .contains("cloud metadata address"));
    }

    #[tokio::test]
    async fn the_connect_time_guard_judges_a_looked_up_name_by_the_same_rule() {
        let message = guard(PRODUCTION)
            .resolve_allowed("intranet.example")
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "refusing to connect to intranet.example: 10.0.0.7 is a private address (RFC 1918)"
        );
        let allowed = guard(PRODUCTION)
            .resolve_allowed("mixed.example")
            .await
            .unwrap();
        let ips: Vec<IpAddr> = allowed.iter().map(SocketAddr::ip).collect();
        assert_eq!(ips, ["93.184.215.14".parse::<IpAddr>().unwrap()]);
    }

    #[tokio::test]
    async fn resolver_drops_forbidden_addresses_and_names_the_host() {
        let refused = PRODUCTION.resolver().resolve_allowed("localhost").await;
        let message = refused.unwrap_err().to_string();
        assert!(
            message.starts_with("refusing to connect to localhost: "),
            "{message:?}"
        );
        assert!(message.contains("loopback address"), "{message:?}");

        let allowed = DEVELOPMENT
            .resolver()
            .resolve_allowed("localhost")
            .await
            .unwrap();
        assert!(allowed.iter().all(|addr| addr.ip().is_loopback()));
        assert!(!allowed.is_empty());
    }

    #[tokio::test]
    async fn resolver_refuses_ip_literals_it_is_asked_about() {
        let message = PRODUCTION
            .resolver()
            .resolve_allowed("10.1.2.3")
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "refusing to connect to 10.1.2.3: 10.1.2.3 is a private address (RFC 1918)"
        );
    }
}
