//! The pipeline's `local-time-zone`: an IANA zone or a fixed offset (`GMT-08:00`, `+08:00`, `UTC`).

use std::str::FromStr;

use chrono::{FixedOffset, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// A time zone as Flink accepts it for `local-time-zone`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Zone {
    /// An IANA zone such as `Asia/Shanghai`.
    Named(Tz),
    /// A fixed offset east of UTC, in seconds.
    Fixed(i32),
}

impl Zone {
    /// Parses a zone id; `None` when it is neither an IANA name nor an offset.
    pub fn parse(s: &str) -> Option<Zone> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("UTC") || t.eq_ignore_ascii_case("GMT") || t == "Z" {
            return Some(Zone::Fixed(0));
        }
        let rest = ["GMT", "UTC", "UT"]
            .iter()
            .find_map(|p| t.strip_prefix(p))
            .unwrap_or(t);
        if let Some(off) = parse_offset(rest) {
            return Some(Zone::Fixed(off));
        }
        Tz::from_str(t).ok().map(Zone::Named)
    }

    /// The zone for an unset `local-time-zone`: `$TZ` when it parses, else UTC (Flink uses the
    /// JVM default, which on servers is almost always one of those).
    pub fn system_default() -> Zone {
        std::env::var("TZ")
            .ok()
            .and_then(|z| Zone::parse(&z))
            .unwrap_or(Zone::Fixed(0))
    }

    /// Offset from UTC in seconds at the instant `epoch_ms`.
    pub fn offset_at(&self, epoch_ms: i64) -> i32 {
        match self {
            Zone::Fixed(s) => *s,
            Zone::Named(tz) => match Utc.timestamp_millis_opt(epoch_ms) {
                LocalResult::Single(t) => tz
                    .offset_from_utc_datetime(&t.naive_utc())
                    .fix()
                    .local_minus_utc(),
                _ => 0,
            },
        }
    }

    /// Wall-clock time in this zone at the instant `epoch_ms`.
    pub fn to_local(&self, epoch_ms: i64) -> Option<NaiveDateTime> {
        let utc = chrono::DateTime::from_timestamp_millis(epoch_ms)?.naive_utc();
        Some(utc + chrono::Duration::seconds(self.offset_at(epoch_ms) as i64))
    }

    /// The instant (epoch ms) of a wall-clock time in this zone; the earlier one when ambiguous.
    pub fn from_local(&self, local: NaiveDateTime) -> i64 {
        match self {
            Zone::Fixed(s) => local.and_utc().timestamp_millis() - *s as i64 * 1000,
            Zone::Named(tz) => match tz.from_local_datetime(&local) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.timestamp_millis(),
                // In a DST gap: shift by the offset before the gap, like java.time does.
                LocalResult::None => {
                    let guess = local.and_utc().timestamp_millis();
                    guess - self.offset_at(guess) as i64 * 1000
                }
            },
        }
    }

    /// The zone as a chrono `FixedOffset` at an instant (for `%z` formatting).
    pub fn fixed_at(&self, epoch_ms: i64) -> FixedOffset {
        FixedOffset::east_opt(self.offset_at(epoch_ms))
            .unwrap_or(FixedOffset::east_opt(0).expect("zero offset"))
    }
}

/// `+08:00`, `-8`, `+0800`, `-08` → seconds east of UTC.
fn parse_offset(s: &str) -> Option<i32> {
    let (sign, body) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = match body.split_once(':') {
        Some((h, m)) => (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?),
        None if body.len() == 4 => (body[..2].parse().ok()?, body[2..].parse().ok()?),
        None => (body.parse().ok()?, 0),
    };
    if h > 18 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_parse_like_java_zone_ids() {
        assert_eq!(Zone::parse("GMT-08:00"), Some(Zone::Fixed(-8 * 3600)));
        assert_eq!(Zone::parse("+05:30"), Some(Zone::Fixed(5 * 3600 + 1800)));
        assert_eq!(Zone::parse("UTC"), Some(Zone::Fixed(0)));
        assert!(matches!(Zone::parse("Asia/Shanghai"), Some(Zone::Named(_))));
        assert_eq!(
            Zone::parse("Mars/Olympus"),
            None,
            "unknown zones must be rejected"
        );
    }

    #[test]
    fn local_round_trips_through_named_zone() {
        let z = Zone::parse("Asia/Shanghai").expect("valid zone");
        let local = z.to_local(0).expect("in range");
        assert_eq!(local.to_string(), "1970-01-01 08:00:00");
        assert_eq!(z.from_local(local), 0);
    }
}
