//! Timestamps and durations as airlock writes them: RFC 3339 in UTC with whole
//! seconds (`2026-11-28T08:00:00Z`), and durations like `30d`, `12h`, `10m`.

use crate::error::{Error, Result};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

/// A point in time, UTC, whole seconds.
pub type Timestamp = DateTime<Utc>;

/// Parses an RFC 3339 timestamp (any offset), normalised to UTC.
pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    if s.len() > 64 {
        return None;
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Parses a time given on the command line: RFC 3339 in whole seconds (the only
/// times airlock writes and signs), normalised to UTC; `None` otherwise.
pub fn parse_argument(s: &str) -> Option<Timestamp> {
    parse_rfc3339(s).filter(|t| t.timestamp_subsec_nanos() == 0)
}

/// Formats `t` the one way airlock writes times.
pub fn format(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The current time truncated to whole seconds.
pub fn now() -> Timestamp {
    let t = Utc::now();
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// Parses a duration such as `90s`, `10m`, `12h`, `30d` or `2w`.
pub fn parse_duration(s: &str) -> Result<TimeDelta> {
    let bad = || {
        Error::Invalid(format!(
            "'{s}' is not a duration: use a number followed by s, m, h, d or w (for example 30d)"
        ))
    };
    let unit = s.chars().last().ok_or_else(bad)?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    if n <= 0 || n > 100 * 366 * 86_400 {
        return Err(bad());
    }
    let secs = match unit {
        's' => Some(n),
        'm' => n.checked_mul(60),
        'h' => n.checked_mul(3_600),
        'd' => n.checked_mul(86_400),
        'w' => n.checked_mul(7 * 86_400),
        _ => None,
    }
    .ok_or_else(bad)?;
    TimeDelta::try_seconds(secs).ok_or_else(bad)
}

/// Parses `s` as a duration after `base`, or as an absolute RFC 3339 time.
pub fn parse_deadline(s: &str, base: &Timestamp) -> Result<Timestamp> {
    if let Some(t) = parse_rfc3339(s) {
        return parse_argument(s).ok_or_else(|| {
            Error::Invalid(format!(
                "'{s}' has a fraction of a second: give whole seconds ({})",
                format(&t)
            ))
        });
    }
    let d = parse_duration(s)?;
    base.checked_add_signed(d)
        .ok_or_else(|| Error::Invalid(format!("'{s}' after {} is out of range", format(base))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d").unwrap(), TimeDelta::days(30));
        assert_eq!(parse_duration("10m").unwrap(), TimeDelta::minutes(10));
        let base = now();
        assert!(parse_deadline("2030-01-01T00:00:00.5Z", &base).is_err());
        assert!(parse_deadline("2030-01-01T00:00:00Z", &base).is_ok());
        assert!(parse_argument("2030-01-01T00:00:00.000Z").is_some());
        assert!(parse_argument("2030-01-01T00:00:00.001Z").is_none());
        for bad in ["", "d", "-1d", "0d", "5y", "1.5d", "99999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rfc3339_round_trip() {
        let t = parse_rfc3339("2026-11-28T09:00:00+01:00").unwrap();
        assert_eq!(format(&t), "2026-11-28T08:00:00Z");
        let base = parse_rfc3339("2026-11-28T00:00:00Z").unwrap();
        assert_eq!(
            format(&parse_deadline("7d", &base).unwrap()),
            "2026-12-05T00:00:00Z"
        );
    }
}
