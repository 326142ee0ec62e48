//! The wall clock, read in one place: Unix time now (seconds, milliseconds, with a
//! fraction, nanoseconds for seeds), and Unix seconds as a UTC date for people to read.
//! A clock set before 1970 reads as 0. The event loop's deadlines use `Instant`, not this.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time since the Unix epoch (zero before it).
fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Seconds since the Unix epoch: the store's clock (records, expiry).
pub fn unix_seconds() -> i64 {
    since_epoch().as_secs() as i64
}

/// Milliseconds since the Unix epoch.
pub fn unix_millis() -> u64 {
    since_epoch().as_millis() as u64
}

/// Seconds since the Unix epoch with their fraction.
pub fn unix_precise() -> f64 {
    since_epoch().as_secs_f64()
}

/// Nanoseconds since the Unix epoch: a seed that differs between runs and machines, not a time.
pub fn unix_nanos() -> u128 {
    since_epoch().as_nanos()
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (the console's pages and the CLI).
pub fn utc(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_dates_across_leap_days_and_eras() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(1_798_761_599), "2026-12-31 23:59:59 UTC");
        assert_eq!(utc(-1), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn the_readings_agree_with_each_other() {
        let (secs, millis, precise) = (unix_seconds(), unix_millis(), unix_precise());
        // Read one after the other: within a second of each other, all after 2020.
        assert!(secs > 1_577_836_800);
        assert!((millis / 1000) as i64 - secs <= 1);
        assert!(precise - secs as f64 <= 1.0 && precise >= secs as f64);
        assert!(unix_nanos() / 1_000_000_000 >= secs as u128);
    }
}
