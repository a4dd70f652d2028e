//! The Flow Service's list options over items as it shows them — `property=` filters (`==`,
//! `!=`, `<`, `<=`, `>`, `>=`, `~` contains, a bare field for "exists", `!field` for "absent";
//! comma-separated values mean any of them), `orderby=±field` — and JSON Patch (`add`,
//! `replace`, `remove`) over an object, limited to the paths a caller may change.

use std::cmp::Ordering;

use serde_json::{Map, Value};

/// A refusal naming what is wrong with the option or the patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    Exists,
    Absent,
}

/// One `property=` condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    path: Vec<String>,
    op: Op,
    values: Vec<String>,
}

fn field_path(s: &str) -> Result<Vec<String>, QueryError> {
    let parts: Vec<String> = s.trim().split('.').map(str::to_string).collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        return Err(QueryError(format!(
            "'{s}' is not a property name: use names such as name, connectionSpec.id or createdAt."
        )));
    }
    Ok(parts)
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
        .unwrap_or(v)
        .to_string()
}

impl Property {
    /// `name=="x"`, `connectionSpec.id!=a,b`, `createdAt>=1600000000000`, `name~dyn`, `auth`,
    /// `!description`.
    pub fn parse(s: &str) -> Result<Self, QueryError> {
        // Two-character operators first, so `>=` is not read as `>`.
        for (token, op) in [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
            ("~", Op::Contains),
        ] {
            if let Some((field, value)) = s.split_once(token) {
                let values = if matches!(op, Op::Eq | Op::Ne) {
                    value.split(',').map(unquote).collect()
                } else {
                    vec![unquote(value)]
                };
                return Ok(Self {
                    path: field_path(field)?,
                    op,
                    values,
                });
            }
        }
        match s.trim().strip_prefix('!') {
            Some(field) => Ok(Self {
                path: field_path(field)?,
                op: Op::Absent,
                values: vec![],
            }),
            None => Ok(Self {
                path: field_path(s)?,
                op: Op::Exists,
                values: vec![],
            }),
        }
    }

    pub fn matches(&self, item: &Value) -> bool {
        let found = lookup(item, &self.path).filter(|v| !v.is_null());
        match (self.op, found) {
            (Op::Exists, f) => f.is_some(),
            (Op::Absent, f) => f.is_none(),
            (Op::Ne, None) => true,
            (_, None) => false,
            (Op::Eq, Some(v)) => self.values.iter().any(|x| equal(v, x)),
            (Op::Ne, Some(v)) => !self.values.iter().any(|x| equal(v, x)),
            (Op::Contains, Some(v)) => text(v)
                .to_lowercase()
                .contains(&self.values[0].to_lowercase()),
            (op, Some(v)) => {
                let ord = compare_to(v, &self.values[0]);
                match op {
                    Op::Lt => ord == Ordering::Less,
                    Op::Le => ord != Ordering::Greater,
                    Op::Gt => ord == Ordering::Greater,
                    _ => ord != Ordering::Less,
                }
            }
        }
    }
}

fn lookup<'a>(item: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(item, |v, k| v.get(k))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Strings compare case-insensitively (names are as users typed them); numbers and booleans by
/// value.
fn equal(v: &Value, want: &str) -> bool {
    match v {
        Value::String(s) => s.eq_ignore_ascii_case(want),
        Value::Number(n) => want.parse::<f64>().ok() == n.as_f64(),
        Value::Bool(b) => want.parse::<bool>().ok() == Some(*b),
        _ => false,
    }
}

fn compare_to(v: &Value, want: &str) -> Ordering {
    match (v, want.parse::<f64>()) {
        (Value::Number(n), Ok(w)) => n
            .as_f64()
            .and_then(|x| x.partial_cmp(&w))
            .unwrap_or(Ordering::Equal),
        _ => text(v).to_lowercase().cmp(&want.to_lowercase()),
    }
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(x), Some(y)) => text(x).to_lowercase().cmp(&text(y).to_lowercase()),
        // Items without the field sort last either way round.
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// `orderby=+name,-createdAt` (no sign means ascending).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy(Vec<(Vec<String>, bool)>);

impl OrderBy {
    pub fn parse(s: &str) -> Result<Self, QueryError> {
        let mut keys = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (desc, field) = match part.as_bytes()[0] {
                b'-' => (true, &part[1..]),
                // A literal `+` arrives as a space when the caller did not encode it.
                b'+' | b' ' => (false, &part[1..]),
                _ => (false, part),
            };
            keys.push((field_path(field)?, desc));
        }
        if keys.is_empty() {
            return Err(QueryError(
                "orderby needs a property, such as orderby=-createdAt.".into(),
            ));
        }
        Ok(Self(keys))
    }

    pub fn sort(&self, items: &mut [Value]) {
        items.sort_by(|a, b| {
            self.0
                .iter()
                .map(|(path, desc)| {
                    let (x, y) = (lookup(a, path), lookup(b, path));
                    match (x.is_some() && y.is_some(), *desc) {
                        (true, true) => compare(x, y).reverse(),
                        _ => compare(x, y),
                    }
                })
                .find(|o| *o != Ordering::Equal)
                .unwrap_or(Ordering::Equal)
        });
    }
}

/// Decode one JSON Pointer segment (`~1` is `/`, `~0` is `~`).
fn segment(s: &str) -> String {
    s.replace("~1", "/").replace("~0", "~")
}

/// Apply JSON Patch operations to `doc`. `allowed` says which pointers a caller may touch: each
/// entry is an exact pointer, or a prefix ending in `/` under which any one member may be.
pub fn apply_patch(
    doc: &mut Map<String, Value>,
    ops: &Value,
    allowed: &[&str],
) -> Result<(), QueryError> {
    let ops = ops.as_array().ok_or_else(|| {
        QueryError(
            "The body must be a JSON Patch array: [{\"op\": \"replace\", \"path\": \"/name\", \"value\": \"…\"}].".into(),
        )
    })?;
    if ops.is_empty() {
        return Err(QueryError("The patch has no operations.".into()));
    }
    for op in ops {
        let kind = op["op"].as_str().unwrap_or_default();
        let path = op["path"].as_str().ok_or_else(|| {
            QueryError("Each operation needs a 'path' (a JSON Pointer such as /name).".into())
        })?;
        let permitted = allowed.iter().any(|a| match a.strip_suffix('/') {
            Some(prefix) => path
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|member| !member.is_empty() && !member.contains('/')),
            None => path == *a,
        });
        if !permitted {
            return Err(QueryError(format!(
                "The path '{path}' cannot be changed: patch {}.",
                allowed
                    .iter()
                    .map(|a| if a.ends_with('/') {
                        format!("{a}<name>")
                    } else {
                        a.to_string()
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let mut keys: Vec<String> = path.split('/').skip(1).map(segment).collect();
        let last = keys.pop().unwrap_or_default();
        let mut parent = &mut *doc;
        for k in &keys {
            parent = parent
                .entry(k.clone())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .ok_or_else(|| QueryError(format!("'{path}' does not lead to an object.")))?;
        }
        match kind {
            "add" | "replace" => {
                let value = op.get("value").cloned().ok_or_else(|| {
                    QueryError(format!(
                        "The '{kind}' operation on '{path}' needs a 'value'."
                    ))
                })?;
                if kind == "replace" && !parent.contains_key(&last) {
                    return Err(QueryError(format!(
                        "'{path}' does not exist, so it cannot be replaced: use add."
                    )));
                }
                parent.insert(last, value);
            }
            "remove" => {
                if parent.remove(&last).is_none() {
                    return Err(QueryError(format!(
                        "'{path}' does not exist, so it cannot be removed."
                    )));
                }
            }
            other => {
                return Err(QueryError(format!(
                    "The operation '{other}' is not supported: use add, replace or remove."
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn items() -> Vec<Value> {
        vec![
            json!({"name": "Beta", "createdAt": 2, "connectionSpec": {"id": "s1"}, "description": "x"}),
            json!({"name": "alpha", "createdAt": 3, "connectionSpec": {"id": "s2"}}),
            json!({"name": "Gamma", "createdAt": 1, "connectionSpec": {"id": "s1"}}),
        ]
    }

    fn names(v: &[Value]) -> Vec<&str> {
        v.iter().map(|i| i["name"].as_str().unwrap()).collect()
    }

    fn filter(p: &str) -> Vec<String> {
        let p = Property::parse(p).unwrap();
        items()
            .into_iter()
            .filter(|i| p.matches(i))
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn properties_filter_by_equality_lists_ranges_and_presence() {
        assert_eq!(filter("name==\"beta\""), vec!["Beta"]);
        assert_eq!(filter("connectionSpec.id==s1"), vec!["Beta", "Gamma"]);
        assert_eq!(filter("connectionSpec.id!=s1"), vec!["alpha"]);
        assert_eq!(filter("name==alpha,gamma"), vec!["alpha", "Gamma"]);
        assert_eq!(filter("createdAt>=2"), vec!["Beta", "alpha"]);
        assert_eq!(filter("createdAt<2"), vec!["Gamma"]);
        assert_eq!(filter("name~AMM"), vec!["Gamma"]);
        assert_eq!(filter("description"), vec!["Beta"]);
        assert_eq!(filter("!description"), vec!["alpha", "Gamma"]);
        assert!(Property::parse("na me==x").is_err());
        assert!(Property::parse("==x").is_err());
    }

    #[test]
    fn orderby_sorts_by_one_or_more_fields_either_way() {
        let mut v = items();
        OrderBy::parse("+name").unwrap().sort(&mut v);
        assert_eq!(names(&v), vec!["alpha", "Beta", "Gamma"]);
        OrderBy::parse("-createdAt").unwrap().sort(&mut v);
        assert_eq!(names(&v), vec!["alpha", "Beta", "Gamma"]);
        OrderBy::parse("connectionSpec.id,-name")
            .unwrap()
            .sort(&mut v);
        assert_eq!(names(&v), vec!["Gamma", "Beta", "alpha"]);
        OrderBy::parse(" createdAt").unwrap().sort(&mut v);
        assert_eq!(names(&v), vec!["Gamma", "Beta", "alpha"]);
        assert!(OrderBy::parse("").is_err());
    }

    #[test]
    fn patches_apply_add_replace_remove_only_where_allowed() {
        let allowed = ["/name", "/description", "/auth/params/"];
        let mut doc =
            json!({"name": "a", "auth": {"params": {"username": "u", "password": "********"}}})
                .as_object()
                .unwrap()
                .clone();
        apply_patch(
            &mut doc,
            &json!([
                {"op": "replace", "path": "/name", "value": "b"},
                {"op": "add", "path": "/description", "value": "d"},
                {"op": "replace", "path": "/auth/params/password", "value": "new"},
                {"op": "remove", "path": "/auth/params/username"},
            ]),
            &allowed,
        )
        .unwrap();
        assert_eq!(
            Value::Object(doc.clone()),
            json!({"name": "b", "description": "d", "auth": {"params": {"password": "new"}}})
        );
        let refused = |ops: Value| apply_patch(&mut doc.clone(), &ops, &allowed).unwrap_err().0;
        assert!(
            refused(json!([{"op": "replace", "path": "/id", "value": 1}]))
                .contains("cannot be changed")
        );
        assert!(
            refused(json!([{"op": "replace", "path": "/auth/params", "value": {}}]))
                .contains("cannot be changed")
        );
        assert!(
            refused(json!([{"op": "replace", "path": "/auth/params/a/b", "value": 1}]))
                .contains("cannot be changed")
        );
        assert!(
            refused(json!([{"op": "replace", "path": "/auth/params/username", "value": "x"}]))
                .contains("use add")
        );
        assert!(
            refused(json!([{"op": "remove", "path": "/description/"}]))
                .contains("cannot be changed")
        );
        assert!(
            refused(json!([{"op": "move", "path": "/name", "from": "/description"}]))
                .contains("not supported")
        );
        assert!(refused(json!([{"op": "add", "path": "/name"}])).contains("needs a 'value'"));
        assert!(refused(json!({"op": "add"})).contains("JSON Patch array"));
        assert!(refused(json!([])).contains("no operations"));
    }
}
