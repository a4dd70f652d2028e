//! Unit tests for `$filter` operands: each literal kind, member paths, the string functions,
//! and every unsupported function or operator named in its error.

use time::macros::{date, datetime};
use uuid::Uuid;

use super::filter_tests::{cmp, eq, error, lit, parse, prop, syntax, text, unsupported};
use super::*;

#[test]
fn keyword_literals() {
    assert_eq!(parse("name eq null"), eq("name", Literal::Null));
    assert_eq!(
        parse("isdisabled eq true"),
        eq("isdisabled", Literal::Bool(true))
    );
    assert_eq!(
        parse("isdisabled ne false"),
        cmp(prop("isdisabled"), CompareOp::Ne, lit(Literal::Bool(false)))
    );
}

#[test]
fn integer_literals() {
    assert_eq!(parse("statecode eq 0"), eq("statecode", Literal::Int(0)));
    assert_eq!(
        parse("revenue gt -42"),
        cmp(prop("revenue"), CompareOp::Gt, lit(Literal::Int(-42)))
    );
    assert_eq!(
        parse("n eq 9223372036854775807"),
        eq("n", Literal::Int(i64::MAX))
    );
    assert_eq!(
        parse("n eq 9223372036854775808"),
        eq("n", Literal::Decimal("9223372036854775808".into()))
    );
}

#[test]
fn decimal_literals_keep_their_text() {
    assert_eq!(
        parse("price eq 12.50"),
        eq("price", Literal::Decimal("12.50".into()))
    );
    assert_eq!(
        parse("price lt -0.5"),
        cmp(
            prop("price"),
            CompareOp::Lt,
            lit(Literal::Decimal("-0.5".into()))
        )
    );
    assert_eq!(
        parse("price le 1.5E+3"),
        cmp(
            prop("price"),
            CompareOp::Le,
            lit(Literal::Decimal("1.5E+3".into()))
        )
    );
}

#[test]
fn string_literals_with_doubled_quotes() {
    assert_eq!(
        parse("name eq 'Contoso'"),
        eq("name", Literal::String("Contoso".into()))
    );
    assert_eq!(
        parse("name eq 'O''Neil'"),
        eq("name", Literal::String("O'Neil".into()))
    );
    assert_eq!(
        parse("name eq ''''"),
        eq("name", Literal::String("'".into()))
    );
    assert_eq!(
        parse("name eq ''"),
        eq("name", Literal::String(String::new()))
    );
    assert_eq!(
        parse("name eq 'a and b eq (c)'"),
        eq("name", Literal::String("a and b eq (c)".into()))
    );
    assert_eq!(
        parse("name eq 'Zoë 東京'"),
        eq("name", Literal::String("Zoë 東京".into()))
    );
}

#[test]
fn guid_literals_in_either_case() {
    let id = Uuid::from_u128(0x6a2c_0b8e_0d4b_4e3a_9c1d_2b3a_4c5d_6e7f);
    let expected = eq("accountid", Literal::Guid(id));
    assert_eq!(
        parse("accountid eq 6a2c0b8e-0d4b-4e3a-9c1d-2b3a4c5d6e7f"),
        expected
    );
    assert_eq!(
        parse("accountid eq 6A2C0B8E-0D4B-4E3A-9C1D-2B3A4C5D6E7F"),
        expected
    );
    let letter_first = Uuid::from_u128(0xabcd_ef01_0000_0000_0000_0000_0000_0001);
    assert_eq!(
        parse("_parentaccountid_value eq ABCDEF01-0000-0000-0000-000000000001"),
        eq("_parentaccountid_value", Literal::Guid(letter_first))
    );
    assert_eq!(
        parse("(accountid eq abcdef01-0000-0000-0000-000000000001)"),
        eq("accountid", Literal::Guid(letter_first))
    );
}

#[test]
fn date_and_date_time_literals() {
    assert_eq!(
        parse("createdon ge 2026-01-01"),
        cmp(
            prop("createdon"),
            CompareOp::Ge,
            lit(Literal::Date(date!(2026 - 01 - 01)))
        )
    );
    let at = |text: &str| match parse(&format!("createdon ge {text}")) {
        Expr::Compare {
            right: Operand::Literal(Literal::DateTime(value)),
            ..
        } => value,
        other => panic!("{other:?}"),
    };
    assert_eq!(at("2026-01-01T00:00:00Z"), datetime!(2026-01-01 0:00 UTC));
    assert_eq!(
        at("2026-01-01T08:30:15.1234567Z"),
        datetime!(2026-01-01 8:30:15.1234567 UTC)
    );
    assert_eq!(
        at("2026-01-01T10:00:00+02:00"),
        datetime!(2026-01-01 10:00 +2)
    );
    assert_eq!(
        at("2026-01-01T10:00:00-05:30"),
        datetime!(2026-01-01 10:00 -5:30)
    );
    assert_eq!(at("2026-01-01T10:00Z"), datetime!(2026-01-01 10:00 UTC));
}

#[test]
fn a_date_time_whose_plus_became_a_space_gets_a_hint() {
    // `+02:00` sent unencoded arrives as ` 02:00`.
    syntax("createdon ge 2026-01-01T10:00:00 02:00", "%2B");
}

#[test]
fn member_paths_and_lookup_values() {
    assert_eq!(
        parse("_primarycontactid_value eq null"),
        eq("_primarycontactid_value", Literal::Null)
    );
    assert_eq!(
        parse("primarycontactid/fullname eq 'Ann'"),
        eq("primarycontactid/fullname", Literal::String("Ann".into()))
    );
    assert_eq!(
        parse("sdkmessageid/name eq 'Create'"),
        eq("sdkmessageid/name", Literal::String("Create".into()))
    );
    assert_eq!(parse("a/b/c eq 1"), eq("a/b/c", Literal::Int(1)));
}

#[test]
fn text_functions() {
    assert_eq!(
        parse("contains(name,'Con')"),
        text(TextFunc::Contains, "name", "Con")
    );
    assert_eq!(
        parse("startswith( name , 'O''N' )"),
        text(TextFunc::StartsWith, "name", "O'N")
    );
    assert_eq!(
        parse("endswith(primarycontactid/emailaddress1,'@contoso.com')"),
        text(
            TextFunc::EndsWith,
            "primarycontactid/emailaddress1",
            "@contoso.com"
        )
    );
}

#[test]
fn text_function_arguments_are_checked() {
    syntax(
        "contains('x',name)",
        "first argument of 'contains' must be a column name",
    );
    syntax(
        "contains(name,5)",
        "second argument of 'contains' must be a string",
    );
    syntax(
        "contains(name,other)",
        "second argument of 'contains' must be a string",
    );
    syntax(
        "contains(name)",
        "expected ',' after the first argument of 'contains'",
    );
    syntax("contains(name,'x'", "expected ')' to close 'contains('");
    syntax(
        "contains(name,'x','y')",
        "expected ')' to close 'contains('",
    );
    syntax(
        "contains(,'x')",
        "expected a column name as the first argument of 'contains'",
    );
    unsupported("contains(tolower(name),'x')", "'tolower'");
}

#[test]
fn unsupported_functions_are_named() {
    for name in [
        "tolower",
        "toupper",
        "trim",
        "length",
        "indexof",
        "substring",
        "concat",
        "year",
        "now",
        "round",
        "cast",
        "isof",
    ] {
        unsupported(
            &format!("{name}(name) eq 'x'"),
            &format!("the OData function '{name}' is not supported"),
        );
    }
    unsupported(
        "Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=['a','b'])",
        "the OData function 'Microsoft.Dynamics.CRM.In' is not supported",
    );
    unsupported(
        "Microsoft.Dynamics.CRM.Today(PropertyName='createdon')",
        "'Microsoft.Dynamics.CRM.Today'",
    );
}

#[test]
fn lambdas_are_named() {
    unsupported(
        "contact_customer_accounts/any(c: c/fullname eq 'x')",
        "the OData lambda operator 'any'",
    );
    unsupported(
        "contact_customer_accounts/all(c: c/statecode eq 0)",
        "the OData lambda operator 'all'",
    );
}

#[test]
fn arithmetic_has_and_in_are_named() {
    for op in ["add", "sub", "mul", "div", "divby", "mod"] {
        unsupported(
            &format!("price {op} 2 gt 10"),
            &format!("the OData operator '{op}' is not supported"),
        );
    }
    unsupported("style has Namespace.Color'Red'", "the OData operator 'has'");
    unsupported("name in ('a','b')", "the OData operator 'in'");
    unsupported("-price gt 1", "negation operator '-'");
}

#[test]
fn other_unsupported_syntax_is_named() {
    unsupported("$it/name eq 'x'", "'$it'");
    unsupported("contacts/$count gt 0", "'/$count'");
    unsupported(
        "customerid/Microsoft.Dynamics.CRM.contact/fullname eq 'x'",
        "type cast 'Microsoft.Dynamics.CRM.contact'",
    );
    unsupported("Microsoft.Dynamics.CRM.Color eq 1", "qualified name");
}

#[test]
fn unterminated_strings() {
    syntax("name eq 'abc", "unterminated string");
    syntax("name eq 'it''s", "unterminated string");
    let err = error("name eq 'abc");
    assert!(err.message.contains("position 8"), "{}", err.message);
}

#[test]
fn malformed_literals() {
    syntax("a eq 2026-13-01", "'2026-13-01' is not a valid date");
    syntax("a eq 1.", "'1.' is not a valid number");
    syntax("a eq 12abc", "'12abc' is not a valid number");
    syntax(
        "a eq 6a2c0b8e-0d4b-4e3a-9c1d",
        "is not a valid number, GUID",
    );
    syntax("a eq #", "expected a value after 'eq', found '#'");
    syntax(
        "a/ eq 1",
        "expected a column or navigation property name after '/'",
    );
}
