//! Date arithmetic for the Modified Dates option: a whole-day shift applied to DA and DT.
//!
//! The shift is a whole number of days, so the time of day never changes: TM
//! values are left as they are by construction, separate DA + TM pairs stay
//! consistent with each other and with DT, and every interval within a
//! patient is kept exactly.

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn digits(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Shifts a `YYYYMMDD` date by `days`; None if it is not a valid full date.
fn shift_yyyymmdd(s: &str, days: i64) -> Option<String> {
    if s.len() != 8 {
        return None;
    }
    let (y, m, d) = (digits(&s[0..4])?, digits(&s[4..6])? as u32, digits(&s[6..8])? as u32);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let (y, m, d) = civil_from_days(days_from_civil(y, m, d) + days);
    (0..=9999).contains(&y).then(|| format!("{y:04}{m:02}{d:02}"))
}

/// Shifts one DA value (also the legacy `YYYY.MM.DD` form) by whole days.
pub fn shift_da(value: &str, days: i64) -> Option<String> {
    let v = value.trim();
    if !v.is_ascii() {
        return None;
    }
    if v.is_empty() {
        return Some(String::new());
    }
    let compact: String = v.chars().filter(|c| *c != '.').collect();
    shift_yyyymmdd(&compact, days)
}

/// Shifts one DT value by whole days, keeping its precision, time and offset.
pub fn shift_dt(value: &str, days: i64) -> Option<String> {
    let v = value.trim();
    if !v.is_ascii() {
        return None;
    }
    if v.len() < 8 {
        // Year or year-month only: shift the 1st of that period, keep the precision.
        let padded = match v.len() {
            0 => return Some(String::new()),
            4 => format!("{v}0101"),
            6 => format!("{v}01"),
            _ => return None,
        };
        return shift_yyyymmdd(&padded, days).map(|s| s[..v.len()].to_owned());
    }
    let (date, rest) = v.split_at(8);
    // The rest must be DT grammar: HHMMSS (any even prefix), optional .FFFFFF, optional &ZZXX offset.
    let (time, offset) = match rest.find(['+', '-']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let valid = hms.len() <= 6
        && hms.len() % 2 == 0
        && digits_only(hms)
        && frac.len() <= 6
        && digits_only(frac)
        && (offset.is_empty() || (offset.len() == 5 && digits_only(&offset[1..])));
    if !valid {
        return None;
    }
    Some(format!("{}{rest}", shift_yyyymmdd(date, days)?))
}

/// Applies a DA/DT shift to every value of a multi-valued (backslash-separated) string.
/// Values that do not parse become empty rather than leaking through unshifted.
pub fn shift_values(value: &str, days: i64, datetime: bool) -> String {
    value
        .split('\\')
        .map(|part| {
            if datetime {
                // DT offsets use '-', so DT values are never split as ranges.
                return shift_dt(part, days).unwrap_or_default();
            }
            // A DA range "A-B" shifts both ends.
            part.split('-')
                .map(|p| if datetime { shift_dt(p, days) } else { shift_da(p, days) }.unwrap_or_default())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect::<Vec<_>>()
        .join("\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_day_numbers_round_trip() {
        for z in [-800_000, -1, 0, 1, 18_000, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn dates_shift_across_month_year_and_leap_boundaries() {
        assert_eq!(shift_da("20240301", -1).as_deref(), Some("20240229"));
        assert_eq!(shift_da("20230101", -1).as_deref(), Some("20221231"));
        assert_eq!(shift_da("2023.01.10", -10).as_deref(), Some("20221231"));
        assert_eq!(shift_da("garbage", -1), None);
    }

    #[test]
    fn datetimes_keep_time_precision_and_offset() {
        assert_eq!(
            shift_dt("20240301123456.123456+0100", -1).as_deref(),
            Some("20240229123456.123456+0100")
        );
        assert_eq!(shift_dt("2024", -400).as_deref(), Some("2022"));
    }

    #[test]
    fn intervals_within_a_patient_are_kept() {
        let a = shift_da("20200115", -777).expect("a");
        let b = shift_da("20200301", -777).expect("b");
        let days = |s: &str| {
            days_from_civil(
                s[0..4].parse().unwrap_or(0),
                s[4..6].parse().unwrap_or(0),
                s[6..8].parse().unwrap_or(0),
            )
        };
        assert_eq!(days(&b) - days(&a), days("20200301") - days("20200115"));
    }

    #[test]
    fn datetime_offsets_and_junk_are_handled() {
        assert_eq!(shift_values("20240301123456-0500", -1, true), "20240229123456-0500");
        assert_eq!(shift_values("20240301 PHIJUNK SMITH", -1, true), "");
        assert_eq!(shift_values("2020\u{ff}1xx", -1, false), "");
    }

    #[test]
    fn unparseable_values_are_blanked_not_leaked() {
        assert_eq!(shift_values("20200101\\JOHN", -1, false), "20191231\\");
        assert_eq!(shift_values("20200101-20200105", -1, false), "20191231-20200104");
    }
}
