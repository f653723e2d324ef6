//! The base URL clients reach Alpes at, for the links its answers carry (DICOMweb's
//! RetrieveURLs, STOW-RS's links to the images it stored). It is configured
//! (`--public-url`), never taken from a request: a `Host` or `X-Forwarded-Host`
//! header is the client's text, and a link built from it points wherever the client says.

use std::net::SocketAddr;
use std::sync::Arc;

/// An absolute `http` or `https` URL with a host, no query or fragment, and no trailing slash
/// (a path prefix, for a proxy that serves Alpes under one, stays).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(Arc<str>);

impl PublicUrl {
    /// Checks `raw` (see the type).
    pub fn parse(raw: &str) -> Result<PublicUrl, String> {
        let trimmed = raw.trim_end_matches('/');
        let rest = trimmed
            .strip_prefix("https://")
            .or_else(|| trimmed.strip_prefix("http://"))
            .ok_or("the public URL must start with http:// or https://")?;
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || host.contains('@') {
            return Err("the public URL must name a host (and no user)".into());
        }
        if trimmed.contains(['?', '#']) || trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("the public URL may not hold a query, a fragment or spaces".into());
        }
        Ok(PublicUrl(trimmed.into()))
    }

    /// `http://` and the address the listener is bound to, for a deployment that did not
    /// configure one (an unspecified address, `0.0.0.0` or `::`, becomes the loopback one).
    pub fn of_listener(addr: SocketAddr) -> PublicUrl {
        let mut addr = addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        PublicUrl(format!("http://{addr}").into())
    }

    /// The URL, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_url_is_absolute_http_with_a_host_and_loses_its_trailing_slash() {
        let ok = |s: &str| PublicUrl::parse(s).map(|u| u.as_str().to_owned());
        assert_eq!(ok("https://pacs.example.org/alpes/"), Ok("https://pacs.example.org/alpes".into()));
        assert_eq!(ok("http://10.0.0.5:8080"), Ok("http://10.0.0.5:8080".into()));
        for bad in [
            "pacs.example.org",
            "ftp://x",
            "https://",
            "https:///x",
            "http://u@h",
            "http://h/?a=1",
            "http://h/#x",
            "http://h /x",
        ] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn without_one_the_listener_address_is_used_and_an_unspecified_one_is_the_loopback() {
        let of = |a: &str| PublicUrl::of_listener(a.parse().expect("addr")).as_str().to_owned();
        assert_eq!(of("127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(of("0.0.0.0:8080"), "http://127.0.0.1:8080");
        assert_eq!(of("[::]:8080"), "http://[::1]:8080");
    }
}
