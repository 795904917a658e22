//! pax extended header records (POSIX.1-2001 `pax` "Extended header
//! format"): `"<len> <key>=<value>\n"`, parsed by their length prefix so
//! values may hold any byte, and written the way GNU tar writes them.

use rootforge_common::Time;

/// pax records: key and value bytes, in archive order.
pub(crate) type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// Why an extended header could not be parsed, with the `path` record
/// read before the bad one, if any, to name the member.
#[derive(Debug)]
pub(crate) struct PaxError {
    pub(crate) reason: String,
    pub(crate) path: Option<Vec<u8>>,
}

/// Parses the data of an extended header (`x`, `g` or Solaris `X`).
pub(crate) fn parse(mut data: &[u8]) -> Result<Records, PaxError> {
    let mut out: Records = Vec::new();
    let fail = |out: &Records, why: &str| PaxError {
        reason: format!("bad pax record: {why}"),
        path: get(out, b"path").map(<[u8]>::to_vec),
    };
    // GNU tar pads the data of some extended headers with NULs.
    while let Some((&first, _)) = data.split_first() {
        if first == 0 {
            break;
        }
        let sp = data
            .iter()
            .take(20)
            .position(|&b| b == b' ')
            .ok_or_else(|| fail(&out, "no length"))?;
        let len: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| fail(&out, "bad length"))?;
        if len <= sp.saturating_add(1) || len > data.len() {
            return Err(fail(&out, "length out of range"));
        }
        let rec = &data[sp + 1..len];
        let rec = rec
            .strip_suffix(b"\n")
            .ok_or_else(|| fail(&out, "record does not end with a newline"))?;
        let eq = rec
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| fail(&out, "no `=`"))?;
        out.push((rec[..eq].to_vec(), rec[eq + 1..].to_vec()));
        data = &data[len..];
    }
    Ok(out)
}

/// The value of `key`: the last record for it wins, and an empty value
/// unsets it.
pub(crate) fn get<'r>(pax: &'r Records, key: &[u8]) -> Option<&'r [u8]> {
    let v = pax
        .iter()
        .rev()
        .find(|(k, _)| k.as_slice() == key)?
        .1
        .as_slice();
    (!v.is_empty()).then_some(v)
}

/// "bad pax `what` value ...", the value shortened if it is long.
pub(crate) fn bad_value(what: &str, v: &[u8]) -> String {
    let text = String::from_utf8_lossy(v);
    format!("bad pax {what} value {:?}", rootforge_common::elide(&text))
}

/// A decimal number, as pax writes sizes, ids and sparse maps.
pub(crate) fn parse_u64(v: &[u8], what: &str) -> Result<u64, String> {
    std::str::from_utf8(v)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad_value(what, v))
}

/// A uid or gid.
pub(crate) fn parse_id(v: &[u8], what: &str) -> Result<u32, String> {
    let n = parse_u64(v, what)?;
    u32::try_from(n).map_err(|_| bad_value(what, v))
}

/// A pax time: `[-]seconds[.fraction]`. For negative times the fraction
/// counts away from zero (`-1.5` is half a second before `-1`).
pub(crate) fn parse_time(v: &[u8]) -> Result<Time, String> {
    let bad = || bad_value("mtime", v);
    let s = std::str::from_utf8(v).map_err(|_| bad())?;
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (secs, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if secs.is_empty()
        || !secs.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let mut nsec = 0u32;
    let mut scale = 100_000_000u32;
    for b in frac.bytes().take(9) {
        nsec += u32::from(b - b'0') * scale;
        scale /= 10;
    }
    Ok(if !neg {
        Time { sec: secs, nsec }
    } else if nsec == 0 {
        Time {
            sec: -secs,
            nsec: 0,
        }
    } else {
        Time {
            sec: (-secs).checked_sub(1).ok_or_else(bad)?,
            nsec: 1_000_000_000 - nsec,
        }
    })
}

/// A pax time value: seconds and the fraction with trailing zeros trimmed.
/// Before the epoch the value is the real number, as GNU tar writes it
/// (`sec = -2, nsec = 5e8` is `-1.5`).
pub(crate) fn format_time(t: Time) -> String {
    if t.nsec == 0 {
        return t.sec.to_string();
    }
    let (sign, whole, frac) = if t.sec < 0 {
        // |sec + 1| and 1e9 - nsec (the plan refused nsec >= 1e9); no
        // overflow for sec = i64::MIN.
        (
            "-",
            t.sec.unsigned_abs() - 1,
            1_000_000_000u32.saturating_sub(t.nsec),
        )
    } else {
        ("", t.sec.unsigned_abs(), t.nsec)
    };
    let digits = format!("{frac:09}");
    format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
}

/// Appends one `"<len> <key>=<value>\n"` record, where `len` counts the
/// whole record including its own digits.
pub(crate) fn record(pax: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    // Key and value are in memory, so their lengths are far from overflow.
    let rest = key.len().saturating_add(value.len()).saturating_add(3);
    let mut len = rest.saturating_add(decimal_digits(rest));
    if decimal_digits(len) != decimal_digits(rest) {
        len = rest.saturating_add(decimal_digits(len));
    }
    pax.extend_from_slice(len.to_string().as_bytes());
    pax.push(b' ');
    pax.extend_from_slice(key);
    pax.push(b'=');
    pax.extend_from_slice(value);
    pax.push(b'\n');
}

fn decimal_digits(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// `LIBARCHIVE.xattr.*` names are percent-encoded.
pub(crate) fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(s.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

/// `LIBARCHIVE.xattr.*` values are base64 (RFC 4648), padding optional.
pub(crate) fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        Some(u32::from(v))
    };
    let s: Vec<u8> = s
        .iter()
        .copied()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(s.len() / 4 * 3 + 3);
    for chunk in s.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut acc = 0u32;
        let mut shift = 18u32;
        for &c in chunk {
            acc |= val(c)? << shift;
            shift = shift.saturating_sub(6);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(
            parse_time(b"1700000000.5").unwrap(),
            Time {
                sec: 1700000000,
                nsec: 500_000_000
            }
        );
        assert_eq!(
            parse_time(b"-1.25").unwrap(),
            Time {
                sec: -2,
                nsec: 750_000_000
            }
        );
        assert_eq!(parse_time(b"-3").unwrap(), Time { sec: -3, nsec: 0 });
        assert_eq!(
            parse_time(b"4102444800.123456789123").unwrap().nsec,
            123_456_789
        );
        assert!(parse_time(b"12x").is_err());
        assert!(parse_time(b"99999999999999999999999").is_err());
        for t in [
            Time {
                sec: -2,
                nsec: 500_000_000,
            },
            Time {
                sec: 5,
                nsec: 120_000_000,
            },
            Time { sec: -7, nsec: 0 },
        ] {
            assert_eq!(parse_time(format_time(t).as_bytes()).unwrap(), t);
        }
    }

    #[test]
    fn base64_and_percent() {
        assert_eq!(base64_decode(b"AQIDBA==").unwrap(), [1, 2, 3, 4]);
        assert_eq!(base64_decode(b"aGk=").unwrap(), b"hi");
        assert_eq!(percent_decode(b"user.a%3Db").unwrap(), b"user.a=b");
        assert!(percent_decode(b"x%4").is_none());
    }

    #[test]
    fn records_parse_by_length_and_name_the_path_on_error() {
        let mut data = Vec::new();
        record(&mut data, b"path", b"a\nb");
        record(&mut data, b"size", b"7");
        let r = parse(&data).unwrap();
        assert_eq!(get(&r, b"path"), Some(&b"a\nb"[..]));
        data.extend_from_slice(b"4 x\n");
        let e = parse(&data).unwrap_err();
        assert_eq!(e.path.as_deref(), Some(&b"a\nb"[..]));
        assert!(e.reason.contains("no `=`"), "{}", e.reason);
    }
}
