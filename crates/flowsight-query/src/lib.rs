//! The query layer of flowsight: the nfdump-style filter language ([`filter`]) and
//! nfdump-style statistics ([`stats`]) and aggregation ([`aggregate`]) over flow batches, time
//! windows ([`time`]), enrichment text keys ([`text`]), and the [`engine::Engine`] interface
//! the CLI and API query through.

pub mod aggregate;
mod cache;
pub mod engine;
pub mod filter;
pub mod sql;
pub mod stats;
pub mod text;
pub mod time;

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break (AS and
/// city names do).
pub fn csv_field(v: &str) -> std::borrow::Cow<'_, str> {
    if v.contains([',', '"', '\n', '\r']) {
        std::borrow::Cow::Owned(format!("\"{}\"", v.replace('"', "\"\"")))
    } else {
        std::borrow::Cow::Borrowed(v)
    }
}

/// `YYYY-MM-DD HH:MM:SS.mmm` (UTC) of Unix ns, like nfdump's timestamps.
pub fn utc_time(ns: u64) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let ms = (ns / 1_000_000) % 1000;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{ms:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_time_matches_known_dates() {
        assert_eq!(super::utc_time(0), "1970-01-01 00:00:00.000");
        // 2024-02-29T12:34:56.789Z (leap day)
        assert_eq!(
            super::utc_time(1_709_210_096_789_000_000),
            "2024-02-29 12:34:56.789"
        );
        assert_eq!(
            super::utc_time(1_704_067_199_999_000_000),
            "2023-12-31 23:59:59.999"
        );
    }
}
