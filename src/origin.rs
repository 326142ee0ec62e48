//! Whom the web-facing listeners answer, against DNS rebinding and cross-site pages: the
//! console serves only requests whose `Host` names it (its listen address, the address the
//! client reached it on, `localhost`, or one of `web_hosts`), and the WebSocket listeners
//! admit a browser only when its `Origin` is a page from those same hosts (any port, since
//! the console may be on a port picked at start) or is listed in `ws_allowed_origins`.
//! A client that sends no `Origin` (every MQTT library) is not a browser page and is not
//! asked.
//!
//! Valid hosts, for a console on `0.0.0.0:8080` with `web_hosts = ["gw.lan"]`, reached on
//! 192.168.1.5: `localhost`, `localhost:8080`, `192.168.1.5:8080`, `GW.lan.`;
//! refused: `evil.example`, `192.168.1.6`, `gw.lan.evil.example`, an empty host.

use std::net::IpAddr;

use crate::config::Web;

/// The host names and origins the web-facing listeners accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sites {
    /// Lower-case names: `localhost` and `web_hosts`.
    names: Vec<String>,
    /// The console's listen address when it names one interface.
    listen: Option<IpAddr>,
    /// `ws_allowed_origins`, lower-case, without a trailing slash.
    origins: Vec<String>,
}

impl Sites {
    pub fn from_config(web: &Web) -> Sites {
        let mut names = vec!["localhost".to_owned()];
        names.extend(web.web_hosts.iter().map(|h| normalize(h)));
        Sites {
            names,
            listen: web.http.map(|a| a.ip()).filter(|ip| !ip.is_unspecified()),
            origins: web
                .ws_allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// True when a `Host` value (name or address, with or without a port) names this
    /// server, for a client that reached it on `local`.
    pub fn host_allowed(&self, host: &str, local: IpAddr) -> bool {
        let name = normalize(strip_port(host));
        match name.parse::<IpAddr>() {
            Ok(ip) => ip == local || Some(ip) == self.listen,
            Err(_) => !name.is_empty() && self.names.contains(&name),
        }
    }

    /// True when a page from `origin` may open a WebSocket to a listener reached on `local`.
    pub fn origin_allowed(&self, origin: &str, local: IpAddr) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        if self.origins.contains(&origin) {
            return true;
        }
        let authority = match origin.split_once("://") {
            Some(("http" | "https", rest)) => rest,
            _ => return false,
        };
        !authority.contains(['/', '@']) && self.host_allowed(authority, local)
    }
}

/// The host of `host[:port]` or `[v6]:port` (brackets removed).
fn strip_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// Lower case, without the trailing dot of a fully qualified name.
fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sites() -> Sites {
        Sites::from_config(&Web {
            http: Some("0.0.0.0:8080".parse().unwrap()),
            web_hosts: vec!["gw.lan".to_owned()],
            ws_allowed_origins: vec!["https://dashboard.example/".to_owned()],
            ..Web::default()
        })
    }

    const LAN: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 5));

    #[test]
    fn the_console_answers_only_to_its_own_names() {
        let s = sites();
        for host in [
            "localhost",
            "localhost:8080",
            "192.168.1.5:8080",
            "GW.lan.",
            "gw.lan:443",
        ] {
            assert!(s.host_allowed(host, LAN), "{host}");
        }
        for host in [
            "evil.example",
            "192.168.1.6",
            "gw.lan.evil.example",
            "",
            ":8080",
        ] {
            assert!(!s.host_allowed(host, LAN), "{host}");
        }
        let v6: IpAddr = "fe80::1".parse().unwrap();
        assert!(s.host_allowed("[fe80::1]:8080", v6));
    }

    #[test]
    fn a_page_may_open_a_websocket_only_from_the_console_or_the_list() {
        let s = sites();
        for origin in [
            "http://localhost:8080",
            "https://192.168.1.5",
            "https://gw.lan:8443",
            "https://dashboard.example",
        ] {
            assert!(s.origin_allowed(origin, LAN), "{origin}");
        }
        for origin in [
            "http://evil.example",
            "null",
            "file://",
            "http://gw.lan@evil.example",
            "https://dashboard.example.evil",
            "ftp://localhost",
        ] {
            assert!(!s.origin_allowed(origin, LAN), "{origin}");
        }
    }
}
