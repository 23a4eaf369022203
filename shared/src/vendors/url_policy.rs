//! Which vendor `order_url`s the hub will call. A vendor URL is operator input that the hub then
//! requests from inside the customer's AWS account, so it must not reach the account's own
//! network: https only, no credentials in the URL, and no loopback, private, link-local or
//! metadata address given as an IP literal. Local runs may allow plain http to loopback.
//! (A public hostname that resolves to a private address is not caught here; the Lambda
//! functions run outside any VPC, where such addresses lead nowhere.)

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Whether plain http to a loopback address is allowed (local runs and tests only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopbackHttp {
    Refuse,
    Allow,
}

fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || a == 0
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4.is_loopback() || forbidden_v4(v4);
    }
    let first = ip.segments()[0];
    ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local, incl. fd00:ec2::254 (EC2 metadata)
        || (first & 0xffc0) == 0xfe80 // link-local
}

/// Checks an order URL; the error says what is wrong, for the operator.
pub fn check_order_url(url: &Url, loopback: LoopbackHttp) -> Result<(), String> {
    check_outbound_url(url, loopback, "order_url")
}

/// Checks any URL the hub is asked to call on a vendor's behalf (an order URL, an attachment's
/// URL); the error names it as `what`.
pub fn check_outbound_url(url: &Url, loopback: LoopbackHttp, what: &str) -> Result<(), String> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{what} must not carry credentials"));
    }
    let host = url.host().ok_or_else(|| format!("{what} has no host"))?;
    let loop_host = is_loopback_host(&host);
    match url.scheme() {
        "https" => {}
        "http" if loop_host && loopback == LoopbackHttp::Allow => return Ok(()),
        "http" if loop_host => {
            return Err("plain http to loopback is allowed only in local runs".into());
        }
        _ => return Err(format!("{what} must be https")),
    }
    if loop_host {
        return if loopback == LoopbackHttp::Allow {
            Ok(())
        } else {
            Err(format!("{what} must not point at this machine (loopback)"))
        };
    }
    let forbidden = match host {
        Host::Ipv4(ip) => forbidden_v4(ip),
        Host::Ipv6(ip) => forbidden_v6(ip),
        Host::Domain(d) => {
            let d = d.to_ascii_lowercase();
            d == "metadata.google.internal" || d.ends_with(".internal") || d.ends_with(".local")
        }
    };
    if forbidden {
        return Err(format!(
            "{what} must not point at a private, link-local or metadata address"
        ));
    }
    Ok(())
}

/// `check_order_url` for an address already parsed as an IP (used by tests and tooling).
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || forbidden_v4(v4),
        IpAddr::V6(v6) => v6.is_loopback() || forbidden_v6(v6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(u: &str, l: LoopbackHttp) -> Result<(), String> {
        check_order_url(&Url::parse(u).expect("url"), l)
    }

    #[test]
    fn public_https_is_allowed() {
        assert_eq!(
            check("https://orders.vendor.example/v1", LoopbackHttp::Refuse),
            Ok(())
        );
        assert_eq!(
            check("https://203.0.114.10/x", LoopbackHttp::Refuse),
            Ok(())
        );
    }

    #[test]
    fn internal_and_metadata_addresses_are_refused() {
        for u in [
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.5/",
            "https://172.16.3.4/",
            "https://192.168.1.1/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[fd00:ec2::254]/",
            "https://[fe80::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://metadata.google.internal/",
            "https://127.0.0.1/",
            "https://localhost/",
            "http://orders.vendor.example/",
            "ftp://orders.vendor.example/",
            "https://user:pw@orders.vendor.example/",
        ] {
            assert!(check(u, LoopbackHttp::Refuse).is_err(), "{u} accepted");
        }
    }

    #[test]
    fn http_to_loopback_only_when_allowed() {
        assert!(check("http://127.0.0.1:9100/orders", LoopbackHttp::Refuse).is_err());
        assert_eq!(
            check("http://127.0.0.1:9100/orders", LoopbackHttp::Allow),
            Ok(())
        );
        assert_eq!(
            check("http://localhost:9100/orders", LoopbackHttp::Allow),
            Ok(())
        );
        assert!(check("http://10.0.0.1/orders", LoopbackHttp::Allow).is_err());
        assert!(is_forbidden_ip("169.254.169.254".parse().expect("ip")));
    }
}
