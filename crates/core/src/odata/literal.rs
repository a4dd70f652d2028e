//! OData literal values: what each looks like in `$filter` text, how it is read and written back.

use std::fmt;

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, UtcOffset};
use uuid::Uuid;

/// A constant in a `$filter`.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    /// A number with a fraction or exponent (or an integer too large for i64), kept as written
    /// (`12.50`, `-0.5`, `1e-3`) so no precision is lost before the store binds it.
    Decimal(String),
    /// The text between the quotes, with `''` already turned into `'`.
    String(String),
    Guid(Uuid),
    DateTime(OffsetDateTime),
    Date(Date),
}

impl Literal {
    /// A string as an OData literal: in single quotes, each `'` doubled.
    pub(crate) fn quoted(text: &str) -> Quoted<'_> {
        Quoted(text)
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("null"),
            Self::Bool(value) => write!(f, "{value}"),
            Self::Int(value) => write!(f, "{value}"),
            Self::Decimal(text) => f.write_str(text),
            Self::String(text) => write!(f, "{}", Quoted(text)),
            Self::Guid(id) => write!(f, "{}", id.hyphenated()),
            Self::DateTime(at) => write_date_time(f, *at),
            Self::Date(date) => write_date(f, *date),
        }
    }
}

pub(crate) struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("'")?;
        for (index, part) in self.0.split('\'').enumerate() {
            if index > 0 {
                f.write_str("''")?;
            }
            f.write_str(part)?;
        }
        f.write_str("'")
    }
}

fn write_date(f: &mut fmt::Formatter<'_>, date: Date) -> fmt::Result {
    write!(
        f,
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Written by hand rather than with `time`'s formatter, which can fail, because `Display` must
/// not: RFC 3339 with `Z` for UTC, fractional seconds only when present, trailing zeros trimmed.
fn write_date_time(f: &mut fmt::Formatter<'_>, at: OffsetDateTime) -> fmt::Result {
    // OData offsets have no seconds; shift such a value to UTC rather than print a wrong offset.
    let at = if at.offset().seconds_past_minute() == 0 {
        at
    } else {
        at.to_offset(UtcOffset::UTC)
    };
    write_date(f, at.date())?;
    write!(f, "T{:02}:{:02}:{:02}", at.hour(), at.minute(), at.second())?;
    let nanos = at.nanosecond();
    if nanos > 0 {
        let digits = format!("{nanos:09}");
        write!(f, ".{}", digits.trim_end_matches('0'))?;
    }
    let offset = at.offset();
    if offset.is_utc() {
        f.write_str("Z")
    } else {
        let sign = if offset.is_negative() { '-' } else { '+' };
        write!(
            f,
            "{sign}{:02}:{:02}",
            offset.whole_hours().unsigned_abs(),
            offset.minutes_past_hour().unsigned_abs()
        )
    }
}

/// Whether `text` starts with a GUID in 8-4-4-4-12 form (either case) that is not glued to a
/// longer word.
pub(crate) fn starts_with_guid(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() < 36 {
        return false;
    }
    let shape_ok = bytes[..36]
        .iter()
        .enumerate()
        .all(|(index, byte)| match index {
            8 | 13 | 18 | 23 => *byte == b'-',
            _ => byte.is_ascii_hexdigit(),
        });
    let ends_cleanly = bytes
        .get(36)
        .is_none_or(|next| !is_word_byte(*next) && *next != b'-');
    shape_ok && ends_cleanly
}

fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// Reads an unquoted value that starts with a digit or `-`: an integer, a decimal, a GUID, a
/// date or a date-time. The error is the detail of a syntax error.
pub(crate) fn classify_unquoted(lexeme: &str) -> Result<Literal, String> {
    if lexeme.len() == 36 && starts_with_guid(lexeme) {
        return Uuid::parse_str(lexeme)
            .map(Literal::Guid)
            .map_err(|_| format!("'{lexeme}' is not a valid GUID"));
    }
    if is_integer(lexeme) {
        // OData reads an integer too large for Int64 as a decimal.
        return Ok(lexeme
            .parse::<i64>()
            .map_or_else(|_| Literal::Decimal(lexeme.to_owned()), Literal::Int));
    }
    if is_decimal(lexeme) {
        return Ok(Literal::Decimal(lexeme.to_owned()));
    }
    if let Some(rest) = date_prefix(lexeme) {
        let date =
            parse_date(&lexeme[..10]).ok_or_else(|| format!("'{lexeme}' is not a valid date"))?;
        return match rest {
            "" => Ok(Literal::Date(date)),
            _ if rest.starts_with(['T', 't']) => parse_date_time(lexeme).map(Literal::DateTime),
            _ => Err(format!("'{lexeme}' is not a valid date or date-time")),
        };
    }
    Err(format!(
        "'{lexeme}' is not a valid number, GUID, date or date-time"
    ))
}

/// `-?digits`
fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `-?digits(.digits)?([eE][+-]?digits)?` with at least a fraction or an exponent.
fn is_decimal(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (mantissa, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let exponent_ok = exponent.is_none_or(|e| all_digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    all_digits(whole)
        && fraction.is_none_or(all_digits)
        && exponent_ok
        && (fraction.is_some() || exponent.is_some())
}

/// The text after a leading `YYYY-MM-DD`, if the text starts with one.
fn date_prefix(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() >= 10
        && bytes[..10]
            .iter()
            .enumerate()
            .all(|(index, byte)| match index {
                4 | 7 => *byte == b'-',
                _ => byte.is_ascii_digit(),
            });
    shaped.then(|| &text[10..])
}

fn parse_date(text: &str) -> Option<Date> {
    let year = text.get(0..4)?.parse::<i32>().ok()?;
    let month = Month::try_from(text.get(5..7)?.parse::<u8>().ok()?).ok()?;
    let day = text.get(8..10)?.parse::<u8>().ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

/// `YYYY-MM-DDThh:mm[:ss[.fff]](Z|±hh:mm)`; OData lets the seconds go, RFC 3339 does not.
fn parse_date_time(text: &str) -> Result<OffsetDateTime, String> {
    let has_seconds = text.as_bytes().get(16) == Some(&b':');
    let full = if has_seconds || text.len() < 16 {
        text.to_owned()
    } else {
        format!("{}:00{}", &text[..16], &text[16..])
    };
    OffsetDateTime::parse(&full, &Rfc3339).map_err(|_| {
        let has_offset = text.ends_with(['Z', 'z']) || text[10..].contains(['+', '-']);
        if has_offset {
            format!("'{text}' is not a valid date-time")
        } else {
            format!(
                "the date-time '{text}' has no time-zone offset: end it with Z or an offset \
                 such as +02:00 (a '+' must be sent as %2B in a URL)"
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn integers_and_decimals() {
        assert_eq!(classify_unquoted("42"), Ok(Literal::Int(42)));
        assert_eq!(classify_unquoted("-7"), Ok(Literal::Int(-7)));
        assert_eq!(
            classify_unquoted("12.50"),
            Ok(Literal::Decimal("12.50".into()))
        );
        assert_eq!(
            classify_unquoted("-0.5"),
            Ok(Literal::Decimal("-0.5".into()))
        );
        assert_eq!(
            classify_unquoted("1e-3"),
            Ok(Literal::Decimal("1e-3".into()))
        );
        assert_eq!(
            classify_unquoted("2.5E+10"),
            Ok(Literal::Decimal("2.5E+10".into()))
        );
        assert_eq!(
            classify_unquoted("99999999999999999999"),
            Ok(Literal::Decimal("99999999999999999999".into()))
        );
        for bad in ["1.", ".5", "1..2", "1e", "--1", "1-2", "12abc", "1.5m"] {
            assert!(classify_unquoted(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn guids_in_either_case() {
        let id = "6A2C0B8E-0D4B-4E3A-9C1D-2B3A4C5D6E7F";
        let expected = Uuid::parse_str(id).unwrap();
        assert_eq!(classify_unquoted(id), Ok(Literal::Guid(expected)));
        assert_eq!(
            classify_unquoted(&id.to_lowercase()),
            Ok(Literal::Guid(expected))
        );
        assert!(starts_with_guid("abcdef01-0000-0000-0000-000000000000)"));
        assert!(!starts_with_guid("abcdef01-0000-0000-0000-000000000000x"));
        assert!(!starts_with_guid("abcdef01-0000-0000-0000-00000000000"));
    }

    #[test]
    fn dates_and_date_times() {
        assert_eq!(
            classify_unquoted("2026-01-01"),
            Ok(Literal::Date(date!(2026 - 01 - 01)))
        );
        assert_eq!(
            classify_unquoted("2026-01-01T00:00:00Z"),
            Ok(Literal::DateTime(datetime!(2026-01-01 0:00 UTC)))
        );
        assert_eq!(
            classify_unquoted("2026-03-04T05:06:07.125+02:00"),
            Ok(Literal::DateTime(datetime!(2026-03-04 5:06:07.125 +2)))
        );
        assert_eq!(
            classify_unquoted("2026-03-04T05:06Z"),
            Ok(Literal::DateTime(datetime!(2026-03-04 5:06 UTC)))
        );
        assert!(classify_unquoted("2026-02-30").is_err());
        assert!(classify_unquoted("2026-01-01T25:00:00Z").is_err());
        let missing = classify_unquoted("2026-01-01T00:00:00").unwrap_err();
        assert!(missing.contains("%2B"), "{missing}");
    }

    #[test]
    fn display_reads_back() {
        let values = [
            Literal::Null,
            Literal::Bool(true),
            Literal::Int(i64::MIN),
            Literal::Decimal("-12.50".into()),
            Literal::String("it''s".into()),
            Literal::Guid(Uuid::from_u128(0x6a2c_0b8e_0d4b_4e3a_9c1d_2b3a_4c5d_6e7f)),
            Literal::DateTime(datetime!(2026-03-04 5:06:07.1 -05:30)),
            Literal::Date(date!(0001 - 01 - 01)),
        ];
        let texts: Vec<String> = values.iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            [
                "null",
                "true",
                "-9223372036854775808",
                "-12.50",
                "'it''''s'",
                "6a2c0b8e-0d4b-4e3a-9c1d-2b3a4c5d6e7f",
                "2026-03-04T05:06:07.1-05:30",
                "0001-01-01"
            ]
        );
        for (value, text) in values
            .iter()
            .zip(&texts)
            .skip(2)
            .filter(|(v, _)| !matches!(v, Literal::String(_)))
        {
            assert_eq!(classify_unquoted(text).as_ref(), Ok(value), "{text}");
        }
    }

    #[test]
    fn offsets_with_seconds_print_as_utc() {
        let odd = datetime!(2026-01-01 0:00 UTC).to_offset(UtcOffset::from_hms(1, 0, 30).unwrap());
        assert_eq!(Literal::DateTime(odd).to_string(), "2026-01-01T00:00:00Z");
    }
}
