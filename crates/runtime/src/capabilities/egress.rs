//! Outbound HTTP (`wasi:http/outgoing-handler`) behind the tenant's policy.
//!
//! Policy, in order, before any connection is made:
//! 1. the request's host must be declared by the plugin (`plugin-info.egress`) **and** allowed
//!    by the tenant — otherwise `HTTP-request-denied`;
//! 2. every address the host resolves to must be public (no loopback, private, link-local,
//!    unique-local, CGNAT, multicast or unspecified) unless the tenant sets `allow_private` —
//!    otherwise `destination-IP-prohibited`. The check is repeated inside the HTTP client's own
//!    resolver, so the addresses checked are the addresses dialled (no DNS-rebinding window).
//!
//! Redirects are not followed (the plugin sees the 3xx and must ask again, through the policy);
//! every request has a timeout and every response body a size cap.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde::{Deserialize, Serialize};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// The tenant's side of the egress policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EgressPolicy {
    /// Hosts the tenant lets its plugins call (`api.telegram.org`, `*.slack.com`).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Allow loopback and private-range destinations (for on-premises APIs and tests).
    #[serde(default)]
    pub allow_private: bool,
    /// Let requests reach hosts the plugin did not declare (the tenant's allow-list and the
    /// address checks still apply). For tests that point a plugin at a stand-in server; it
    /// cannot be set from a tenant config file.
    #[serde(skip)]
    pub trust_undeclared: bool,
}

/// Does `pattern` (`example.com`, `*.example.com`, or `*` for any host) cover `host`?
///
/// A plugin declaring `*` (a generic connector posting to a tenant-chosen URL) still reaches
/// only what the tenant allows; private addresses stay refused unless the tenant opts in.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    if pattern == "*" {
        return !host.is_empty();
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
        None => host == pattern,
    }
}

/// True for addresses that reach only this machine or a private network.
///
/// An IPv6 address can carry an IPv4 one (mapped, compatible, translated, NAT64, 6to4, Teredo):
/// on a network with NAT64 or a 6to4 relay such an address reaches that IPv4 host, so the
/// decision is made on every embedded IPv4 address, not on the IPv6 spelling.
pub fn is_non_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10, carrier-grade NAT
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18.0.0/15, benchmarking
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let v4_at = |hi: u16, lo: u16| {
                std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
            };
            let embedded: Vec<std::net::Ipv4Addr> = match s {
                // ::a.b.c.d (compatible, also `::1` and `::`) and ::ffff:a.b.c.d (mapped)
                [0, 0, 0, 0, 0, 0 | 0xffff, hi, lo] => vec![v4_at(hi, lo)],
                // ::ffff:0:a.b.c.d (SIIT translated)
                [0, 0, 0, 0, 0xffff, 0, hi, lo] => vec![v4_at(hi, lo)],
                // 64:ff9b::a.b.c.d (NAT64, well-known prefix)
                [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => vec![v4_at(hi, lo)],
                // 2002:AABB:CCDD::/48 (6to4)
                [0x2002, hi, lo, ..] => vec![v4_at(hi, lo)],
                // 2001:0::/32 (Teredo): the server, and the client obfuscated by inversion
                [0x2001, 0, shi, slo, _, _, chi, clo] => vec![v4_at(shi, slo), v4_at(!chi, !clo)],
                _ => vec![],
            };
            if embedded.iter().any(|v4| is_non_public(IpAddr::V4(*v4))) {
                return true;
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated, still routed inside sites)
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // 64:ff9b:1::/48, local-use NAT64: its IPv4 may sit anywhere in it
                || (s[0] == 0x100 && s[1] == 0 && s[2] == 0 && s[3] == 0) // 100::/64, discard
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        }
    }
}

/// A request the policy refused, kept so the call's error can say why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Denial {
    pub target: String,
    pub reason: String,
}

/// HTTP clients shared by all calls; one of them refuses non-public addresses at resolution.
#[derive(Clone)]
pub struct EgressClients {
    public_only: reqwest::Client,
    any_address: reqwest::Client,
}

impl EgressClients {
    pub fn new() -> anyhow::Result<Self> {
        let build = |public_only: bool| {
            let mut b = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .connect_timeout(Duration::from_secs(10))
                .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")));
            if public_only {
                b = b.dns_resolver(Arc::new(PublicOnlyResolver));
            }
            b.build()
        };
        Ok(EgressClients {
            public_only: build(true)?,
            any_address: build(false)?,
        })
    }
}

const PRIVATE_REFUSAL: &str = "resolves only to non-public addresses";

struct PublicOnlyResolver;

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !is_non_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} {PRIVATE_REFUSAL}").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Per-call egress state: the hooks `wasi:http` calls into.
pub struct EgressHooks {
    /// Hosts the plugin declared.
    pub declared: Arc<[String]>,
    pub policy: Arc<EgressPolicy>,
    pub clients: EgressClients,
    pub timeout: Duration,
    pub max_response_bytes: u64,
    pub denials: Arc<Mutex<Vec<Denial>>>,
}

/// Largest request body a plugin may send.
const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;

impl EgressHooks {
    fn deny(&self, target: &str, reason: String) {
        tracing::warn!(target, reason, "egress denied");
        self.denials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Denial {
                target: target.to_string(),
                reason,
            });
    }

    /// Apply the policy to a host and port; `Ok` means the request may go out.
    async fn vet(&self, host: &str, port: u16) -> Result<(), HttpError> {
        let declared =
            self.policy.trust_undeclared || self.declared.iter().any(|p| host_matches(p, host));
        let allowed = self.policy.allow.iter().any(|p| host_matches(p, host));
        if !declared || !allowed {
            let why = match (declared, allowed) {
                (false, false) => "neither declared by the plugin nor allowed by the tenant",
                (false, true) => "not declared by the plugin",
                _ => "not allowed by the tenant",
            };
            self.deny(host, format!("host `{host}` is {why}"));
            return Err(HttpError::HttpRequestDenied);
        }
        if self.policy.allow_private {
            return Ok(());
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<IpAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => match tokio::net::lookup_host((bare, port)).await {
                Ok(a) => a.map(|s| s.ip()).collect(),
                Err(_) => {
                    return Err(HttpError::DnsError {
                        rcode: None,
                        info_code: None,
                    });
                }
            },
        };
        if let Some(bad) = addrs.iter().find(|ip| is_non_public(**ip)) {
            self.deny(
                host,
                format!("host `{host}` resolves to non-public address {bad}"),
            );
            return Err(HttpError::DestinationIpProhibited);
        }
        Ok(())
    }

    async fn send(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        let (parts, body) = request.into_parts();
        let host = parts
            .uri
            .host()
            .ok_or(HttpError::HttpRequestUriInvalid)?
            .to_string();
        let https = parts.uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let port = parts.uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        self.vet(&host, port).await?;

        let body = http_body_util::Limited::new(body, MAX_REQUEST_BYTES)
            .collect()
            .await
            .map_err(|_| HttpError::HttpRequestBodySize(None))?
            .to_bytes();
        let timeout = options
            .and_then(|o| o.first_byte_timeout)
            .map_or(self.timeout, |t| t.min(self.timeout));
        let client = if self.policy.allow_private {
            &self.clients.any_address
        } else {
            &self.clients.public_only
        };
        let response = client
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| self.map_client_error(&host, &e))?;

        let max = self.max_response_bytes;
        if response.content_length().is_some_and(|len| len > max) {
            return Err(HttpError::HttpResponseBodySize(response.content_length()));
        }
        let mut out = http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            out = out.header(name, value);
        }
        let mut seen = 0u64;
        let stream = response.bytes_stream().map(move |chunk| match chunk {
            Ok(bytes) => {
                seen += bytes.len() as u64;
                if seen > max {
                    Err(HttpError::HttpResponseBodySize(Some(max)))
                } else {
                    Ok(Frame::data(bytes))
                }
            }
            Err(e) if e.is_timeout() => Err(HttpError::HttpResponseTimeout),
            Err(_) => Err(HttpError::HttpResponseIncomplete),
        });
        out.body(StreamBody::new(stream).boxed_unsync())
            .map_err(|e| HttpError::InternalError(Some(e.to_string())))
    }

    fn map_client_error(&self, host: &str, e: &reqwest::Error) -> HttpError {
        let chain = {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        };
        if chain.contains(PRIVATE_REFUSAL) {
            self.deny(host, format!("host `{host}` {PRIVATE_REFUSAL}"));
            HttpError::DestinationIpProhibited
        } else if e.is_timeout() {
            HttpError::ConnectionTimeout
        } else if e.is_connect() {
            HttpError::ConnectionRefused
        } else {
            HttpError::InternalError(Some(chain))
        }
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>
    {
        let hooks = EgressHooks {
            declared: self.declared.clone(),
            policy: self.policy.clone(),
            clients: self.clients.clone(),
            timeout: self.timeout,
            max_response_bytes: self.max_response_bytes,
            denials: self.denials.clone(),
        };
        Box::new(async move {
            let response = hooks.send(request, options).await?;
            Ok((response, Box::new(async { Ok(()) }) as IoFuture))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_patterns_cover_subdomains_only() {
        assert!(host_matches("*.slack.com", "hooks.slack.com"));
        assert!(!host_matches("*.slack.com", "slack.com"));
        assert!(!host_matches("*.slack.com", "evilslack.com"));
        assert!(host_matches("API.Telegram.org", "api.telegram.org."));
        assert!(!host_matches(
            "api.telegram.org",
            "api.telegram.org.evil.com"
        ));
        assert!(host_matches("*", "anything.example"));
    }

    #[test]
    fn private_ranges_are_non_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_non_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["1.1.1.1", "93.184.216.34", "2606:4700::1111"] {
            assert!(!is_non_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn ipv6_spellings_of_private_ipv4_addresses_are_non_public() {
        for ip in [
            "::127.0.0.1",                  // IPv4-compatible
            "::10.0.0.1",                   //
            "::ffff:0:7f00:1",              // SIIT translated 127.0.0.1
            "::ffff:0:a9fe:a9fe",           // 169.254.169.254, the cloud metadata address
            "64:ff9b::7f00:1",              // NAT64 of 127.0.0.1
            "64:ff9b::a00:1",               // NAT64 of 10.0.0.1
            "64:ff9b:1::a00:1",             // local-use NAT64
            "64:ff9b:1:ffff::1",            //
            "2002:7f00:1::",                // 6to4 of 127.0.0.1
            "2002:c0a8:101::1",             // 6to4 of 192.168.1.1
            "2001:0:7f00:1::1",             // Teredo server 127.0.0.1
            "2001:0:808:808:0:0:f5ff:fffe", // Teredo client 10.0.0.1 (inverted)
            "fec0::1",                      // site local
            "100::1",                       // discard
        ] {
            assert!(is_non_public(ip.parse().unwrap()), "{ip}");
        }
        // The same embeddings of a public IPv4 address stay public.
        for ip in [
            "64:ff9b::808:808",
            "2002:808:808::1",
            "::ffff:0:808:808",
            "2001:0:808:808:0:0:f7f7:f7f7",
        ] {
            assert!(!is_non_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
