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
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::crypto::Lane;
use crate::domain::ThrottleSettings;

pub struct Throttle {
    /// Failures for one client id from one address.
    pairs: Counter<(String, IpAddr)>,
    addresses: Counter<IpAddr>,
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
    pub fn new(settings: &ThrottleSettings) -> Self {
        Self {
            pairs: Counter::new(settings.client_failures, settings.window, MAX_TRACKED),
            addresses: Counter::new(settings.address_failures, settings.window, MAX_TRACKED),
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
        let address = address.map(source);
        let ip = address.unwrap_or(UNKNOWN);
        let by_client = client_id.map_or(Ok(()), |id| self.pairs.check(&(id.to_owned(), ip)));
        let by_address = address.map_or(Ok(()), |ip| self.addresses.check(&ip));
        match (by_client, by_address) {
            (Ok(()), Ok(())) => Ok(()),
            (a, b) => Err(a.err().unwrap_or(0).max(b.err().unwrap_or(0))),
        }
    }

    /// Whether the caller has failures on record in the current window: for
    /// its address, or for this id from its address.
    fn has_failures(&self, client_id: Option<&str>, address: Option<IpAddr>) -> bool {
        let ip = address.map_or(UNKNOWN, source);
        self.addresses.has_failures(&ip)
            || client_id.is_some_and(|id| self.pairs.has_failures(&(id.to_owned(), ip)))
    }

    /// Counts a failure against the (id, address) pair, when the id is
    /// well-formed, and against the address.
    pub fn record_failure(&self, client_id: Option<&str>, address: Option<IpAddr>) {
        let address = address.map(source);
        if let Some(id) = client_id {
            self.pairs
                .record((id.to_owned(), address.unwrap_or(UNKNOWN)));
        }
        if let Some(ip) = address {
            self.addresses.record(ip);
        }
    }
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

/// Entries per counter at most: at ~100 bytes each, a few MiB.
const MAX_TRACKED: usize = 50_000;

struct Counter<K> {
    limit: Option<u32>,
    window: Duration,
    max_entries: usize,
    windows: Mutex<HashMap<K, (Instant, u32)>>,
}

impl<K: Hash + Eq + Clone> Counter<K> {
    fn new(limit: Option<u32>, window: Duration, max_entries: usize) -> Self {
        Self {
            limit,
            window,
            max_entries,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn check<Q>(&self, key: &Q) -> Result<(), u64>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        match windows.get(key) {
            Some((started, count)) if *count >= limit && started.elapsed() < self.window => {
                let left = self.window.saturating_sub(started.elapsed());
                Err(left.as_secs() + 1)
            }
            _ => Ok(()),
        }
    }

    fn has_failures(&self, key: &K) -> bool {
        if self.limit.is_none() {
            return false;
        }
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        windows
            .get(key)
            .is_some_and(|(started, count)| *count > 0 && started.elapsed() < self.window)
    }

    fn record(&self, key: K) {
        if self.limit.is_none() {
            return;
        }
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= self.max_entries && !windows.contains_key(&key) {
            let window = self.window;
            windows.retain(|_, (started, _)| started.elapsed() < window);
            if windows.len() >= self.max_entries {
                // Every slot holds a live window: an attack from more sources
                // than we track. The newcomer is tracked all the same (never
                // fail open: an untracked source would guess unlimited); the
                // window that started longest ago makes room.
                let oldest = windows
                    .iter()
                    .min_by_key(|(_, (started, _))| *started)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    windows.remove(&oldest);
                }
                tracing::warn!("failure throttle table full; forgot the oldest window");
            }
        }
        let entry = windows.entry(key).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(client: u32, address: u32) -> Throttle {
        Throttle::new(&ThrottleSettings {
            client_failures: Some(client),
            address_failures: Some(address),
            window: Duration::from_secs(60),
        })
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
    fn bounded_and_never_open() {
        let t = Counter::<u32>::new(Some(1), Duration::from_secs(60), 3);
        for k in 0..10 {
            t.record(k);
        }
        assert_eq!(t.windows.lock().unwrap().len(), 3);
        assert!(
            t.check(&9).is_err(),
            "a source met when the table is full is tracked"
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
