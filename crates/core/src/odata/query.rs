//! `QueryOptions`: the system query options of a Web API request, read from the raw query
//! string, and written back for `@odata.nextLink`.

use std::borrow::Cow;
use std::num::NonZeroU32;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use super::ast::Expr;
use super::error::ODataError;
use super::filter::parse_filter;

/// Longest raw query string accepted, in bytes (Dataverse refuses URLs past about 32 KiB).
pub const MAX_QUERY_BYTES: usize = 32 * 1024;

/// The query options of one request, validated for syntax only: names are checked against the
/// table's metadata later.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryOptions {
    /// `$select=name,revenue`; `None` when absent or `*` (every column).
    pub select: Option<Vec<String>>,
    pub filter: Option<Expr>,
    /// `$orderby=name asc,createdon desc`, in order of priority.
    pub orderby: Vec<OrderBy>,
    /// `$top`: a positive count of rows.
    pub top: Option<NonZeroU32>,
    /// `$count=true`: include `@odata.count`.
    pub count: bool,
    pub expand: Vec<Expand>,
    /// The opaque paging token from a previous `@odata.nextLink`, decoded.
    pub skiptoken: Option<String>,
    /// Every parameter not starting with `$`, decoded, in order: parameter aliases such as
    /// `@target` for functions, and anything else a client adds.
    pub params: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderBy {
    pub property: String,
    pub descending: bool,
}

/// One `$expand` item: `primarycontactid($select=fullname,emailaddress1)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expand {
    pub navigation: String,
    pub select: Option<Vec<String>>,
}

impl QueryOptions {
    /// Reads a raw query string as clients send it (with or without the leading `?`): `+`,
    /// `%20` or a raw space for spaces, names and values percent-encoded or not.
    pub fn parse(raw_query: &str) -> Result<Self, ODataError> {
        if raw_query.len() > MAX_QUERY_BYTES {
            return Err(ODataError::unsupported(format!(
                "The query string is {} bytes long; at most {MAX_QUERY_BYTES} are supported",
                raw_query.len()
            )));
        }
        let raw = raw_query.strip_prefix('?').unwrap_or(raw_query);
        let mut pairs = Vec::new();
        for piece in raw.split('&').filter(|piece| !piece.is_empty()) {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            pairs.push((decode(name)?, decode(value)?));
        }
        let (system, params): (Vec<_>, Vec<_>) = pairs
            .into_iter()
            .partition(|(name, _)| name.starts_with('$'));
        if let Some((name, _)) = params
            .iter()
            .find(|(name, _)| matches!(name.as_str(), "fetchXml" | "savedQuery" | "userQuery"))
        {
            // Each selects a different kind of query; ignoring it would return the wrong rows.
            return Err(ODataError::unsupported(format!(
                "The Dataverse query parameter '{name}' is not supported; use $select, $filter and $orderby"
            )));
        }
        let mut options = Self::default();
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in &system {
            if seen.contains(&name.as_str()) {
                return Err(syntax_in(
                    name,
                    "the option appears more than once; give it once",
                ));
            }
            seen.push(name);
            match name.as_str() {
                "$select" => options.select = parse_select(name, value)?,
                "$filter" => options.filter = Some(parse_filter(value, &params)?),
                "$orderby" => options.orderby = parse_orderby(value, &params)?,
                "$top" => options.top = Some(parse_top(value)?),
                "$count" => options.count = parse_count(value)?,
                "$expand" => options.expand = parse_expand(value)?,
                "$skiptoken" if value.is_empty() => {
                    return Err(syntax_in(
                        name,
                        "the paging token is empty; follow @odata.nextLink as given",
                    ));
                }
                "$skiptoken" => options.skiptoken = Some(value.clone()),
                other => return Err(unsupported_or_unknown(other, "")),
            }
        }
        options.params = params;
        Ok(options)
    }

    /// The options as a query string (without `?`), percent-encoded, in a fixed order:
    /// `parse(&options.to_query_string())` gives back equal options.
    pub fn to_query_string(&self) -> String {
        let mut parts = Vec::new();
        if let Some(select) = &self.select {
            parts.push(format!("$select={}", encode(&select.join(","))));
        }
        if let Some(filter) = &self.filter {
            parts.push(format!("$filter={}", encode(&filter.to_string())));
        }
        if !self.orderby.is_empty() {
            let items: Vec<String> = self
                .orderby
                .iter()
                .map(|o| {
                    format!(
                        "{} {}",
                        o.property,
                        if o.descending { "desc" } else { "asc" }
                    )
                })
                .collect();
            parts.push(format!("$orderby={}", encode(&items.join(","))));
        }
        if let Some(top) = self.top {
            parts.push(format!("$top={top}"));
        }
        if self.count {
            parts.push("$count=true".into());
        }
        if !self.expand.is_empty() {
            let items: Vec<String> = self
                .expand
                .iter()
                .map(|e| match &e.select {
                    Some(select) => format!("{}($select={})", e.navigation, select.join(",")),
                    None => e.navigation.clone(),
                })
                .collect();
            parts.push(format!("$expand={}", encode(&items.join(","))));
        }
        if let Some(token) = &self.skiptoken {
            parts.push(format!("$skiptoken={}", encode(token)));
        }
        for (name, value) in &self.params {
            parts.push(format!("{}={}", encode(name), encode(value)));
        }
        parts.join("&")
    }
}

/// Characters left readable in values we write; everything else, `+` `&` `=` `%` `#` and
/// spaces included, is percent-encoded.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'$')
    .remove(b',')
    .remove(b'(')
    .remove(b')')
    .remove(b'/')
    .remove(b'\'')
    .remove(b':')
    .remove(b'@')
    .remove(b';');

fn encode(text: &str) -> String {
    utf8_percent_encode(text, QUERY_VALUE).to_string()
}

/// Query-string decoding: `+` is a space, then `%XX` escapes; the result must be UTF-8.
fn decode(raw: &str) -> Result<String, ODataError> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| {
            ODataError::syntax(format!(
                "Syntax error in the query string: '{raw}' is not UTF-8 once percent-decoded"
            ))
        })
}

fn syntax_in(option: &str, detail: &str) -> ODataError {
    ODataError::syntax(format!("Syntax error in {option}: {detail}"))
}

/// The error for a `$` option Keyway does not read, whether it is valid OData or a typo.
/// `context` names the enclosing option for options nested in `$expand`.
fn unsupported_or_unknown(name: &str, context: &str) -> ODataError {
    let advice = match name {
        "$skip" => ": Dataverse pages with Prefer: odata.maxpagesize and @odata.nextLink instead",
        "$deltatoken" => " (change tracking)",
        "$apply" => " (aggregation)",
        "$search" => " (Dataverse search)",
        "$format" => ": responses are always JSON",
        "$filter" | "$orderby" | "$top" | "$expand" | "$count" if !context.is_empty() => {
            ": query the related table on its own instead"
        }
        "$levels" | "$compute" | "$index" | "$schemaversion" | "$id" | "$filter" | "$orderby"
        | "$top" | "$expand" | "$count" | "$select" | "$skiptoken" => "",
        _ => {
            let lower = name.to_ascii_lowercase();
            let known = [
                "$select",
                "$filter",
                "$orderby",
                "$top",
                "$count",
                "$expand",
                "$skiptoken",
            ];
            let hint = if known.contains(&lower.as_str()) {
                format!("; option names are lower-case, write '{lower}'")
            } else {
                String::new()
            };
            return ODataError::syntax(format!(
                "Syntax error{context}: unknown query option '{name}'{hint}"
            ));
        }
    };
    ODataError::unsupported(format!(
        "The query option '{name}'{context} is not supported{advice}"
    ))
}

/// A column or navigation property name as OData writes it: a letter or `_`, then letters,
/// digits or `_`. Whether the table has it is checked against metadata later.
pub(crate) fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `name,revenue` → the names; `*` → `None` (every column).
fn parse_select(option: &str, value: &str) -> Result<Option<Vec<String>>, ODataError> {
    if value.trim().is_empty() {
        return Err(syntax_in(
            option,
            "the list of columns is empty; leave $select out to read every column",
        ));
    }
    let mut columns = Vec::new();
    let mut all = false;
    for item in value.split(',').map(str::trim) {
        match item {
            "" => return Err(syntax_in(option, "a column name is missing between commas")),
            "*" => all = true,
            _ if is_identifier(item) => columns.push(item.to_owned()),
            _ if item.contains('/') => {
                return Err(ODataError::unsupported(format!(
                    "Selecting through a navigation property ('{item}') is not supported in {option}; use $expand=nav($select=column)"
                )));
            }
            _ => return Err(syntax_in(option, &format!("'{item}' is not a column name"))),
        }
    }
    Ok((!all).then_some(columns))
}

/// `name asc, createdon desc`; `@p1` items resolve from the parameter aliases.
fn parse_orderby(value: &str, params: &[(String, String)]) -> Result<Vec<OrderBy>, ODataError> {
    const OPTION: &str = "$orderby";
    if value.trim().is_empty() {
        return Err(syntax_in(
            OPTION,
            "the list is empty; leave $orderby out for the default order",
        ));
    }
    let mut order = Vec::new();
    for item in value.split(',').map(str::trim) {
        let mut words = item.split_whitespace();
        let (Some(first), direction, None) = (words.next(), words.next(), words.next()) else {
            return Err(syntax_in(
                OPTION,
                &format!("expected 'column asc' or 'column desc', found '{item}'"),
            ));
        };
        let property = match first.strip_prefix('@') {
            Some(alias) => match params
                .iter()
                .find(|(k, _)| k.strip_prefix('@') == Some(alias))
            {
                Some((_, value)) => value.trim(),
                None => {
                    return Err(syntax_in(
                        OPTION,
                        &format!(
                            "the parameter alias '{first}' has no value: add &{first}=… to the query string"
                        ),
                    ));
                }
            },
            None => first,
        };
        if !is_identifier(property) {
            return Err(if property.contains('/') || property.contains('(') {
                ODataError::unsupported(format!(
                    "Ordering by '{property}' is not supported: $orderby takes columns of the queried table"
                ))
            } else {
                syntax_in(OPTION, &format!("'{property}' is not a column name"))
            });
        }
        let descending = match direction {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(syntax_in(
                    OPTION,
                    &format!(
                        "expected 'asc' or 'desc' after '{property}', found '{other}' (directions are lower-case)"
                    ),
                ));
            }
        };
        order.push(OrderBy {
            property: property.to_owned(),
            descending,
        });
    }
    Ok(order)
}

fn parse_top(value: &str) -> Result<NonZeroU32, ODataError> {
    let digits = value.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax_in(
            "$top",
            &format!("'{value}' is not a positive whole number"),
        ));
    }
    match digits.parse::<u32>() {
        Ok(top) => NonZeroU32::new(top)
            .ok_or_else(|| syntax_in("$top", "the number of rows must be at least 1")),
        Err(_) => Err(syntax_in(
            "$top",
            &format!("'{digits}' is larger than {}", u32::MAX),
        )),
    }
}

fn parse_count(value: &str) -> Result<bool, ODataError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(syntax_in(
            "$count",
            &format!("expected true or false, found '{value}'"),
        )),
    }
}

/// `nav1,nav2($select=a,b)`; nested options other than `$select` are refused by name.
fn parse_expand(value: &str) -> Result<Vec<Expand>, ODataError> {
    const OPTION: &str = "$expand";
    if value.trim().is_empty() {
        return Err(syntax_in(OPTION, "the list is empty; leave $expand out"));
    }
    let mut expands: Vec<Expand> = Vec::new();
    for item in split_top_level(value, ',').map_err(|detail| syntax_in(OPTION, &detail))? {
        let item = item.trim();
        let (navigation, inner) = match item.split_once('(') {
            Some((navigation, rest)) => match rest.strip_suffix(')') {
                Some(inner) => (navigation.trim(), Some(inner)),
                None => {
                    return Err(syntax_in(
                        OPTION,
                        &format!("expected ')' at the end of '{item}'"),
                    ));
                }
            },
            None => (item, None),
        };
        if navigation == "*" || navigation.contains('/') {
            return Err(ODataError::unsupported(format!(
                "Expanding '{navigation}' is not supported: name each navigation property"
            )));
        }
        if !is_identifier(navigation) {
            return Err(syntax_in(
                OPTION,
                &format!("'{navigation}' is not a navigation property name"),
            ));
        }
        if expands.iter().any(|e| e.navigation == navigation) {
            return Err(syntax_in(
                OPTION,
                &format!("'{navigation}' is expanded twice"),
            ));
        }
        let select = match inner {
            Some(inner) => parse_expand_options(navigation, inner)?,
            None => None,
        };
        expands.push(Expand {
            navigation: navigation.to_owned(),
            select,
        });
    }
    Ok(expands)
}

/// The `;`-separated options inside `nav(…)`.
fn parse_expand_options(navigation: &str, inner: &str) -> Result<Option<Vec<String>>, ODataError> {
    let context = format!(" in $expand of '{navigation}'");
    let option_of = |name: &str| format!("{name}{context}");
    if inner.trim().is_empty() {
        return Err(syntax_in(
            &option_of("$expand"),
            "the parentheses are empty; remove them or add $select=…",
        ));
    }
    let mut select = None;
    let parts =
        split_top_level(inner, ';').map_err(|detail| syntax_in(&option_of("$expand"), &detail))?;
    for part in parts {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let name = name.trim();
        match name {
            "$select" if select.is_some() => {
                return Err(syntax_in(
                    &option_of(name),
                    "the option appears more than once; give it once",
                ));
            }
            "$select" => select = Some(parse_select(&option_of(name), value)?),
            _ if name.starts_with('$') => return Err(unsupported_or_unknown(name, &context)),
            _ => {
                return Err(syntax_in(
                    &option_of("$expand"),
                    &format!(
                        "expected a query option such as $select, found '{}'",
                        part.trim()
                    ),
                ));
            }
        }
    }
    Ok(select.flatten())
}

/// Splits on `separator` outside parentheses and single-quoted strings, so a nested option's
/// own commas stay inside its item.
fn split_top_level(text: &str, separator: char) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut quoted, mut start) = (0usize, false, 0usize);
    for (index, c) in text.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| "unexpected ')' with no matching '('".to_owned())?;
            }
            c if c == separator && !quoted && depth == 0 => {
                parts.push(text.get(start..index).unwrap_or(""));
                start = index + c.len_utf8();
            }
            _ => {}
        }
    }
    if quoted {
        return Err("unterminated string: close it with '".into());
    }
    if depth > 0 {
        return Err("a '(' is not closed".into());
    }
    parts.push(text.get(start..).unwrap_or(""));
    if parts.iter().any(|part| part.trim().is_empty()) {
        return Err(format!("an item is missing next to a '{separator}'"));
    }
    Ok(parts)
}
