//! Property tests: any `Expr` prints to text that parses back to it, and no input panics.

use proptest::prelude::*;
use time::{Date, OffsetDateTime, UtcOffset};
use uuid::Uuid;

use super::*;

/// Words the parser reads as operators or literals, so they cannot be generated as names.
const KEYWORDS: [&str; 20] = [
    "and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "add", "sub", "mul", "div", "divby",
    "mod", "has", "in", "null", "true", "false",
];

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,8}".prop_filter("not a keyword", |n| !KEYWORDS.contains(&n.as_str()))
}

fn path() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(name(), 1..=3)
}

fn date_time() -> impl Strategy<Value = OffsetDateTime> {
    // 0001-01-02 to 9999-12-30, so no offset pushes the year out of four digits.
    (
        -62_135_510_400_i64..253_402_128_000,
        0..1_000_000_000_u32,
        -1439..=1439_i32,
    )
        .prop_filter_map("representable", |(seconds, nanos, minutes)| {
            let offset = UtcOffset::from_whole_seconds(minutes * 60).ok()?;
            let at = OffsetDateTime::from_unix_timestamp(seconds)
                .ok()?
                .replace_nanosecond(nanos)
                .ok()?;
            Some(at.to_offset(offset))
        })
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        Just(Literal::Null),
        any::<bool>().prop_map(Literal::Bool),
        any::<i64>().prop_map(Literal::Int),
        "-?[0-9]{1,6}\\.[0-9]{1,6}".prop_map(Literal::Decimal),
        any::<String>().prop_map(Literal::String),
        any::<u128>().prop_map(|bits| Literal::Guid(Uuid::from_u128(bits))),
        date_time().prop_map(Literal::DateTime),
        (1_721_426..5_373_484_i32)
            .prop_filter_map("a date", |day| Date::from_julian_day(day).ok())
            .prop_map(Literal::Date),
    ]
}

fn operand() -> impl Strategy<Value = Operand> {
    prop_oneof![
        path().prop_map(Operand::Property),
        literal().prop_map(Operand::Literal)
    ]
}

fn leaf() -> impl Strategy<Value = Expr> {
    let op = prop::sample::select(CompareOp::ALL.to_vec());
    let func = prop::sample::select(TextFunc::ALL.to_vec());
    prop_oneof![
        4 => (operand(), op, operand()).prop_map(|(left, op, right)| Expr::Compare { left, op, right }),
        1 => (func, path(), any::<String>()).prop_map(|(func, property, value)| Expr::Text { func, property, value }),
        1 => operand().prop_map(Expr::Value),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(5, 40, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|a| Expr::Not(Box::new(a))),
        ]
    })
}

/// Strings made of OData-looking pieces reach deeper into the parser than random characters.
fn odata_like() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "name",
        " ",
        "eq",
        "ne",
        "and",
        "or",
        "not",
        "(",
        ")",
        "'",
        "''",
        "'x'",
        ",",
        "/",
        "1",
        "-",
        "2.5",
        "null",
        "true",
        "contains",
        "tolower",
        "any",
        "@p",
        "$it",
        "2026-01-01",
        "T10:00:00Z",
        "+",
        "%27",
        "%20",
        "%",
        "&",
        "=",
        "$filter=",
        "$select=",
        "$expand=",
        "$orderby=",
        "$top=",
        "$count=",
        "@p=",
        ";",
        "*",
        "é",
        "\u{0}",
        "6a2c0b8e-0d4b-4e3a-9c1d-2b3a4c5d6e7f",
    ]);
    prop::collection::vec(pieces, 0..40).prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn display_parses_back_to_the_same_expr(expr in expr()) {
        let text = expr.to_string();
        let parsed = Expr::parse(&text);
        prop_assert_eq!(parsed.as_ref(), Ok(&expr), "{}", text);
    }

    #[test]
    fn query_strings_parse_back_to_the_same_options(
        filter in proptest::option::of(expr()),
        select in proptest::option::of(prop::collection::vec(name(), 1..4)),
        orderby in prop::collection::vec((name(), any::<bool>()), 0..3),
        top in proptest::option::of(1..=u32::MAX),
        count in any::<bool>(),
        skiptoken in proptest::option::of(".+"),
    ) {
        let options = QueryOptions {
            select,
            filter,
            orderby: orderby.into_iter().map(|(property, descending)| OrderBy { property, descending }).collect(),
            top: top.and_then(std::num::NonZeroU32::new),
            count,
            expand: vec![Expand { navigation: "primarycontactid".into(), select: Some(vec!["fullname".into()]) }],
            skiptoken,
            params: vec![("@p".into(), "a & b = c + d".into())],
        };
        let written = options.to_query_string();
        let parsed = QueryOptions::parse(&written);
        prop_assert_eq!(parsed.as_ref(), Ok(&options), "{}", written);
    }

    #[test]
    fn no_string_panics_the_filter_parser(text in any::<String>()) {
        let _ = Expr::parse(&text);
    }

    #[test]
    fn no_odata_like_string_panics_the_filter_parser(text in odata_like()) {
        let _ = Expr::parse(&text);
    }

    #[test]
    fn no_string_panics_the_query_parser(text in any::<String>()) {
        let _ = QueryOptions::parse(&text);
    }

    #[test]
    fn no_odata_like_query_panics_the_query_parser(text in odata_like()) {
        let _ = QueryOptions::parse(&text);
        let _ = QueryOptions::parse(&format!("$filter={text}"));
        let _ = QueryOptions::parse(&format!("$expand=a({text})&@p={text}"));
    }
}
