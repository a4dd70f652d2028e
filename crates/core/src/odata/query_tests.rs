//! Unit tests for `QueryOptions::parse`: decoding, each option, aliases, refusals, writing back.

use std::num::NonZeroU32;

use super::*;

fn parse(query: &str) -> QueryOptions {
    match QueryOptions::parse(query) {
        Ok(options) => options,
        Err(err) => panic!("{query:?} failed: {}", err.message),
    }
}

fn refused(query: &str, kind: ODataErrorKind, expected: &str) {
    match QueryOptions::parse(query) {
        Ok(options) => panic!("{query:?} parsed as {options:?}"),
        Err(err) => {
            assert_eq!(err.kind, kind, "{query:?}: {}", err.message);
            assert!(err.message.contains(expected), "{query:?}: {}", err.message);
        }
    }
}

fn names(items: &[&str]) -> Option<Vec<String>> {
    Some(items.iter().map(|s| s.to_string()).collect())
}

fn name_eq(value: &str) -> Expr {
    Expr::Compare {
        left: Operand::Property(vec!["name".into()]),
        op: CompareOp::Eq,
        right: Operand::Literal(Literal::String(value.into())),
    }
}

#[test]
fn an_empty_query_has_no_options() {
    assert_eq!(parse(""), QueryOptions::default());
    assert_eq!(parse("?"), QueryOptions::default());
    assert_eq!(parse("&&"), QueryOptions::default());
}

#[test]
fn select_lists_keep_names_as_given() {
    assert_eq!(
        parse("$select=name,revenue").select,
        names(&["name", "revenue"])
    );
    assert_eq!(
        parse("?$select=Name,+_primarycontactid_value%20,%20x").select,
        names(&["Name", "_primarycontactid_value", "x"])
    );
    assert_eq!(parse("$select=*").select, None);
}

#[test]
fn select_refuses_what_is_not_a_column_name() {
    refused(
        "$select=",
        ODataErrorKind::Syntax,
        "Syntax error in $select: the list of columns is empty",
    );
    refused(
        "$select=name,,x",
        ODataErrorKind::Syntax,
        "a column name is missing",
    );
    refused(
        "$select=na-me",
        ODataErrorKind::Syntax,
        "'na-me' is not a column name",
    );
    refused(
        "$select=1name",
        ODataErrorKind::Syntax,
        "'1name' is not a column name",
    );
    refused(
        "$select=primarycontactid/fullname",
        ODataErrorKind::Unsupported,
        "$expand=nav($select=column)",
    );
}

#[test]
fn filter_spaces_arrive_as_plus_percent20_or_raw() {
    let expected = Some(name_eq("Contoso Ltd"));
    assert_eq!(parse("$filter=name+eq+'Contoso+Ltd'").filter, expected);
    assert_eq!(
        parse("$filter=name%20eq%20'Contoso%20Ltd'").filter,
        expected
    );
    assert_eq!(parse("$filter=name eq 'Contoso Ltd'").filter, expected);
}

#[test]
fn filter_quotes_and_reserved_characters_arrive_percent_encoded() {
    assert_eq!(
        parse("$filter=name%20eq%20%27O%27%27Neil%27").filter,
        Some(name_eq("O'Neil"))
    );
    assert_eq!(
        parse("$filter=name eq 'a%2Bb%26c%3Dd%25'").filter,
        Some(name_eq("a+b&c=d%"))
    );
    assert_eq!(
        parse("%24filter=name%20eq%20'x'").filter,
        Some(name_eq("x"))
    );
}

#[test]
fn filter_errors_keep_their_position() {
    refused(
        "$filter=name+eq+",
        ODataErrorKind::Syntax,
        "Syntax error at position 8 in $filter: expected a value after 'eq'",
    );
    refused(
        "$filter=tolower(name)+eq+'x'",
        ODataErrorKind::Unsupported,
        "'tolower' is not supported",
    );
}

#[test]
fn a_date_time_offset_needs_an_encoded_plus() {
    let options = parse("$filter=createdon ge 2026-01-01T10:00:00%2B02:00");
    assert!(options.filter.is_some());
    refused(
        "$filter=createdon ge 2026-01-01T10:00:00+02:00",
        ODataErrorKind::Syntax,
        "%2B",
    );
}

#[test]
fn orderby_items_and_directions() {
    let order = parse("$orderby=name asc,createdon+desc, revenue").orderby;
    assert_eq!(
        order,
        [
            OrderBy {
                property: "name".into(),
                descending: false
            },
            OrderBy {
                property: "createdon".into(),
                descending: true
            },
            OrderBy {
                property: "revenue".into(),
                descending: false
            },
        ]
    );
}

#[test]
fn orderby_refusals() {
    refused("$orderby=", ODataErrorKind::Syntax, "the list is empty");
    refused(
        "$orderby=name DESC",
        ODataErrorKind::Syntax,
        "directions are lower-case",
    );
    refused(
        "$orderby=name asc desc",
        ODataErrorKind::Syntax,
        "expected 'column asc' or 'column desc'",
    );
    refused(
        "$orderby=name,,x",
        ODataErrorKind::Syntax,
        "expected 'column asc' or 'column desc', found ''",
    );
    refused(
        "$orderby=primarycontactid/fullname",
        ODataErrorKind::Unsupported,
        "Ordering by 'primarycontactid/fullname'",
    );
    refused(
        "$orderby=tolower(name)",
        ODataErrorKind::Unsupported,
        "Ordering by 'tolower(name)'",
    );
    refused(
        "$orderby=na.me",
        ODataErrorKind::Syntax,
        "'na.me' is not a column name",
    );
}

#[test]
fn top_is_a_positive_whole_number() {
    assert_eq!(parse("$top=5").top, NonZeroU32::new(5));
    assert_eq!(parse("$top=4294967295").top, NonZeroU32::new(u32::MAX));
    refused("$top=0", ODataErrorKind::Syntax, "at least 1");
    refused(
        "$top=-1",
        ODataErrorKind::Syntax,
        "'-1' is not a positive whole number",
    );
    refused(
        "$top=five",
        ODataErrorKind::Syntax,
        "'five' is not a positive whole number",
    );
    refused(
        "$top=",
        ODataErrorKind::Syntax,
        "'' is not a positive whole number",
    );
    refused(
        "$top=4294967296",
        ODataErrorKind::Syntax,
        "larger than 4294967295",
    );
}

#[test]
fn count_is_true_or_false() {
    assert!(parse("$count=true").count);
    assert!(!parse("$count=false").count);
    refused(
        "$count=TRUE",
        ODataErrorKind::Syntax,
        "expected true or false, found 'TRUE'",
    );
    refused("$count=", ODataErrorKind::Syntax, "expected true or false");
}

#[test]
fn expand_with_and_without_select() {
    let expand = parse("$expand=primarycontactid($select=fullname,emailaddress1),owninguser , parentaccountid( $select = name )").expand;
    assert_eq!(
        expand,
        [
            Expand {
                navigation: "primarycontactid".into(),
                select: names(&["fullname", "emailaddress1"])
            },
            Expand {
                navigation: "owninguser".into(),
                select: None
            },
            Expand {
                navigation: "parentaccountid".into(),
                select: names(&["name"])
            },
        ]
    );
    assert_eq!(
        parse("$expand=a($select=*)").expand,
        [Expand {
            navigation: "a".into(),
            select: None
        }]
    );
}

#[test]
fn nested_expand_options_other_than_select_are_named() {
    for option in [
        "$filter=statecode eq 0",
        "$orderby=name",
        "$top=5",
        "$expand=x",
        "$count=true",
    ] {
        let name = option.split('=').next().unwrap_or_default();
        refused(
            &format!("$expand=contact_customer_accounts($select=fullname;{option})"),
            ODataErrorKind::Unsupported,
            &format!(
                "The query option '{name}' in $expand of 'contact_customer_accounts' is not supported"
            ),
        );
    }
    refused(
        "$expand=a($filter=name eq 'x,y')",
        ODataErrorKind::Unsupported,
        "'$filter' in $expand of 'a'",
    );
    refused(
        "$expand=a($levels=2)",
        ODataErrorKind::Unsupported,
        "'$levels'",
    );
    refused(
        "$expand=a($bogus=1)",
        ODataErrorKind::Syntax,
        "unknown query option '$bogus'",
    );
    refused(
        "$expand=a(select=x)",
        ODataErrorKind::Syntax,
        "expected a query option such as $select",
    );
    refused(
        "$expand=a($select=x;$select=y)",
        ODataErrorKind::Syntax,
        "appears more than once",
    );
}

#[test]
fn expand_refusals() {
    refused("$expand=", ODataErrorKind::Syntax, "the list is empty");
    refused("$expand=*", ODataErrorKind::Unsupported, "Expanding '*'");
    refused(
        "$expand=a/$ref",
        ODataErrorKind::Unsupported,
        "Expanding 'a/$ref'",
    );
    refused(
        "$expand=a($select=x",
        ODataErrorKind::Syntax,
        "a '(' is not closed",
    );
    refused(
        "$expand=a($select=x))",
        ODataErrorKind::Syntax,
        "no matching '('",
    );
    refused(
        "$expand=a()",
        ODataErrorKind::Syntax,
        "the parentheses are empty",
    );
    refused("$expand=a,,b", ODataErrorKind::Syntax, "an item is missing");
    refused(
        "$expand=a,a",
        ODataErrorKind::Syntax,
        "'a' is expanded twice",
    );
    refused(
        "$expand=a-b",
        ODataErrorKind::Syntax,
        "'a-b' is not a navigation property name",
    );
    refused(
        "$expand=a($select=x)b",
        ODataErrorKind::Syntax,
        "expected ')' at the end of 'a($select=x)b'",
    );
}

#[test]
fn skiptoken_is_kept_decoded() {
    let token = "<cookie pagenumber=\"2\" pagingcookie=\"%3ccookie\" />";
    let options =
        parse("$skiptoken=%3Ccookie%20pagenumber=%222%22%20pagingcookie=%22%253ccookie%22%20/%3E");
    assert_eq!(options.skiptoken.as_deref(), Some(token));
    refused(
        "$skiptoken=",
        ODataErrorKind::Syntax,
        "the paging token is empty",
    );
}

#[test]
fn unsupported_options_are_named() {
    for option in [
        "$skip",
        "$deltatoken",
        "$apply",
        "$search",
        "$format",
        "$levels",
        "$compute",
        "$index",
        "$schemaversion",
        "$id",
    ] {
        refused(
            &format!("{option}=1"),
            ODataErrorKind::Unsupported,
            &format!("The query option '{option}' is not supported"),
        );
    }
    refused("$skip=10", ODataErrorKind::Unsupported, "odata.maxpagesize");
    refused(
        "fetchXml=%3Cfetch/%3E",
        ODataErrorKind::Unsupported,
        "'fetchXml' is not supported",
    );
    refused(
        "savedQuery=00000000-0000-0000-0000-000000000000",
        ODataErrorKind::Unsupported,
        "'savedQuery'",
    );
}

#[test]
fn unknown_options_are_syntax_errors() {
    refused(
        "$bogus=1",
        ODataErrorKind::Syntax,
        "unknown query option '$bogus'",
    );
    refused(
        "$Select=name",
        ODataErrorKind::Syntax,
        "option names are lower-case, write '$select'",
    );
}

#[test]
fn a_repeated_option_is_refused() {
    refused(
        "$top=1&$top=2",
        ODataErrorKind::Syntax,
        "Syntax error in $top: the option appears more than once",
    );
    refused(
        "$filter=a eq 1&%24filter=b eq 2",
        ODataErrorKind::Syntax,
        "$filter: the option appears more than once",
    );
}

#[test]
fn other_parameters_are_kept_in_order() {
    let options = parse("@target=%7B'@odata.id':'accounts(1)'%7D&$top=1&foo=bar+baz&flag");
    assert_eq!(
        options.params,
        [
            (
                "@target".to_string(),
                "{'@odata.id':'accounts(1)'}".to_string()
            ),
            ("foo".into(), "bar baz".into()),
            ("flag".into(), String::new()),
        ]
    );
}

#[test]
fn parameter_aliases_resolve_in_filter_and_orderby() {
    let options = parse("$filter=contains(@p1,@p2)&@p1=name&@p2='Contoso'&$orderby=@p1 desc");
    assert_eq!(
        options.filter,
        Some(Expr::Text {
            func: TextFunc::Contains,
            property: vec!["name".into()],
            value: "Contoso".into()
        })
    );
    assert_eq!(
        options.orderby,
        [OrderBy {
            property: "name".into(),
            descending: true
        }]
    );
    // Aliases may come before the option that uses them.
    assert_eq!(
        parse("@v='x'&$filter=name eq @v").filter,
        Some(name_eq("x"))
    );
}

#[test]
fn parameter_alias_errors() {
    refused(
        "$filter=name eq @missing",
        ODataErrorKind::Syntax,
        "the parameter alias '@missing' has no value",
    );
    refused(
        "$filter=name eq @v&@v=a eq 1",
        ODataErrorKind::Syntax,
        "in the value of the parameter alias '@v'",
    );
    refused(
        "$filter=name eq @v&@v=@w&@w=1",
        ODataErrorKind::Syntax,
        "in the value of the parameter alias '@v'",
    );
    refused(
        "$filter=name eq @v&@v=tolower(x)",
        ODataErrorKind::Unsupported,
        "'tolower'",
    );
    refused(
        "$orderby=@o&@x=name",
        ODataErrorKind::Syntax,
        "the parameter alias '@o' has no value",
    );
}

#[test]
fn invalid_utf8_is_refused() {
    refused(
        "$filter=name eq '%FF'",
        ODataErrorKind::Syntax,
        "is not UTF-8 once percent-decoded",
    );
}

#[test]
fn oversized_queries_are_refused() {
    let query = format!("foo={}", "x".repeat(MAX_QUERY_BYTES));
    refused(&query, ODataErrorKind::Unsupported, "at most 32768");
    let filter = format!("$filter=name eq '{}'", "x".repeat(MAX_FILTER_BYTES));
    refused(&filter, ODataErrorKind::Unsupported, "The $filter is");
}

#[test]
fn query_strings_are_written_back_encoded() {
    let options = parse(
        "$select=name,revenue&$filter=name eq 'a+b %26 c' and createdon ge 2026-01-01T10:00:00%2B02:00\
         &$orderby=name desc&$top=10&$count=true&$expand=primarycontactid($select=fullname),x\
         &$skiptoken=%3Ccookie page=%221%22/%3E&@p=1",
    );
    let written = options.to_query_string();
    assert_eq!(
        written,
        "$select=name,revenue\
         &$filter=name%20eq%20'a%20b%20%26%20c'%20and%20createdon%20ge%202026-01-01T10:00:00%2B02:00\
         &$orderby=name%20desc&$top=10&$count=true&$expand=primarycontactid($select%3Dfullname),x\
         &$skiptoken=%3Ccookie%20page%3D%221%22/%3E&@p=1"
    );
    assert_eq!(parse(&written), options);
}
