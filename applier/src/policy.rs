//! Host policy that signatures alone cannot decide, read from the ledger: a bundle
//! whose sequence number is lower than one already accepted on the channel is a
//! rollback, and a host clock behind the newest ledger time (beyond
//! `policy.max_clock_skew`) is a wound-back clock that could make an expired
//! bundle look fresh. Both refuse with exit 4.

use crate::error::{Error, Result};
use airlock_format::profile::Profile;
use airlock_format::time::{self, Timestamp};
use airlock_ledger::{Ledger, Query};

/// Refuses when `now` is earlier than the newest time in the ledger by more than
/// the profile's `max_clock_skew`.
pub fn check_clock(profile: &Profile, ledger: &Ledger, now: &Timestamp) -> Result<()> {
    let Some(newest) = ledger.newest_time()? else {
        return Ok(());
    };
    let skew = profile.policy().max_clock_skew();
    if *now + skew >= newest {
        return Ok(());
    }
    Err(Error::Refused {
        what: "clock".into(),
        reason: format!(
            "this host's clock says {}, but the ledger already holds an entry from {} (more than policy.max_clock_skew = {} s ahead): a clock set back could make an expired bundle look valid",
            time::format(now),
            time::format(&newest),
            skew.num_seconds()
        ),
        hint: "set the clock right (check NTP or the hardware clock), then run again; nothing was changed. If the clock is right, an earlier run wrote a time from the future (a clock once set ahead): `airlock-ledger log --since` that time shows it, and runs resume once that time has passed".into(),
    })
}

/// The highest sequence number of a bundle on `channel` this host has verified.
pub fn highest_accepted(ledger: &Ledger, channel: &str) -> Result<Option<u64>> {
    let mut highest: Option<u64> = None;
    let q = Query {
        kind: Some("bundle.verified".into()),
        ..Query::default()
    };
    ledger.query(&q, |e| {
        let d = e.detail_json();
        if d["channel"].as_str() == Some(channel)
            && let Some(seq) = d["seq"].as_u64()
        {
            highest = Some(highest.map_or(seq, |h| h.max(seq)));
        }
        Ok(())
    })?;
    Ok(highest)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use airlock_ledger::NewEntry;
    use serde_json::json;

    fn ledger(dir: &std::path::Path) -> Ledger {
        let key = airlock_format::keys::generate(None, "t").unwrap();
        let public = airlock_format::keys::PublicKey::from_text(&key.public, "t").unwrap();
        Ledger::create(&dir.join("ledger.db"), "h1", &public, "test").unwrap()
    }

    #[test]
    fn the_highest_sequence_is_per_channel() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = ledger(dir.path());
        assert_eq!(highest_accepted(&l, "prod").unwrap(), None);
        for (channel, seq) in [("prod", 3), ("prod", 7), ("test", 9), ("prod", 5)] {
            l.append(NewEntry::new(
                "bundle.verified",
                "t",
                json!({"channel": channel, "seq": seq}),
            ))
            .unwrap();
        }
        l.append(NewEntry::new(
            "bundle.rejected",
            "t",
            json!({"channel": "prod", "seq": 99}),
        ))
        .unwrap();
        assert_eq!(highest_accepted(&l, "prod").unwrap(), Some(7));
        assert_eq!(highest_accepted(&l, "test").unwrap(), Some(9));
    }
}
