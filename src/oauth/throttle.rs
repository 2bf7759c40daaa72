//! Throttling of failed client authentication.
//!
//! RFC 6749 §2.3.1: "the authorization server MUST protect any endpoint
//! utilizing it against brute force attacks." Failures are counted per
//! (client id, source address) pair and per source address, in fixed
//! windows; past a limit the caller is told to come back later (429 with
//! `Retry-After`) without any argon2 work being spent on it.
//!
//! No counter is per client id alone. Client ids are public (every token
//! carries one), so a limit on an id would let anyone, from anywhere, make
//! that client's correct secret answer 429: a lockout, which is a denial of
//! service anyone could mount. An attacker's failures count
//! against its own addresses and its own (id, address) pairs; the real
//! client, on its own address, is verified as usual. Across addresses,
//! guessing is bounded by the argon2 queue, and a server-generated secret
//! (256 bits) cannot be guessed at any rate.
//!
//! The throttle is consulted only after the verified-credential cache, so a
//! caller presenting an already-verified secret is never throttled, even
//! from a throttled address. Every well-formed client id is counted,
//! registered or not (a limit only real ids could reach would tell which ids
//! are real); both tables are capped, so memory stays bounded whatever ids
//! and addresses an attacker sends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::clock::unix_now;
use crate::crypto::Lane;
use crate::domain::ThrottleSettings;
use crate::store::{SharedCounts, Window};

pub struct Throttle {
    /// Failures per (client id, address) pair and per address, shared with
    /// every instance on the database, so that adding instances does not
    /// multiply an attacker's guesses.
    counts: Arc<SharedCounts>,
    client_failures: Option<u32>,
    address_failures: Option<u32>,
    /// Seconds; windows are aligned to the Unix epoch so that every
    /// instance counts into the same one.
    window: i64,
    /// argon2 verifications in flight per address (bounded by the requests
    /// in flight, so by the connection cap).
    in_flight: Mutex<HashMap<IpAddr, u32>>,
}

/// A caller's place while its secret is verified: which lane of the argon2
/// queue it may use, and its count in `in_flight` until dropped.
pub struct Admission<'a> {
    throttle: &'a Throttle,
    address: Option<IpAddr>,
    pub lane: Lane,
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if let Some(ip) = self.address {
            let mut in_flight = self.throttle.in_flight();
            if let Some(n) = in_flight.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    in_flight.remove(&ip);
                }
            }
        }
    }
}

/// The address of a caller whose address is unknown (no peer information):
/// such callers share one pair per id.
const UNKNOWN: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

impl Throttle {
    pub fn new(settings: &ThrottleSettings, counts: Arc<SharedCounts>) -> Self {
        Self {
            counts,
            client_failures: settings.client_failures,
            address_failures: settings.address_failures,
            window: i64::try_from(settings.window.as_secs())
                .unwrap_or(i64::MAX)
                .max(1),
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, u32>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a caller to argon2. Its lane is `Suspect` with failures on
    /// record, else `Clean` when it is the only verification in flight from
    /// its address and `Crowd` when it is not. Clean waiters go first: however
    /// many addresses flood, each has at most one clean request waiting, so a
    /// real client, new or restarted, waits behind at most one per address.
    pub fn admit(&self, client_id: Option<&str>, address: Option<IpAddr>) -> Admission<'_> {
        let address = address.map(source);
        let first = address.is_none_or(|ip| {
            let mut in_flight = self.in_flight();
            let n = in_flight.entry(ip).or_insert(0);
            *n += 1;
            *n == 1
        });
        let lane = if self.has_failures(client_id, address) {
            Lane::Suspect
        } else if first {
            Lane::Clean
        } else {
            Lane::Crowd
        };
        Admission {
            throttle: self,
            address,
            lane,
        }
    }

    /// `Err(seconds)` to wait when either counter is over its limit.
    pub fn check(&self, client_id: Option<&str>, address: Option<IpAddr>) -> Result<(), u64> {
        let now = unix_now();
        let window = Window::at(now, self.window);
        let address = address.map(source);
        let over = |name: Option<String>, limit: Option<u32>| {
            name.zip(limit)
                .is_some_and(|(name, limit)| self.counts.count(&name, window) >= i64::from(limit))
        };
        if over(pair_counter(client_id, address), self.client_failures)
            || over(address.map(address_counter), self.address_failures)
        {
            return Err(window.seconds_left(now));
        }
        Ok(())
    }

    /// Whether the caller has failures on record in the current window: for
    /// its address, or for this id from its address.
    fn has_failures(&self, client_id: Option<&str>, address: Option<IpAddr>) -> bool {
        let window = Window::at(unix_now(), self.window);
        let address = address.map(source);
        let any = |name: Option<String>, limit: Option<u32>| {
            limit.is_some() && name.is_some_and(|name| self.counts.count(&name, window) > 0)
        };
        any(
            Some(address_counter(address.unwrap_or(UNKNOWN))),
            self.address_failures,
        ) || any(pair_counter(client_id, address), self.client_failures)
    }

    /// Counts a failure against the (id, address) pair, when the id is
    /// well-formed, and against the address.
    pub fn record_failure(&self, client_id: Option<&str>, address: Option<IpAddr>) {
        let window = Window::at(unix_now(), self.window);
        let address = address.map(source);
        if self.client_failures.is_some()
            && let Some(name) = pair_counter(client_id, address)
        {
            self.counts.add(&name, window);
        }
        if self.address_failures.is_some()
            && let Some(ip) = address
        {
            self.counts.add(&address_counter(ip), window);
        }
    }
}

/// The shared counter of one client id from one address.
fn pair_counter(client_id: Option<&str>, address: Option<IpAddr>) -> Option<String> {
    client_id.map(|id| format!("fail-pair:{} {id}", address.unwrap_or(UNKNOWN)))
}

/// The shared counter of one address.
fn address_counter(ip: IpAddr) -> String {
    format!("fail-address:{ip}")
}

/// The source a failure is counted against: an IPv4 address, or the /64 an
/// IPv6 address belongs to — one host commonly holds a whole /64, and
/// counting each of its 2^64 addresses apart would be no limit at all.
fn source(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !(u128::from(u64::MAX));
                IpAddr::V6(prefix.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(client: u32, address: u32) -> Throttle {
        Throttle::new(
            &ThrottleSettings {
                client_failures: Some(client),
                address_failures: Some(address),
                window: std::time::Duration::from_secs(60),
            },
            Arc::new(SharedCounts::local(1000)),
        )
    }

    #[test]
    fn limits_per_client_and_address_and_per_address() {
        let t = throttle(2, 3);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        t.record_failure(Some("svc"), Some(ip));
        assert!(t.check(Some("svc"), Some(ip)).is_ok());
        t.record_failure(Some("svc"), Some(ip));
        let wait = t.check(Some("svc"), Some(ip)).unwrap_err();
        assert!((1..=60).contains(&wait), "per id and address: {wait}");
        assert!(
            t.check(Some("svc"), Some(other)).is_ok(),
            "the same id from another address is not locked out"
        );
        assert!(
            t.check(Some("other"), Some(other)).is_ok(),
            "other clients unaffected"
        );
        t.record_failure(None, Some(ip));
        assert!(
            t.check(Some("other"), Some(ip)).is_err(),
            "per address, for any client"
        );
    }

    #[test]
    fn ipv6_counts_per_64() {
        let t = throttle(100, 2);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        t.record_failure(None, Some(a));
        t.record_failure(None, Some(b));
        assert!(t.check(None, Some(a)).is_err(), "one /64, one counter");
        assert!(t.check(None, Some(other)).is_ok(), "another /64");
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        t.record_failure(None, Some(mapped));
        t.record_failure(None, Some("10.0.0.1".parse().unwrap()));
        assert!(
            t.check(None, Some("10.0.0.1".parse().unwrap())).is_err(),
            "v4-mapped is v4"
        );
    }
}
