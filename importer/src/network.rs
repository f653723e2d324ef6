//! Which addresses an import may fetch from.
//!
//! A job names any URL its provider likes, and the importer fetches it from
//! inside the platform's network: without a rule, a provider could make it
//! read the platform's own services (loopback), a cloud's metadata service
//! (link-local, 100.64/10, `fd00:ec2::254`) or anything else only the
//! platform reaches. So the loopback, link-local, shared (100.64/10),
//! multicast, broadcast and unspecified ranges are refused unless
//! `--import-allow-network` names them, IPv6 addresses that embed an IPv4 one
//! (mapped, compatible, NAT64, 6to4) as that address; private ranges are
//! allowed (a hospital's PACS is there: a deployment whose private network
//! holds more than PACS should put the importer where it reaches only them). The rule is applied to the addresses a name
//! resolves to ([`Resolver`], so a name cannot point somewhere refused), to an
//! address written in the URL ([`Networks::check_url`]), and to every
//! redirect. The importer uses no proxy.

use crate::ItemError;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// The networks allowed beyond the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks {
    allowed: Vec<(IpAddr, u8)>,
}

/// Parses `a.b.c.d/n`, `x::y/n` or a bare address.
fn cidr(text: &str) -> Result<(IpAddr, u8), String> {
    let text = text.trim();
    let (addr, bits) = text.split_once('/').unwrap_or((text, ""));
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{text:?} is not a network (CIDR such as 10.0.0.0/8)"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = if bits.is_empty() {
        max
    } else {
        bits.parse::<u8>()
            .ok()
            .filter(|b| *b <= max)
            .ok_or_else(|| format!("{text:?} has a bad prefix length"))?
    };
    Ok((addr, bits))
}

fn bits_of(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn contains((net, bits): (IpAddr, u8), ip: IpAddr) -> bool {
    if net.is_ipv4() != ip.is_ipv4() {
        return false;
    }
    let width = if ip.is_ipv4() { 32 } else { 128 };
    if bits == 0 {
        return true;
    }
    let shift = width - u32::from(bits);
    (bits_of(net) >> shift) == (bits_of(ip) >> shift)
}

/// Whether `ip` is in a range refused by default.
fn refused_by_default(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => refused_v4(v4),
            None => {
                let s = v6.segments();
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (s[0] & 0xffc0) == 0xfe80
                    // AWS's instance metadata over IPv6.
                    || v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
            }
        },
    }
}

/// The IPv4 address an IPv6 one stands for: IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible
/// (`::a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) or 6to4 (`2002:aabb:ccdd::`).
fn embedded_v4(v6: std::net::Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let o = v6.octets();
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let low = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
        return Some(low);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low);
    }
    (s[0] == 0x2002).then(|| Ipv4Addr::new(o[2], o[3], o[4], o[5]))
}

fn refused_v4(v4: Ipv4Addr) -> bool {
    let o = v4.octets();
    v4.is_loopback()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_multicast()
        || v4.is_broadcast()
        || o[0] == 0
        // The shared address space (100.64/10), where some clouds put their metadata service.
        || (o[0] == 100 && (o[1] & 0xc0) == 64)
}

impl Networks {
    /// The networks `--import-allow-network` names.
    pub fn parse(cidrs: &[String]) -> Result<Networks, String> {
        Ok(Networks {
            allowed: cidrs
                .iter()
                .filter(|c| !c.trim().is_empty())
                .map(|c| cidr(c))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Whether a source at `ip` may be fetched from.
    pub fn permits(&self, ip: IpAddr) -> bool {
        !refused_by_default(ip) || self.allowed.iter().any(|n| contains(*n, ip))
    }

    /// Refuses a URL whose host is an address this importer may not fetch from (a name is
    /// checked when it is resolved).
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), ItemError> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(url::Host::Domain(_)) => return Ok(()),
            None => return Err(ItemError::new("bad_url", "the URL has no host")),
        };
        if self.permits(ip) {
            Ok(())
        } else {
            Err(refused())
        }
    }
}

/// The error of a refused address.
pub fn refused() -> ItemError {
    ItemError::new(
        "address_not_allowed",
        "the source's address is loopback, link-local, multicast or unspecified (allow it with --import-allow-network)",
    )
}

/// The system resolver, keeping only the addresses [`Networks::permits`].
#[derive(Debug, Clone)]
pub struct Resolver(pub Arc<Networks>);

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let networks = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = found.into_iter().filter(|a| networks.permits(a.ip())).collect();
            if kept.is_empty() {
                return Err(Box::new(refused()) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn loopback_link_local_and_unspecified_are_refused_unless_allowed() {
        let none = Networks::default();
        for bad in [
            "127.0.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
            "100.100.100.200",
            "fd00:ec2::254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "::127.0.0.1",
        ] {
            assert!(!none.permits(ip(bad)), "{bad}");
        }
        for good in ["10.1.2.3", "192.168.0.10", "172.16.5.5", "8.8.8.8", "fd00::1"] {
            assert!(none.permits(ip(good)), "{good}");
        }
        let lo = Networks::parse(&["127.0.0.0/8".into()]).expect("cidr");
        assert!(lo.permits(ip("127.0.0.1")) && !lo.permits(ip("169.254.169.254")) && !lo.permits(std::net::Ipv6Addr::LOCALHOST.into()));
        let one = Networks::parse(&["::1".into()]).expect("bare address");
        assert!(one.permits(ip("::1")));
        assert!(Networks::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(Networks::parse(&["pacs".into()]).is_err());
    }

    #[test]
    fn an_address_in_the_url_is_checked_before_any_request() {
        let none = Networks::default();
        let url = |u: &str| reqwest::Url::parse(u).expect("url");
        assert_eq!(
            none.check_url(&url("http://127.0.0.1:8042/x")).unwrap_err().code,
            "address_not_allowed"
        );
        assert_eq!(none.check_url(&url("http://[::1]/x")).unwrap_err().code, "address_not_allowed");
        assert!(none.check_url(&url("http://10.0.0.5/x")).is_ok());
        assert!(
            none.check_url(&url("http://pacs.example/x")).is_ok(),
            "names are checked as resolved"
        );
    }
}
