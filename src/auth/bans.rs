//! Who may not connect: a ban's value put in the form it is compared in, and a CONNECT
//! (client id, user name, address) matched against the stored bans, on the loop.
//!
//! - client id: as sent, byte for byte (`sensor-1` does not ban `Sensor-1`);
//! - user name: by the account's key, so `Ana` bans `ana` and `ANA` too;
//! - address: one IP address; `::ffff:10.0.0.7` is `10.0.0.7`.

use std::net::IpAddr;

use crate::store::{name_key, Ban, BanKind};

/// Longest value a ban takes (a client id is at most 65535 bytes on the wire; no one
/// types that many into the console).
const MAX_VALUE_BYTES: usize = 1024;

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
        BanKind::Address => value
            .parse::<IpAddr>()
            .map(|ip| ip.to_canonical().to_string())
            .map_err(|_| format!("{value:?} is not an IP address")),
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
    let addr = addr.to_canonical().to_string();
    bans.iter()
        .filter(|b| in_force(b, now))
        .find(|b| match b.kind {
            BanKind::ClientId => b.value == client_id,
            BanKind::Username => user.as_deref() == Some(b.value.as_str()),
            BanKind::Address => b.value == addr,
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
            (BanKind::Address, "10.0.0.0/8", Err(())),
            (BanKind::Address, "example.org", Err(())),
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
        ];
        for (client, user, addr, now, want) in cases {
            let got = find(&bans, client, *user, *addr, *now).map(|b| b.kind);
            assert_eq!(got, *want, "{client} {user:?} {addr} at {now}");
        }
    }
}
