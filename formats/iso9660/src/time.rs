//! ECMA-119 dates: the 7-byte form of directory records and Rock Ridge `TF`
//! entries, and the 17-byte text form of volume descriptors. All in UTC.

use rootforge_common::Time;

/// Seconds of the earliest and latest instants the 7-byte form holds
/// (1900-01-01 and 2155-12-31 23:59:59).
const MIN_SEC: i64 = -2_208_988_800;
const MAX_SEC: i64 = 5_869_583_999;

/// Splits seconds since the epoch into (year, month, day, hour, min, sec).
fn civil(sec: i64) -> (i64, u8, u8, u8, u8, u8) {
    let days = sec.div_euclid(86_400);
    let rem = sec.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Every field below is in range by construction of the algorithm.
    let small = |v: i64| u8::try_from(v).unwrap_or(0);
    (
        year,
        small(month),
        small(day),
        small(rem / 3600),
        small(rem / 60 % 60),
        small(rem % 60),
    )
}

/// Seconds since the epoch of a civil UTC date.
pub(crate) fn from_civil(year: i64, month: u8, day: u8, hour: u8, min: u8, sec: u8) -> i64 {
    let (y, m) = if month <= 2 {
        (year - 1, i64::from(month) + 9)
    } else {
        (year, i64::from(month) - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * m + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + i64::from(hour) * 3600 + i64::from(min) * 60 + i64::from(sec)
}

/// Whether the 7-byte form holds `t` without clamping.
pub(crate) fn fits_short(t: Time) -> bool {
    (MIN_SEC..=MAX_SEC).contains(&t.sec)
}

/// The 7-byte form; times outside 1900..=2155 are clamped.
pub(crate) fn short(t: Time) -> [u8; 7] {
    let (y, mo, d, h, mi, s) = civil(t.sec.clamp(MIN_SEC, MAX_SEC));
    [u8::try_from(y - 1900).unwrap_or(0), mo, d, h, mi, s, 0]
}

/// Reads the 7-byte form (with its offset from GMT in 15-minute steps).
pub(crate) fn parse_short(b: &[u8; 7]) -> i64 {
    let local = from_civil(1900 + i64::from(b[0]), b[1], b[2], b[3], b[4], b[5]);
    local - i64::from(b[6] as i8) * 900
}

/// Reads either form (the 17-byte one as written by other tools).
pub(crate) fn parse(b: &[u8]) -> Option<i64> {
    if let Ok(short) = <&[u8; 7]>::try_from(b) {
        return Some(parse_short(short));
    }
    let text = std::str::from_utf8(b.get(..14)?).ok()?;
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<u16>().ok();
    let small = |r| num(r).and_then(|v| u8::try_from(v).ok());
    let local = from_civil(
        i64::from(num(0..4)?),
        small(4..6)?,
        small(6..8)?,
        small(8..10)?,
        small(10..12)?,
        small(12..14)?,
    );
    Some(local - i64::from(*b.get(16)? as i8) * 900)
}

/// The 17-byte text form: `YYYYMMDDHHMMSScc` and the offset from GMT.
pub(crate) fn long(t: Time) -> [u8; 17] {
    let (y, mo, d, h, mi, s) = civil(t.sec.clamp(-62_135_596_800, 253_402_300_799));
    let cs = t.nsec / 10_000_000;
    let text = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}{:02}", cs.min(99));
    let mut out = [0u8; 17];
    out[..16].copy_from_slice(&text.as_bytes()[..16]);
    out
}

/// The 17-byte form meaning "not specified".
pub(crate) const LONG_UNSET: [u8; 17] = *b"0000000000000000\0";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_clamps() {
        for sec in [0, 1_700_000_000, -1, 951_782_400, MIN_SEC, MAX_SEC] {
            assert_eq!(parse_short(&short(Time::from_secs(sec))), sec, "{sec}");
        }
        assert_eq!(parse_short(&short(Time::from_secs(i64::MAX))), MAX_SEC);
        assert!(!fits_short(Time::from_secs(MIN_SEC - 1)));
        assert_eq!(
            &long(Time::from_secs(1_700_000_000))[..16],
            b"2023111422132000"
        );
    }
}
