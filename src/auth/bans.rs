//! Who may not connect: a ban's value put in the form it is compared in, and a CONNECT
//! (client id, user name, address) matched against the stored bans, on the loop.
//!
//! - client id: as sent, byte for byte (`sensor-1` does not ban `Sensor-1`);
//! - user name: by the account's key, so `Ana` bans `ana` and `ANA` too;
//! - address: one IP address, or a network as a CIDR prefix (`10.1.0.0/16`,
//!   `2001:db8::/32`); `::ffff:10.0.0.7` is `10.0.0.7`, and a prefix is stored with its host
//!   bits cleared (`10.1.2.3/16` bans `10.1.0.0/16`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::store::{name_key, Ban, BanKind};

/// Longest value a ban takes (a client id is at most 65535 bytes on the wire; no one
/// types that many into the console).
const MAX_VALUE_BYTES: usize = 1024;

/// Longest reason a ban keeps.
const MAX_REASON_CHARS: usize = 200;

/// `reason` trimmed, if it is one line of at most [`MAX_REASON_CHARS`] characters.
pub fn check_reason(reason: &str) -> Result<&str, String> {
    let reason = reason.trim();
    if reason.chars().count() > MAX_REASON_CHARS || reason.chars().any(char::is_control) {
        return Err(format!(
            "a reason is one line of at most {MAX_REASON_CHARS} characters"
        ));
    }
    Ok(reason)
}

/// `value` in the form a ban of `kind` stores and compares, or why it cannot be banned.
pub fn normalise(kind: BanKind, value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(format!("give the {kind} to ban"));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "a {kind} to ban is at most {MAX_VALUE_BYTES} bytes"
        ));
    }
    match kind {
        BanKind::ClientId => Ok(value.to_owned()),
        BanKind::Username => Ok(name_key(value)),
        BanKind::Address => Network::parse(value)
            .map(|n| n.to_string())
            .ok_or_else(|| format!("{value:?} is not an IP address or a CIDR prefix")),
    }
}

/// An address ban's value: one address (`prefix` the full length) or a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Network {
    base: IpAddr,
    prefix: u8,
}

impl Network {
    /// `a.b.c.d`, `v6`, `a.b.c.d/n` or `v6/n`, IPv4-mapped IPv6 addresses (and prefixes of
    /// at least 96 bits) as IPv4; host bits are cleared.
    fn parse(text: &str) -> Option<Network> {
        let (ip, prefix) = match text.split_once('/') {
            Some((ip, bits)) if !bits.is_empty() && bits.bytes().all(|b| b.is_ascii_digit()) => {
                (ip.parse::<IpAddr>().ok()?, Some(bits.parse::<u8>().ok()?))
            }
            Some(_) => return None,
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let (ip, prefix) = match (ip, ip.to_canonical(), prefix) {
            (IpAddr::V6(_), IpAddr::V4(v4), Some(p)) if p >= 96 => (IpAddr::V4(v4), Some(p - 96)),
            // A mapped address under a shorter prefix mixes IPv4 and IPv6: refused.
            (IpAddr::V6(_), IpAddr::V4(_), Some(_)) => return None,
            (_, canonical, p) => (canonical, p),
        };
        let bits = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(bits);
        (prefix <= bits).then(|| Network {
            base: mask(ip, prefix),
            prefix,
        })
    }

    fn contains(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        addr.is_ipv4() == self.base.is_ipv4() && mask(addr, self.prefix) == self.base
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let whole = if self.base.is_ipv4() { 32 } else { 128 };
        if self.prefix == whole {
            write!(f, "{}", self.base)
        } else {
            write!(f, "{}/{}", self.base, self.prefix)
        }
    }
}

/// `ip` with all but its first `prefix` bits cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let keep = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & keep))
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & keep))
        }
    }
}

/// The first ban in force at `now` (Unix seconds) that names this client, its user or its
/// address.
pub fn find<'a>(
    bans: &'a [Ban],
    client_id: &str,
    username: Option<&str>,
    addr: IpAddr,
    now: i64,
) -> Option<&'a Ban> {
    let user = username.map(name_key);
    bans.iter()
        .filter(|b| in_force(b, now))
        .find(|b| match b.kind {
            BanKind::ClientId => b.value == client_id,
            BanKind::Username => user.as_deref() == Some(b.value.as_str()),
            BanKind::Address => Network::parse(&b.value).is_some_and(|n| n.contains(addr)),
        })
}

/// False once its expiry has passed.
pub fn in_force(ban: &Ban, now: i64) -> bool {
    ban.expires_at.is_none_or(|at| now < at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ban(kind: BanKind, value: &str, expires_at: Option<i64>) -> Ban {
        Ban {
            id: 1,
            kind,
            value: normalise(kind, value).unwrap(),
            reason: String::new(),
            created_by: "admin".into(),
            created_at: 0,
            expires_at,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn values_are_normalised_or_refused() {
        let cases: &[(BanKind, &str, Result<&str, ()>)] = &[
            (BanKind::ClientId, " sensor-1 ", Ok("sensor-1")),
            (BanKind::ClientId, "", Err(())),
            (BanKind::Username, "ANA", Ok("ana")),
            (BanKind::Address, "10.0.0.7", Ok("10.0.0.7")),
            (BanKind::Address, "::ffff:10.0.0.7", Ok("10.0.0.7")),
            (BanKind::Address, "::1", Ok("::1")),
            (BanKind::Address, "10.0.0.0/8", Ok("10.0.0.0/8")),
            (BanKind::Address, "10.1.2.3/16", Ok("10.1.0.0/16")),
            (BanKind::Address, "10.0.0.7/32", Ok("10.0.0.7")),
            (BanKind::Address, "0.0.0.0/0", Ok("0.0.0.0/0")),
            (BanKind::Address, "2001:db8:1:2::5/32", Ok("2001:db8::/32")),
            (BanKind::Address, "::ffff:10.9.8.7/104", Ok("10.0.0.0/8")),
            (BanKind::Address, "::/0", Ok("::/0")),
            (BanKind::Address, "10.0.0.0/33", Err(())),
            (BanKind::Address, "2001:db8::/129", Err(())),
            (BanKind::Address, "10.0.0.0/", Err(())),
            (BanKind::Address, "10.0.0.0/+8", Err(())),
            (BanKind::Address, "10.0.0.0/8/8", Err(())),
            (BanKind::Address, "example.org", Err(())),
            (BanKind::Address, "example.org/8", Err(())),
        ];
        for (kind, value, want) in cases {
            let got = normalise(*kind, value);
            match want {
                Ok(v) => assert_eq!(got.as_deref(), Ok(*v), "{kind} {value:?}"),
                Err(()) => assert!(got.is_err(), "{kind} {value:?}: {got:?}"),
            }
        }
        assert!(normalise(BanKind::ClientId, &"x".repeat(2000)).is_err());
    }

    #[test]
    fn a_connect_matches_by_each_kind_while_in_force() {
        let bans = [
            ban(BanKind::ClientId, "Sensor-1", None),
            ban(BanKind::Username, "Ana", Some(100)),
            ban(BanKind::Address, "10.0.0.7", None),
            ban(BanKind::Address, "192.168.0.0/16", None),
            ban(BanKind::Address, "2001:db8::/32", None),
        ];
        let other = ip("10.0.0.8");
        // (client id, user name, address, now) → the kind of ban that matches.
        type Case<'a> = (&'a str, Option<&'a str>, IpAddr, i64, Option<BanKind>);
        let cases: &[Case] = &[
            ("Sensor-1", None, other, 0, Some(BanKind::ClientId)),
            ("sensor-1", None, other, 0, None),
            ("x", Some("ana"), other, 99, Some(BanKind::Username)),
            ("x", Some("ANA"), other, 99, Some(BanKind::Username)),
            ("x", Some("ana"), other, 100, None),
            ("x", None, ip("10.0.0.7"), 0, Some(BanKind::Address)),
            ("x", None, ip("::ffff:10.0.0.7"), 0, Some(BanKind::Address)),
            ("x", Some("bob"), other, 0, None),
            ("x", None, ip("192.168.44.1"), 0, Some(BanKind::Address)),
            (
                "x",
                None,
                ip("::ffff:192.168.0.9"),
                0,
                Some(BanKind::Address),
            ),
            ("x", None, ip("192.169.0.1"), 0, None),
            ("x", None, ip("2001:db8:ffff::1"), 0, Some(BanKind::Address)),
            ("x", None, ip("2001:db9::1"), 0, None),
            ("x", None, ip("::ffff:10.0.0.8"), 0, None),
        ];
        for (client, user, addr, now, want) in cases {
            let got = find(&bans, client, *user, *addr, *now).map(|b| b.kind);
            assert_eq!(got, *want, "{client} {user:?} {addr} at {now}");
        }
    }
}
