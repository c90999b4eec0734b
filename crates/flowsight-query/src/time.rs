//! Time windows: nfdump's `-t yyyy/MM/dd.hh:mm:ss[-yyyy/MM/dd.hh:mm:ss]` and the
//! `--since/--until` forms (`2026-11-22T10:00:00Z`, `2026-11-22 10:00`, `1h` ago, Unix
//! seconds). All times are UTC.

use crate::engine::TimeRange;

const NS: u64 = 1_000_000_000;

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an absolute time whose parts are separated by any of `/-.:T ` (year, month, day,
/// then optional hour, minute, second); missing parts are zero. Returns ns and how many
/// parts were given.
fn parse_absolute(s: &str) -> Option<(u64, usize)> {
    let s = s.trim().trim_end_matches('Z');
    let parts: Vec<&str> = s
        .split(['/', '-', '.', ':', 'T', ' '])
        .filter(|p| !p.is_empty())
        .collect();
    if parts.len() < 3 || parts.len() > 6 {
        return None;
    }
    let mut v = [0i64; 6];
    for (i, p) in parts.iter().enumerate() {
        v[i] = p.parse().ok()?;
    }
    let (y, mo, d, h, mi, se) = (v[0], v[1], v[2], v[3], v[4], v[5]);
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || !(0..=23).contains(&h)
        || !(0..=59).contains(&mi)
        || !(0..=60).contains(&se)
    {
        return None;
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se;
    Some((u64::try_from(secs).ok()? * NS, parts.len()))
}

/// The length of the last given part: a window given to the hour spans that hour.
fn span_of(parts: usize) -> u64 {
    match parts {
        3 => 86_400 * NS,
        4 => 3600 * NS,
        5 => 60 * NS,
        _ => NS,
    }
}

/// Parses one point in time: absolute (see module docs), `Ns`/`Nm`/`Nh`/`Nd` ago (with or
/// without a leading `-`), `now`, or Unix seconds.
pub fn parse_point(s: &str, now_ns: u64) -> Result<u64, String> {
    let t = s.trim();
    if t == "now" {
        return Ok(now_ns);
    }
    if let Some((ns, _)) = parse_absolute(t) {
        return Ok(ns);
    }
    let rel = t.strip_prefix('-').unwrap_or(t);
    if let Some(unit) = rel.chars().last().filter(|c| c.is_ascii_alphabetic()) {
        let num = &rel[..rel.len() - 1];
        if let Ok(n) = num.parse::<u64>() {
            let mult = match unit {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 604_800,
                _ => 0,
            };
            if mult > 0 {
                // Checked: a huge count is an error, not a wrapped time.
                if let Some(d) = n.checked_mul(mult).and_then(|x| x.checked_mul(NS)) {
                    return Ok(now_ns.saturating_sub(d));
                }
            }
        }
    }
    if let Ok(secs) = t.parse::<u64>()
        && let Some(ns) = secs.checked_mul(NS)
    {
        return Ok(ns);
    }
    Err(format!(
        "`{s}` is not a time: write 2026-11-22T10:00:00Z, 2026/11/22.10:00:00, 1h (ago) or Unix seconds"
    ))
}

/// Parses nfdump's `-t` window: `start[-end]`, each `yyyy/MM/dd[.hh[:mm[:ss]]]`. Without an
/// end the window runs to the end of the start's last given unit (`2026/11/22.10` is that
/// hour); with one, it ends at the end of that second.
pub fn parse_window(s: &str) -> Result<TimeRange, String> {
    // The separator between start and end is the `-` that follows a complete start.
    let bad = || {
        format!(
            "`{s}` is not a time window: write yyyy/MM/dd.hh:mm:ss[-yyyy/MM/dd.hh:mm:ss], e.g. 2026/11/22.10:00-2026/11/22.11:30"
        )
    };
    let (a, b) = match s.split_once('-') {
        Some((a, b)) if a.contains('/') => (a, Some(b)),
        _ => (s, None),
    };
    let (start, parts) = parse_absolute(a).ok_or_else(bad)?;
    let until = match b {
        Some(b) => {
            let (end, p) = parse_absolute(b).ok_or_else(bad)?;
            end + span_of(p)
        }
        None => start + span_of(parts),
    };
    if until <= start {
        return Err(format!("`{s}`: the window ends before it starts"));
    }
    Ok(TimeRange {
        since: start,
        until,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-22T10:00:00Z
    const T: u64 = 1_795_341_600 * NS;

    #[test]
    fn windows() {
        let w = parse_window("2026/11/22.10:00:00-2026/11/22.10:59:59").unwrap();
        assert_eq!((w.since, w.until), (T, T + 3600 * NS));
        let w = parse_window("2026/11/22.10").unwrap();
        assert_eq!((w.since, w.until), (T, T + 3600 * NS));
        let w = parse_window("2026/11/22").unwrap();
        assert_eq!(w.until - w.since, 86_400 * NS);
        assert!(parse_window("2026/13/22").is_err());
        assert!(
            parse_window("yesterday")
                .unwrap_err()
                .contains("yyyy/MM/dd")
        );
        assert!(
            parse_window("2026/11/22.10-2026/11/22.09")
                .unwrap_err()
                .contains("ends before")
        );
    }

    #[test]
    fn points() {
        assert_eq!(parse_point("2026-11-22T10:00:00Z", 0), Ok(T));
        assert_eq!(parse_point("2026-11-22 10:00", 0), Ok(T));
        assert_eq!(parse_point("1h", T), Ok(T - 3600 * NS));
        assert_eq!(parse_point("-30m", T), Ok(T - 1800 * NS));
        assert_eq!(parse_point("now", T), Ok(T));
        assert_eq!(parse_point("1795341600", 0), Ok(T));
        assert!(parse_point("teatime", T).is_err());
        // Too large for nanoseconds in a u64 (year 2554+): an error, not a wrapped time.
        assert!(parse_point("20000000000", T).is_err());
        assert!(parse_point("99999999999999d", T).is_err());
    }
}
