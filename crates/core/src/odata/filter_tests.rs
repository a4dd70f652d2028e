//! Unit tests for the `$filter` grammar: precedence, `not`, errors, limits; helpers for
//! `operand_tests`.

use super::*;

pub(super) fn parse(text: &str) -> Expr {
    match Expr::parse(text) {
        Ok(expr) => expr,
        Err(err) => panic!("{text:?} failed: {}", err.message),
    }
}

pub(super) fn error(text: &str) -> ODataError {
    match Expr::parse(text) {
        Ok(expr) => panic!("{text:?} parsed as {expr:?}"),
        Err(err) => err,
    }
}

pub(super) fn syntax(text: &str, expected: &str) {
    let err = error(text);
    assert_eq!(
        err.kind,
        ODataErrorKind::Syntax,
        "{text:?}: {}",
        err.message
    );
    assert!(err.message.contains(expected), "{text:?}: {}", err.message);
}

pub(super) fn unsupported(text: &str, expected: &str) {
    let err = error(text);
    assert_eq!(
        err.kind,
        ODataErrorKind::Unsupported,
        "{text:?}: {}",
        err.message
    );
    // Messages start a sentence; the phrase may start one too.
    assert!(
        err.message
            .to_lowercase()
            .contains(&expected.to_lowercase()),
        "{text:?}: {}",
        err.message
    );
}

pub(super) fn prop(path: &str) -> Operand {
    Operand::Property(path.split('/').map(String::from).collect())
}

pub(super) fn lit(literal: Literal) -> Operand {
    Operand::Literal(literal)
}

pub(super) fn cmp(left: Operand, op: CompareOp, right: Operand) -> Expr {
    Expr::Compare { left, op, right }
}

pub(super) fn eq(path: &str, literal: Literal) -> Expr {
    cmp(prop(path), CompareOp::Eq, lit(literal))
}

pub(super) fn and(a: Expr, b: Expr) -> Expr {
    Expr::And(Box::new(a), Box::new(b))
}

pub(super) fn or(a: Expr, b: Expr) -> Expr {
    Expr::Or(Box::new(a), Box::new(b))
}

pub(super) fn not(a: Expr) -> Expr {
    Expr::Not(Box::new(a))
}

pub(super) fn text(func: TextFunc, path: &str, value: &str) -> Expr {
    Expr::Text {
        func,
        property: path.split('/').map(String::from).collect(),
        value: value.into(),
    }
}

#[test]
fn bare_members_and_literals_are_values() {
    assert_eq!(parse("isdisabled"), Expr::Value(prop("isdisabled")));
    assert_eq!(parse("true"), Expr::Value(lit(Literal::Bool(true))));
    assert_eq!(
        parse("isdisabled and true"),
        and(
            Expr::Value(prop("isdisabled")),
            Expr::Value(lit(Literal::Bool(true)))
        )
    );
}

#[test]
fn either_side_may_be_a_literal_or_a_member() {
    assert_eq!(
        parse("null eq name"),
        cmp(lit(Literal::Null), CompareOp::Eq, prop("name"))
    );
    assert_eq!(
        parse("1 eq 1"),
        cmp(lit(Literal::Int(1)), CompareOp::Eq, lit(Literal::Int(1)))
    );
    assert_eq!(parse("a ne b"), cmp(prop("a"), CompareOp::Ne, prop("b")));
}

#[test]
fn every_comparison_operator() {
    for op in CompareOp::ALL {
        assert_eq!(
            parse(&format!("n {op} 5")),
            cmp(prop("n"), op, lit(Literal::Int(5)))
        );
    }
}

#[test]
fn and_binds_tighter_than_or() {
    let (a, b, c) = (
        eq("a", Literal::Int(1)),
        eq("b", Literal::Int(2)),
        eq("c", Literal::Int(3)),
    );
    assert_eq!(
        parse("a eq 1 or b eq 2 and c eq 3"),
        or(a.clone(), and(b.clone(), c.clone()))
    );
    assert_eq!(parse("a eq 1 and b eq 2 or c eq 3"), or(and(a, b), c));
}

#[test]
fn same_level_operators_associate_left() {
    let (a, b, c) = (
        eq("a", Literal::Int(1)),
        eq("b", Literal::Int(2)),
        eq("c", Literal::Int(3)),
    );
    assert_eq!(
        parse("a eq 1 or b eq 2 or c eq 3"),
        or(or(a.clone(), b.clone()), c.clone())
    );
    assert_eq!(parse("a eq 1 and b eq 2 and c eq 3"), and(and(a, b), c));
}

#[test]
fn parentheses_override_precedence() {
    let (a, b, c) = (
        eq("a", Literal::Int(1)),
        eq("b", Literal::Int(2)),
        eq("c", Literal::Int(3)),
    );
    assert_eq!(
        parse("(a eq 1 or b eq 2) and c eq 3"),
        and(or(a.clone(), b.clone()), c.clone())
    );
    assert_eq!(
        parse("a eq 1 or (b eq 2 or c eq 3)"),
        or(a.clone(), or(b, c))
    );
    assert_eq!(parse("((((a eq 1))))"), a);
}

#[test]
fn not_negates_what_follows() {
    assert_eq!(parse("not (a eq 1)"), not(eq("a", Literal::Int(1))));
    assert_eq!(parse("not(a eq 1)"), not(eq("a", Literal::Int(1))));
    assert_eq!(
        parse("not isdisabled"),
        not(Expr::Value(prop("isdisabled")))
    );
    assert_eq!(
        parse("not contains(name,'x')"),
        not(text(TextFunc::Contains, "name", "x"))
    );
    assert_eq!(
        parse("not not isdisabled"),
        not(not(Expr::Value(prop("isdisabled"))))
    );
    assert_eq!(
        parse("not isdisabled and a eq 1"),
        and(
            not(Expr::Value(prop("isdisabled"))),
            eq("a", Literal::Int(1))
        )
    );
}

#[test]
fn not_before_a_comparison_is_refused_with_a_hint() {
    // OData reads `not a eq 1` as `(not a) eq 1`; guessing the other meaning would be wrong.
    syntax("not statecode eq 1", "write not (… eq …)");
}

#[test]
fn conditions_compared_with_true_or_false() {
    let contains = text(TextFunc::Contains, "name", "x");
    assert_eq!(parse("contains(name,'x') eq true"), contains.clone());
    assert_eq!(parse("contains(name,'x') eq false"), not(contains.clone()));
    assert_eq!(parse("contains(name,'x') ne false"), contains.clone());
    assert_eq!(parse("true eq contains(name,'x')"), contains);
    assert_eq!(
        parse("not isdisabled eq true"),
        not(Expr::Value(prop("isdisabled")))
    );
    assert_eq!(parse("(a eq 1) eq false"), not(eq("a", Literal::Int(1))));
    syntax(
        "contains(name,'x') eq 1",
        "only be compared with true or false",
    );
    syntax(
        "contains(name,'x') gt true",
        "only be compared with true or false",
    );
    unsupported("(a eq 1) eq (b eq 2)", "comparing two conditions");
}

#[test]
fn parenthesized_operands_still_compare() {
    assert_eq!(
        parse("(name) eq 'x'"),
        eq("name", Literal::String("x".into()))
    );
}

#[test]
fn whitespace_is_flexible() {
    let expected = and(
        eq("a", Literal::Int(1)),
        eq("b", Literal::String("x".into())),
    );
    assert_eq!(parse("  a   eq\t1\nand b eq 'x'  "), expected);
    assert_eq!(parse("(a eq 1)and(b eq'x')"), expected);
}

#[test]
fn keywords_are_lower_case_and_names_keep_their_case() {
    assert_eq!(
        parse("Name eq 'x'"),
        eq("Name", Literal::String("x".into()))
    );
    assert_eq!(parse("TRUE"), Expr::Value(prop("TRUE")));
    syntax("name EQ 'x'", "operators are lower-case, write 'eq'");
    syntax("a eq 1 AND b eq 2", "operators are lower-case, write 'and'");
    unsupported(
        "Contains(name,'x')",
        "function names are lower-case, write 'contains'",
    );
}

#[test]
fn error_messages_point_at_the_position() {
    let err = error("statecode eq ");
    assert_eq!(
        err.message,
        "Syntax error at position 13 in $filter: expected a value after 'eq'"
    );
    let err = error("tolower(name) eq 'x'");
    assert_eq!(
        err.message,
        "The OData function 'tolower' is not supported (at position 0 in $filter)"
    );
    let err = error("a eq 1 and b eq 2 or c eq and");
    assert_eq!(
        err.message,
        "Syntax error at position 26 in $filter: expected a value after 'eq', found 'and'"
    );
}

#[test]
fn positions_count_characters_not_bytes() {
    let err = error("name eq 'é東' and");
    assert_eq!(
        err.message,
        "Syntax error at position 16 in $filter: expected a condition after 'and'"
    );
}

#[test]
fn unbalanced_parentheses() {
    syntax("(a eq 1", "expected ')' to close the '(' at position 0");
    syntax("((a eq 1)", "expected ')' to close the '(' at position 0");
    syntax(
        "(a eq 1 foo)",
        "expected ')' to close the '(' at position 0, found 'foo'",
    );
    syntax("a eq 1)", "unexpected ')' with no matching '('");
    syntax("()", "expected a condition after '(', found ')'");
}

#[test]
fn dangling_operators() {
    syntax("name eq", "expected a value after 'eq'");
    syntax("a eq 1 and", "expected a condition after 'and'");
    syntax("a eq 1 or ", "expected a condition after 'or'");
    syntax("not", "expected a condition after 'not'");
    syntax("eq 1", "expected a condition, found 'eq'");
    syntax("name eq and", "expected a value after 'eq', found 'and'");
    syntax(
        "a eq 1 and or b eq 2",
        "expected a condition after 'and', found 'or'",
    );
}

#[test]
fn empty_filters() {
    syntax("", "the filter is empty");
    syntax("   ", "the filter is empty");
}

#[test]
fn trailing_garbage() {
    syntax("name eq 'x' foo", "unexpected 'foo'");
    syntax("name eq 'x' 'y'", "unexpected the string 'y'");
    syntax("name 'x'", "unexpected the string 'x'");
    syntax("a eq 1 , b eq 2", "unexpected ','");
    syntax("a eq 1 not b", "unexpected 'not': expected an operator");
    syntax(
        "a eq b eq c",
        "unexpected 'eq': comparisons cannot be chained",
    );
}

#[test]
fn nesting_is_limited_without_overflowing_the_stack() {
    let ok = format!(
        "{}a eq 1{}",
        "(".repeat(MAX_FILTER_DEPTH),
        ")".repeat(MAX_FILTER_DEPTH)
    );
    assert_eq!(parse(&ok), eq("a", Literal::Int(1)));
    let too_deep = format!(
        "{}a eq 1{}",
        "(".repeat(MAX_FILTER_DEPTH + 1),
        ")".repeat(MAX_FILTER_DEPTH + 1)
    );
    unsupported(&too_deep, "more than 64 levels deep");
    unsupported(&"(".repeat(8000), "more than 64 levels deep");
    unsupported(&"not ".repeat(2000), "more than 64 levels deep");
    unsupported(
        &format!("{}x", "not(".repeat(1500)),
        "more than 64 levels deep",
    );
}

#[test]
fn oversized_filters_are_refused() {
    let long = format!("name eq '{}'", "x".repeat(MAX_FILTER_BYTES));
    unsupported(&long, "at most 8192");
    unsupported(&"(".repeat(10_000), "at most 8192");
}

#[test]
fn the_number_of_conditions_is_limited() {
    let conditions = |n: usize| {
        (0..n)
            .map(|k| format!("a eq {k}"))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    assert!(Expr::parse(&conditions(MAX_FILTER_TERMS)).is_ok());
    unsupported(
        &conditions(MAX_FILTER_TERMS + 1),
        "more than 200 conditions",
    );
    let values = (0..=MAX_FILTER_TERMS)
        .map(|_| "not x")
        .collect::<Vec<_>>()
        .join(" and ");
    unsupported(&values, "more than 200 conditions");
}

#[test]
fn properties_come_from_every_condition() {
    let expr = parse("a eq 1 and (contains(b/c,'x') or not d) and 5 lt e");
    let paths: Vec<String> = expr.properties().iter().map(|p| p.join("/")).collect();
    assert_eq!(paths, ["a", "b/c", "d", "e"]);
}

#[test]
fn display_is_canonical() {
    let cases = [
        ("a  eq\t1", "a eq 1"),
        ("(a eq 1) and (b eq 2)", "a eq 1 and b eq 2"),
        (
            "a eq 1 or (b eq 2 and c eq 3)",
            "a eq 1 or b eq 2 and c eq 3",
        ),
        ("not(a eq 1)", "not (a eq 1)"),
        (
            "accountid eq 6A2C0B8E-0D4B-4E3A-9C1D-2B3A4C5D6E7F",
            "accountid eq 6a2c0b8e-0d4b-4e3a-9c1d-2b3a4c5d6e7f",
        ),
        ("startswith(name , 'O''N')", "startswith(name,'O''N')"),
        (
            "createdon ge 2026-01-01T10:00+02:00",
            "createdon ge 2026-01-01T10:00:00+02:00",
        ),
    ];
    for (input, canonical) in cases {
        let expr = Expr::parse(input).map(|e| e.to_string());
        assert_eq!(expr.as_deref(), Ok(canonical), "{input}");
        assert_eq!(parse(canonical).to_string(), canonical);
    }
}

#[test]
fn the_deepest_filter_fits_a_small_stack() {
    // Tokio worker threads get 2 MiB. Measured: about 8 KiB a level in a debug build (most in
    // winnow's Pratt parser at opt-level 0), 1.3 KiB in release; 64 levels fit in half of that.
    let deepest = format!(
        "{}a eq 1{}",
        "(".repeat(MAX_FILTER_DEPTH),
        ")".repeat(MAX_FILTER_DEPTH)
    );
    let worker = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || Expr::parse(&deepest).is_ok())
        .unwrap();
    assert!(worker.join().unwrap());
}
