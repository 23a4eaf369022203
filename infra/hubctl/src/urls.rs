//! Where the hub may be told to send requests. A vendor's order URL receives candidate data and a
//! tenant's Ashby base URL receives the customer's Ashby API key, so both must be https and must
//! not name a private, link-local or cloud-metadata address as an IP literal (from inside AWS such
//! an address reaches the hub's own network or the instance metadata service). Plain http is
//! allowed only to loopback, for local runs, and only when the operator says so.
//!
//! Host names are not resolved: a name that resolves to a private address is the DNS owner's
//! business, and resolving here would not bind what the functions resolve later.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Names that cloud providers serve instance metadata on.
const METADATA_NAMES: [&str; 4] = [
    "metadata",
    "metadata.google.internal",
    "instance-data",
    "instance-data.ec2.internal",
];

/// What kind of address a URL's host is, as far as sending requests there goes.
#[derive(Debug, PartialEq, Eq)]
enum Reach {
    Public,
    Loopback,
    /// Refused whatever the flags; the reason completes "… is …".
    Forbidden(&'static str),
}

/// Checks a URL the hub will send requests to. `what` names it in the message ("order URL").
pub fn check_outbound(url: &Url, what: &str, allow_insecure_loopback: bool) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{what} {url} must be an https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{what} must not carry a user name or password; the hub signs its requests instead"
        ));
    }
    let reach = match url.host() {
        None => return Err(format!("{what} {url} has no host")),
        Some(Host::Domain(d)) => domain_reach(d),
        Some(Host::Ipv4(ip)) => ip_reach(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => ip_reach(IpAddr::V6(ip)),
    };
    let host = url.host_str().unwrap_or_default();
    match reach {
        Reach::Forbidden(why) => Err(format!(
            "{what} {url} is refused: {host} is {why}, which the hub must never send requests to"
        )),
        Reach::Loopback if !allow_insecure_loopback => Err(format!(
            "{what} {url} points at loopback ({host}), which only makes sense for a hub running \
             on this machine; pass --allow-insecure-loopback for such a local run"
        )),
        Reach::Loopback => Ok(()),
        Reach::Public if url.scheme() != "https" => Err(format!(
            "{what} {url} must use https (plain http is allowed only to loopback, with \
             --allow-insecure-loopback)"
        )),
        Reach::Public => Ok(()),
    }
}

fn domain_reach(domain: &str) -> Reach {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    if d == "localhost" || d.ends_with(".localhost") {
        Reach::Loopback
    } else if METADATA_NAMES.contains(&d.as_str()) {
        Reach::Forbidden("a cloud metadata address")
    } else {
        Reach::Public
    }
}

fn ip_reach(ip: IpAddr) -> Reach {
    match ip {
        IpAddr::V4(v4) => v4_reach(v4),
        IpAddr::V6(v6) => v6_reach(v6),
    }
}

fn v4_reach(ip: Ipv4Addr) -> Reach {
    let [a, b, c, d] = ip.octets();
    match (a, b, c, d) {
        (127, ..) => Reach::Loopback,
        // AWS, GCP and Azure instance metadata, the ECS task metadata and the AWS DNS resolver
        // all live in the link-local block; Oracle's is in 192.0.0.0/24, Alibaba's in 100.64/10.
        (169, 254, 169, 254) | (169, 254, 170, 2) | (192, 0, 0, 192) | (100, 100, 100, 200) => {
            Reach::Forbidden("a cloud metadata address")
        }
        (169, 254, ..) => Reach::Forbidden("a link-local address"),
        (10, ..) | (192, 168, ..) => Reach::Forbidden("a private address"),
        (172, b, ..) if (16..=31).contains(&b) => Reach::Forbidden("a private address"),
        (100, b, ..) if (64..=127).contains(&b) => {
            Reach::Forbidden("a shared (carrier-grade NAT) address")
        }
        (0, ..) => Reach::Forbidden("an unspecified address"),
        (192, 0, 0, _) => Reach::Forbidden("a special-purpose address"),
        (a, ..) if a >= 224 => Reach::Forbidden("a multicast or reserved address"),
        _ => Reach::Public,
    }
}

fn v6_reach(ip: Ipv6Addr) -> Reach {
    // An IPv4 address written as IPv6 goes where the IPv4 address goes.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_reach(v4);
    }
    let s = ip.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        return v4_reach(Ipv4Addr::new(a, b, c, d));
    }
    if ip.is_loopback() {
        Reach::Loopback
    } else if ip.is_unspecified() {
        Reach::Forbidden("an unspecified address")
    } else if s[0] == 0xfd00 && s[1] == 0x0ec2 {
        Reach::Forbidden("a cloud metadata address")
    } else if s[0] & 0xfe00 == 0xfc00 {
        Reach::Forbidden("a private (unique local) address")
    } else if s[0] & 0xffc0 == 0xfe80 {
        Reach::Forbidden("a link-local address")
    } else if s[0] & 0xff00 == 0xff00 {
        Reach::Forbidden("a multicast address")
    } else {
        Reach::Public
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(u: &str, allow: bool) -> Result<(), String> {
        let url = Url::parse(u).map_err(|e| e.to_string())?;
        check_outbound(&url, "order URL", allow)
    }

    #[test]
    fn https_to_a_public_host_is_accepted() {
        for u in [
            "https://vendor.example/hub/orders",
            "https://203.0.113.7:8443/orders",
            "https://[2001:db8::1]/orders",
        ] {
            assert_eq!(check(u, false), Ok(()), "{u}");
        }
    }

    #[test]
    fn plain_http_is_refused_except_to_loopback_with_the_flag() {
        let e = check("http://vendor.example/orders", true).expect_err("http");
        assert!(e.contains("must use https"), "{e}");
        for u in [
            "http://127.0.0.1:9100/orders",
            "http://127.8.9.10/orders",
            "http://localhost:9100/orders",
            "http://[::1]:9100/orders",
            "http://api.localhost/orders",
        ] {
            assert_eq!(check(u, true), Ok(()), "{u}");
            let e = check(u, false).expect_err("loopback without the flag");
            assert!(e.contains("--allow-insecure-loopback"), "{e}");
        }
    }

    #[test]
    fn metadata_private_and_link_local_literals_are_refused_even_with_the_flag() {
        for (u, why) in [
            ("https://169.254.169.254/latest/meta-data/", "metadata"),
            ("http://169.254.169.254/", "metadata"),
            ("https://169.254.170.2/v2/credentials", "metadata"),
            ("https://[fd00:ec2::254]/", "metadata"),
            ("https://[::ffff:169.254.169.254]/", "metadata"),
            ("https://metadata.google.internal/", "metadata"),
            ("https://169.254.1.1/", "link-local"),
            ("https://[fe80::1]/", "link-local"),
            ("https://10.0.0.5/orders", "private"),
            ("https://172.20.1.1/orders", "private"),
            ("https://192.168.1.10/orders", "private"),
            ("https://[fd12:3456::1]/orders", "private"),
            ("https://100.64.0.1/orders", "shared"),
            ("https://0.0.0.0/orders", "unspecified"),
            ("https://[::]/orders", "unspecified"),
        ] {
            let e = check(u, true).expect_err(u);
            assert!(e.contains(why), "{u}: {e}");
        }
    }

    #[test]
    fn obfuscated_ipv4_literals_are_recognised() {
        // The URL parser normalises decimal, hex and octal forms, so they cannot slip through.
        for u in [
            "https://2852039166/",
            "https://0xa9fea9fe/",
            "https://0251.0376.0251.0376/",
        ] {
            let e = check(u, true).expect_err(u);
            assert!(e.contains("metadata"), "{u}: {e}");
        }
    }

    #[test]
    fn credentials_in_the_url_and_other_schemes_are_refused() {
        assert!(check("https://user:pw@vendor.example/orders", false).is_err());
        assert!(check("ftp://vendor.example/orders", false).is_err());
        assert!(check("file:///etc/passwd", true).is_err());
    }
}
