//! Timestamps in flow expressions: reading ISO 8601 text and writing .NET date formats (the
//! formats Logic Apps' `utcNow`, `formatDateTime` and `addDays` take), in UTC and en-US words.

use time::format_description::well_known::{Iso8601, Rfc3339};
use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// The format of `utcNow()` and of timestamps the functions return: .NET's round-trip `o`.
pub(crate) const ROUND_TRIP: &str = "o";

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Reads an ISO 8601 timestamp (`2024-05-01T09:30:00Z`, with any offset, fraction, or none),
/// a local date-time without offset (taken as UTC), or a date (midnight UTC).
pub(crate) fn parse_timestamp(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    // .NET also reads a space between date and time.
    let normalized = match text.get(10..11) {
        Some(" ") => format!("{}T{}", text.get(..10)?, text.get(11..)?),
        _ => text.to_owned(),
    };
    let text = normalized.as_str();
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(at.to_offset(UtcOffset::UTC));
    }
    if let Ok(at) = OffsetDateTime::parse(text, &Iso8601::DEFAULT) {
        return Some(at.to_offset(UtcOffset::UTC));
    }
    if let Ok(at) = PrimitiveDateTime::parse(text, &Iso8601::DEFAULT) {
        return Some(at.assume_utc());
    }
    Date::parse(text, &Iso8601::DEFAULT)
        .ok()
        .map(|date| date.midnight().assume_utc())
}

/// Writes `at` (converted to UTC) in a .NET standard (`o`, `s`, `u`, `d`, `D`, `t`, `T`, `f`,
/// `F`, `g`, `G`, `M`, `Y`, `R`) or custom format.
pub(crate) fn format_timestamp(at: OffsetDateTime, format: &str) -> Result<String, String> {
    let at = at.to_offset(UtcOffset::UTC);
    let mut chars = format.chars();
    let pattern = match (chars.next(), chars.next()) {
        (None, _) => standard('o'),
        (Some(c), None) => Some(
            standard(c).ok_or_else(|| format!("'{format}' is not a .NET standard date format"))?,
        ),
        _ => None,
    };
    custom(at, pattern.unwrap_or(format))
}

fn standard(c: char) -> Option<&'static str> {
    Some(match c {
        'o' | 'O' => "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
        's' => "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
        'u' => "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
        'd' => "M/d/yyyy",
        'D' => "dddd, MMMM d, yyyy",
        't' => "h:mm tt",
        'T' => "h:mm:ss tt",
        'f' => "dddd, MMMM d, yyyy h:mm tt",
        'F' => "dddd, MMMM d, yyyy h:mm:ss tt",
        'g' => "M/d/yyyy h:mm tt",
        'G' => "M/d/yyyy h:mm:ss tt",
        'M' | 'm' => "MMMM d",
        'Y' | 'y' => "MMMM yyyy",
        'R' | 'r' => "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
        _ => return None,
    })
}

fn custom(at: OffsetDateTime, pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut n = 0;
    while let Some(&c) = chars.get(n) {
        let run = chars
            .get(n..)
            .map_or(0, |rest| rest.iter().take_while(|&&d| d == c).count());
        let mut consumed = run;
        let month = u8::from(at.month());
        let hour12 = match at.hour() % 12 {
            0 => 12,
            h => h,
        };
        let fraction = format!("{:07}", at.nanosecond() / 100);
        match c {
            'y' => match run {
                1 => out.push_str(&(at.year() % 100).to_string()),
                2 => out.push_str(&format!("{:02}", at.year() % 100)),
                _ => out.push_str(&format!("{:0run$}", at.year())),
            },
            'M' => push_named(&mut out, run, month, MONTHS.get(usize::from(month) - 1)),
            'd' => {
                let weekday = WEEKDAYS.get(usize::from(at.weekday().number_days_from_monday()));
                push_named(&mut out, run, at.day(), weekday);
            }
            'H' => push_number(&mut out, run, at.hour()),
            'h' => push_number(&mut out, run, hour12),
            'm' => push_number(&mut out, run, at.minute()),
            's' => push_number(&mut out, run, at.second()),
            'f' | 'F' => {
                if run > 7 {
                    return Err(format!(
                        "'{}' asks for more than 7 fraction digits",
                        c.to_string().repeat(run)
                    ));
                }
                let digits = fraction.get(..run).unwrap_or("");
                if c == 'F' {
                    let trimmed = digits.trim_end_matches('0');
                    if trimmed.is_empty() && out.ends_with('.') {
                        out.pop();
                    }
                    out.push_str(trimmed);
                } else {
                    out.push_str(digits);
                }
            }
            't' => {
                let meridiem = if at.hour() < 12 { "AM" } else { "PM" };
                out.push_str(if run == 1 {
                    meridiem.get(..1).unwrap_or("")
                } else {
                    meridiem
                });
            }
            'K' => {
                out.push('Z');
                consumed = 1;
            }
            'z' => out.push_str(match run {
                1 => "+0",
                2 => "+00",
                _ => "+00:00",
            }),
            '\'' | '"' => {
                let Some(len) = chars
                    .get(n + 1..)
                    .and_then(|rest| rest.iter().position(|&d| d == c))
                else {
                    return Err(format!(
                        "the quoted text in the date format '{pattern}' is never closed"
                    ));
                };
                out.extend(chars.iter().skip(n + 1).take(len));
                consumed = len + 2;
            }
            '\\' => {
                if let Some(&escaped) = chars.get(n + 1) {
                    out.push(escaped);
                }
                consumed = 2;
            }
            '%' => consumed = 1,
            other => {
                out.push(other);
                consumed = 1;
            }
        }
        n += consumed;
    }
    Ok(out)
}

fn push_number(out: &mut String, run: usize, value: u8) {
    if run == 1 {
        out.push_str(&value.to_string());
    } else {
        out.push_str(&format!("{value:02}"));
    }
}

/// `d`/`dd` the number, `ddd` the abbreviated name, `dddd` the full name (months alike).
fn push_named(out: &mut String, run: usize, value: u8, name: Option<&&str>) {
    let name = name.copied().unwrap_or("");
    match run {
        1 | 2 => push_number(out, run, value),
        3 => out.push_str(name.get(..3).unwrap_or(name)),
        _ => out.push_str(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn reads_iso_timestamps_in_their_common_shapes() {
        let at = datetime!(2018-03-15 13:00:00 UTC);
        assert_eq!(parse_timestamp("2018-03-15T13:00:00Z"), Some(at));
        assert_eq!(parse_timestamp("2018-03-15T13:00:00.0000000Z"), Some(at));
        assert_eq!(parse_timestamp("2018-03-15T15:00:00+02:00"), Some(at));
        assert_eq!(parse_timestamp("2018-03-15T13:00:00"), Some(at));
        assert_eq!(parse_timestamp("2018-03-15 13:00:00"), Some(at));
        assert_eq!(
            parse_timestamp("2018-03-15"),
            Some(datetime!(2018-03-15 0:00 UTC))
        );
        assert_eq!(parse_timestamp("next tuesday"), None);
        assert_eq!(parse_timestamp(""), None);
    }

    #[test]
    fn writes_dotnet_standard_formats() {
        let at = datetime!(2018-03-05 13:07:09.1234567 UTC);
        assert_eq!(
            format_timestamp(at, "").unwrap(),
            "2018-03-05T13:07:09.1234567Z"
        );
        assert_eq!(
            format_timestamp(at, "o").unwrap(),
            "2018-03-05T13:07:09.1234567Z"
        );
        assert_eq!(format_timestamp(at, "s").unwrap(), "2018-03-05T13:07:09");
        assert_eq!(format_timestamp(at, "u").unwrap(), "2018-03-05 13:07:09Z");
        assert_eq!(format_timestamp(at, "d").unwrap(), "3/5/2018");
        assert_eq!(format_timestamp(at, "D").unwrap(), "Monday, March 5, 2018");
        assert_eq!(format_timestamp(at, "t").unwrap(), "1:07 PM");
        assert_eq!(
            format_timestamp(at, "R").unwrap(),
            "Mon, 05 Mar 2018 13:07:09 GMT"
        );
        assert!(format_timestamp(at, "Q").is_err());
    }

    #[test]
    fn writes_dotnet_custom_formats() {
        let at = datetime!(2018-03-05 00:07:09.5 +02:00);
        // Converted to UTC first: 2018-03-04 22:07:09.5.
        assert_eq!(format_timestamp(at, "yyyy-MM-dd").unwrap(), "2018-03-04");
        assert_eq!(
            format_timestamp(at, "dd/MM/yy HH:mm").unwrap(),
            "04/03/18 22:07"
        );
        assert_eq!(
            format_timestamp(at, "ddd d MMM, h tt").unwrap(),
            "Sun 4 Mar, 10 PM"
        );
        assert_eq!(format_timestamp(at, "ss.fff").unwrap(), "09.500");
        assert_eq!(format_timestamp(at, "ss.FFF").unwrap(), "09.5");
        assert_eq!(
            format_timestamp(datetime!(2018-03-05 0:00 UTC), "HH:mm:ss.FFF").unwrap(),
            "00:00:00"
        );
        assert_eq!(
            format_timestamp(at, "'Day' d \\o\\f MMMM").unwrap(),
            "Day 4 of March"
        );
        assert_eq!(format_timestamp(at, "%d").unwrap(), "4");
        assert_eq!(format_timestamp(at, "zzz K").unwrap(), "+00:00 Z");
        assert!(format_timestamp(at, "'open").is_err());
        assert!(format_timestamp(at, "ffffffff").is_err());
    }
}
