//! OData query → one parameterized SQL statement: the caller's row scope, `$filter`,
//! `$orderby` and paging become the WHERE, ORDER BY and LIMIT of a query over the table's own
//! indexes. Identifiers come only from metadata; every value is bound.

use keyway_core::dataverse::authz::RowScope;
use keyway_core::dataverse::metadata::{AttributeDef, EntityDef, Storage};
use keyway_core::dataverse::record::{FieldValue, Record};
use keyway_core::odata::{CompareOp, Expr, Literal, Operand, OrderBy, TextFunc};

use super::{Dialect, Value, ident};

/// Why a query cannot be compiled (a 400 for the client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// A name or value the table does not have or accept.
    Invalid(String),
    /// Valid OData that Keyway does not support.
    Unsupported(String),
}

pub struct RecordQuery<'a> {
    pub entity: &'a EntityDef,
    pub env_number: i64,
    pub scope: &'a RowScope,
    pub filter: Option<&'a Expr>,
    pub orderby: &'a [OrderBy],
    /// Rows to return (the caller asks one more to know whether a next page exists).
    pub limit: u64,
    /// The sort key of the last row of the previous page (see [`page_key`]): this page starts
    /// after it, found through the index rather than by counting rows past an offset.
    pub after: Option<&'a [FieldValue]>,
}

struct Builder<'a> {
    entity: &'a EntityDef,
    dialect: Dialect,
    args: Vec<Value>,
}

impl<'a> Builder<'a> {
    fn bind(&mut self, v: Value) -> String {
        self.args.push(v);
        format!("${}", self.args.len())
    }

    fn column(&self, path: &[String]) -> Result<&'a AttributeDef, QueryError> {
        let entity: &'a EntityDef = self.entity;
        let [name] = path else {
            return Err(QueryError::Unsupported(format!(
                "filtering on a related table ('{}') is not supported",
                path.join("/")
            )));
        };
        let bare = name
            .strip_prefix('_')
            .and_then(|n| n.strip_suffix("_value"))
            .filter(|n| entity.attribute(n).is_some_and(|a| a.kind.is_lookup()));
        entity
            .attribute(bare.unwrap_or(name))
            .filter(|a| {
                !a.kind.is_lookup() || bare.is_some() || a.logical_name == entity.primary_id
            })
            .ok_or_else(|| {
                QueryError::Invalid(format!(
                    "Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{}'.",
                    entity.logical_name
                ))
            })
    }

    fn literal(&mut self, a: &AttributeDef, lit: &Literal) -> Result<String, QueryError> {
        let wrong = || {
            QueryError::Invalid(format!(
                "The value {lit} does not fit the column '{}' of type {}.",
                a.logical_name,
                a.kind.name()
            ))
        };
        let v = match (a.kind.storage(), lit) {
            (Storage::Text, Literal::String(s)) => Value::Text(Some(s.clone())),
            (Storage::Int, Literal::Int(n)) => Value::Int(Some(*n)),
            (Storage::Real, Literal::Int(n)) => Value::Real(Some(*n as f64)),
            (Storage::Real, Literal::Decimal(d)) => {
                Value::Real(Some(d.parse::<f64>().map_err(|_| wrong())?))
            }
            (Storage::Bool, Literal::Bool(b)) => Value::Bool(Some(*b)),
            (Storage::Id, Literal::Guid(g)) => (*g).into(),
            (Storage::Instant, Literal::DateTime(t)) => (*t).into(),
            (Storage::Instant, Literal::Date(d)) => d.midnight().assume_utc().into(),
            _ => return Err(wrong()),
        };
        Ok(self.bind(v))
    }

    fn expr(&mut self, e: &Expr) -> Result<String, QueryError> {
        Ok(match e {
            Expr::And(a, b) => format!("({} AND {})", self.expr(a)?, self.expr(b)?),
            Expr::Or(a, b) => format!("({} OR {})", self.expr(a)?, self.expr(b)?),
            Expr::Not(a) => format!("(NOT {})", self.expr(a)?),
            Expr::Value(Operand::Literal(Literal::Bool(b))) => {
                if *b { "1 = 1" } else { "1 = 0" }.to_string()
            }
            Expr::Value(Operand::Property(p)) => {
                let a = self.column(p)?;
                if a.kind.storage() != Storage::Bool {
                    return Err(QueryError::Invalid(format!(
                        "'{}' is not a boolean column.",
                        a.logical_name
                    )));
                }
                let t = self.bind(Value::Bool(Some(true)));
                format!("{} = {t}", ident(&a.logical_name))
            }
            Expr::Value(Operand::Literal(other)) => {
                return Err(QueryError::Invalid(format!(
                    "The filter {other} is not a condition."
                )));
            }
            Expr::Text {
                func,
                property,
                value,
            } => {
                let a = self.column(property)?;
                if a.kind.storage() != Storage::Text {
                    return Err(QueryError::Invalid(format!(
                        "{}() needs a text column; '{}' is {}.",
                        func.name(),
                        a.logical_name,
                        a.kind.name()
                    )));
                }
                let escaped = value
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_");
                let pattern = match func {
                    TextFunc::Contains => format!("%{escaped}%"),
                    TextFunc::StartsWith => format!("{escaped}%"),
                    TextFunc::EndsWith => format!("%{escaped}"),
                };
                let p = self.bind(Value::Text(Some(pattern)));
                let like = match self.dialect {
                    // Dataverse compares text without regard to case; SQLite's LIKE already does.
                    Dialect::Sqlite => "LIKE",
                    Dialect::Postgres => "ILIKE",
                };
                format!("{} {like} {p} ESCAPE '\\'", ident(&a.logical_name))
            }
            Expr::Compare { left, op, right } => self.compare(left, *op, right)?,
        })
    }

    fn compare(
        &mut self,
        left: &Operand,
        op: CompareOp,
        right: &Operand,
    ) -> Result<String, QueryError> {
        let sql_op = |op: CompareOp| match op {
            CompareOp::Eq => "=",
            CompareOp::Ne => "<>",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
        };
        let flip = |op: CompareOp| match op {
            CompareOp::Gt => CompareOp::Lt,
            CompareOp::Ge => CompareOp::Le,
            CompareOp::Lt => CompareOp::Gt,
            CompareOp::Le => CompareOp::Ge,
            same => same,
        };
        match (left, right) {
            (Operand::Property(p), Operand::Literal(l)) => {
                self.property_vs_literal(p, op, l, sql_op)
            }
            (Operand::Literal(l), Operand::Property(p)) => {
                self.property_vs_literal(p, flip(op), l, sql_op)
            }
            (Operand::Property(a), Operand::Property(b)) => {
                let (a, b) = (self.column(a)?, self.column(b)?);
                if a.kind.storage() != b.kind.storage() {
                    return Err(QueryError::Invalid(format!(
                        "'{}' and '{}' hold different types.",
                        a.logical_name, b.logical_name
                    )));
                }
                Ok(format!(
                    "{} {} {}",
                    ident(&a.logical_name),
                    sql_op(op),
                    ident(&b.logical_name)
                ))
            }
            (Operand::Literal(_), Operand::Literal(_)) => Err(QueryError::Unsupported(
                "comparing two constants is not supported".into(),
            )),
        }
    }

    fn property_vs_literal(
        &mut self,
        path: &[String],
        op: CompareOp,
        lit: &Literal,
        sql_op: impl Fn(CompareOp) -> &'static str,
    ) -> Result<String, QueryError> {
        let a = self.column(path)?;
        let col = ident(&a.logical_name);
        if *lit == Literal::Null {
            return match op {
                CompareOp::Eq => Ok(format!("{col} IS NULL")),
                CompareOp::Ne => Ok(format!("{col} IS NOT NULL")),
                _ => Err(QueryError::Invalid(format!(
                    "null can only be compared with eq or ne ('{}').",
                    a.logical_name
                ))),
            };
        }
        let value = self.literal(a, lit)?;
        // OData's `ne` is true for nulls; SQL's `<>` is not.
        if op == CompareOp::Ne {
            return Ok(format!("({col} <> {value} OR {col} IS NULL)"));
        }
        Ok(format!("{col} {} {value}", sql_op(op)))
    }

    fn scope(&mut self, scope: &RowScope, table: &str) -> Option<String> {
        match scope {
            RowScope::All => None,
            RowScope::Owned {
                owners,
                business_units,
                shared,
            } => {
                let mut parts = Vec::new();
                if !owners.is_empty() {
                    let p: Vec<String> = owners.iter().map(|o| self.bind((*o).into())).collect();
                    parts.push(format!("{} IN ({})", ident("ownerid"), p.join(", ")));
                }
                if !business_units.is_empty() {
                    let p: Vec<String> = business_units
                        .iter()
                        .map(|u| self.bind((*u).into()))
                        .collect();
                    parts.push(format!(
                        "{} IN ({})",
                        ident("owningbusinessunit"),
                        p.join(", ")
                    ));
                }
                if let Some(sh) = shared.as_ref().filter(|s| !s.principals.is_empty()) {
                    // Rows shared with the caller or a team of theirs: a lookup per candidate row
                    // on the share table's (table, object, principal) key, evaluated only when
                    // ownership has not already admitted the row (no temporary table to build).
                    let t = self.bind(Value::Text(Some(table.to_string())));
                    let p: Vec<String> = sh
                        .principals
                        .iter()
                        .map(|u| self.bind((*u).into()))
                        .collect();
                    let right = self.bind(Value::Int(Some(i64::from(sh.right))));
                    parts.push(format!(
                        "EXISTS (SELECT 1 FROM dv_shares WHERE table_name = {t} AND object_id = {}.{} AND principal_id IN ({}) AND (access_mask & {right}) <> 0)",
                        ident(table),
                        ident(&self.entity.primary_id),
                        p.join(", ")
                    ));
                }
                Some(if parts.is_empty() {
                    "1 = 0".to_string()
                } else {
                    format!("({})", parts.join(" OR "))
                })
            }
        }
    }
}

/// SQL text and the values bound to its placeholders.
pub type Statement = (String, Vec<Value>);

/// The columns a page is sorted by, each with `descending`: `$orderby`'s, then the key, so the
/// order is total and a page can start right after the last row of the one before.
fn sort_keys<'e>(
    entity: &'e EntityDef,
    orderby: &[OrderBy],
) -> Result<Vec<(&'e AttributeDef, bool)>, QueryError> {
    let b = Builder {
        entity,
        dialect: Dialect::Sqlite,
        args: Vec::new(),
    };
    let mut keys = Vec::with_capacity(orderby.len() + 1);
    for o in orderby {
        keys.push((b.column(std::slice::from_ref(&o.property))?, o.descending));
    }
    let id = entity
        .attribute(&entity.primary_id)
        .ok_or_else(|| QueryError::Invalid(format!("{} has no key column", entity.logical_name)))?;
    keys.push((id, false));
    Ok(keys)
}

/// Where `record` stands in the order of `orderby`: its value of each sort column, then its key.
pub fn page_key(
    entity: &EntityDef,
    orderby: &[OrderBy],
    record: &Record,
) -> Result<Vec<FieldValue>, QueryError> {
    Ok(sort_keys(entity, orderby)?
        .iter()
        .map(|(a, _)| {
            record
                .fields
                .get(&a.logical_name)
                .cloned()
                .unwrap_or(FieldValue::Null)
        })
        .collect())
}

/// A page key as JSON (ids and text as strings, instants as Unix microseconds).
pub fn page_key_json(key: &[FieldValue]) -> serde_json::Value {
    use serde_json::Value as J;
    J::Array(
        key.iter()
            .map(|v| match v {
                FieldValue::Null => J::Null,
                FieldValue::Text(s) => J::from(s.as_str()),
                FieldValue::Int(n) => J::from(*n),
                FieldValue::Real(x) => J::from(*x),
                FieldValue::Bool(b) => J::from(*b),
                FieldValue::Instant(t) => J::from(keyway_core::clock::to_micros(*t)),
                FieldValue::Id(u) => J::from(u.to_string()),
            })
            .collect(),
    )
}

/// A page key back from JSON, each value checked against its sort column's type.
pub fn page_key_from_json(
    entity: &EntityDef,
    orderby: &[OrderBy],
    json: &serde_json::Value,
) -> Result<Vec<FieldValue>, QueryError> {
    use serde_json::Value as J;
    let keys = sort_keys(entity, orderby)?;
    let wrong = || QueryError::Invalid("The $skiptoken does not fit this query.".into());
    let values = json
        .as_array()
        .filter(|v| v.len() == keys.len())
        .ok_or_else(wrong)?;
    keys.iter()
        .zip(values)
        .map(|((a, _), v)| {
            Ok(match (a.kind.storage(), v) {
                (_, J::Null) => FieldValue::Null,
                (Storage::Text, J::String(s)) => FieldValue::Text(s.clone()),
                (Storage::Id, J::String(s)) => {
                    FieldValue::Id(uuid::Uuid::parse_str(s).map_err(|_| wrong())?)
                }
                (Storage::Int, J::Number(n)) => FieldValue::Int(n.as_i64().ok_or_else(wrong)?),
                (Storage::Real, J::Number(n)) => FieldValue::Real(n.as_f64().ok_or_else(wrong)?),
                (Storage::Bool, J::Bool(b)) => FieldValue::Bool(*b),
                (Storage::Instant, J::Number(n)) => FieldValue::Instant(
                    keyway_core::clock::from_micros(n.as_i64().ok_or_else(wrong)?),
                ),
                _ => return Err(wrong()),
            })
        })
        .collect()
}

impl Builder<'_> {
    /// Rows after `key` in the order of `keys`: `(k1 > v1) OR (k1 = v1 AND k2 > v2) …`, with a
    /// leading `k1 >= v1` the first column's index can start its range scan at. Nulls sort where
    /// each database puts them: first ascending on SQLite, last ascending on PostgreSQL.
    fn after(
        &mut self,
        keys: &[(&AttributeDef, bool)],
        key: &[FieldValue],
    ) -> Result<String, QueryError> {
        if key.len() != keys.len() {
            return Err(QueryError::Invalid(
                "The $skiptoken does not fit this query.".into(),
            ));
        }
        let mut bound = Vec::with_capacity(keys.len());
        for ((a, desc), v) in keys.iter().zip(key) {
            let value = crate::records::to_sql(a.kind.storage(), v).map_err(|_| {
                QueryError::Invalid("The $skiptoken does not fit this query.".into())
            })?;
            // The key is never null, so no null can follow it.
            let nulls_first = a.logical_name == self.entity.primary_id
                || match self.dialect {
                    Dialect::Sqlite => !desc,
                    Dialect::Postgres => *desc,
                };
            let p = (*v != FieldValue::Null).then(|| self.bind(value));
            bound.push((ident(&a.logical_name), *desc, nulls_first, p));
        }
        let mut alternatives = Vec::new();
        let mut equal: Vec<String> = Vec::new();
        for (col, desc, nulls_first, p) in &bound {
            let after = match (p, nulls_first) {
                (None, true) => Some(format!("{col} IS NOT NULL")),
                (None, false) => None,
                (Some(p), true) => Some(format!("{col} {} {p}", if *desc { "<" } else { ">" })),
                (Some(p), false) => Some(format!(
                    "({col} {} {p} OR {col} IS NULL)",
                    if *desc { "<" } else { ">" }
                )),
            };
            if let Some(after) = after {
                let mut all = equal.clone();
                all.push(after);
                alternatives.push(all.join(" AND "));
            }
            equal.push(match p {
                None => format!("{col} IS NULL"),
                Some(p) => format!("{col} = {p}"),
            });
        }
        let any = if alternatives.is_empty() {
            "1 = 0".to_string()
        } else {
            format!("({})", alternatives.join(" OR "))
        };
        // The range start on the first sort column, so the scan does not begin at the top.
        let (col, desc, nulls_first, p) = &bound[0];
        let start = match (p, nulls_first) {
            _ if bound.len() == 1 => None,
            (None, true) => None,
            (None, false) => Some(format!("{col} IS NULL")),
            (Some(p), true) => Some(format!("{col} {} {p}", if *desc { "<=" } else { ">=" })),
            (Some(p), false) => Some(format!(
                "({col} {} {p} OR {col} IS NULL)",
                if *desc { "<=" } else { ">=" }
            )),
        };
        Ok(match start {
            Some(start) => format!("{start} AND {any}"),
            None => any,
        })
    }
}

/// `SELECT <every column> … WHERE scope AND filter ORDER BY … LIMIT … OFFSET …`, and the count
/// query with the same WHERE.
pub fn compile(
    q: &RecordQuery<'_>,
    dialect: Dialect,
) -> Result<(Statement, Statement), QueryError> {
    let mut b = Builder {
        entity: q.entity,
        dialect,
        args: Vec::new(),
    };
    let mut conditions = Vec::new();
    if let Some(s) = b.scope(q.scope, &q.entity.sql_table(q.env_number)) {
        conditions.push(s);
    }
    if let Some(f) = q.filter {
        conditions.push(b.expr(f)?);
    }
    let where_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let keys = sort_keys(q.entity, q.orderby)?;
    let order: Vec<String> = keys
        .iter()
        .map(|(a, desc)| {
            format!(
                "{} {}",
                ident(&a.logical_name),
                if *desc { "DESC" } else { "ASC" }
            )
        })
        .collect();
    let table = ident(&q.entity.sql_table(q.env_number));
    let cols: Vec<String> = q
        .entity
        .attributes
        .iter()
        .map(|a| ident(&a.logical_name))
        .collect();
    let count_sql = format!("SELECT COUNT(*) FROM {table}{where_sql}");
    let count_args = b.args.clone();
    let mut where_sql = where_sql;
    if let Some(after) = q.after {
        let cond = b.after(&keys, after)?;
        where_sql = if where_sql.is_empty() {
            format!(" WHERE {cond}")
        } else {
            format!("{where_sql} AND {cond}")
        };
    }
    let select = format!(
        "SELECT {} FROM {table}{where_sql} ORDER BY {} LIMIT {}",
        cols.join(", "),
        order.join(", "),
        q.limit,
    );
    Ok(((select, b.args), (count_sql, count_args)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyway_core::dataverse::system_tables::builtin_entities;
    use keyway_core::odata::OrderBy;
    use uuid::Uuid;

    fn account() -> EntityDef {
        builtin_entities()
            .into_iter()
            .find(|e| e.logical_name == "account")
            .unwrap()
    }

    fn sql(filter: &str, scope: &RowScope) -> Result<(String, Vec<Value>), QueryError> {
        let e = account();
        let f = Expr::parse(filter).unwrap();
        let q = RecordQuery {
            entity: &e,
            env_number: 7,
            scope,
            filter: Some(&f),
            orderby: &[],
            limit: 51,
            after: None,
        };
        compile(&q, Dialect::Sqlite).map(|(s, _)| s)
    }

    #[test]
    fn filters_become_bound_predicates() {
        let (s, args) = sql(
            "name eq 'O''Brien' and numberofemployees gt 10",
            &RowScope::All,
        )
        .unwrap();
        assert!(
            s.contains(r#"WHERE ("name" = $1 AND "numberofemployees" > $2)"#),
            "{s}"
        );
        assert_eq!(
            args,
            vec![Value::Text(Some("O'Brien".into())), Value::Int(Some(10))]
        );
        assert!(s.starts_with(r#"SELECT "accountid""#) && s.contains(r#"FROM "dv7_account""#));
        assert!(s.ends_with(r#"ORDER BY "accountid" ASC LIMIT 51"#), "{s}");
        let (s, _) = sql(
            "_primarycontactid_value eq null or not (revenue lt 5.5)",
            &RowScope::All,
        )
        .unwrap();
        assert!(
            s.contains(r#"("primarycontactid" IS NULL OR (NOT "revenue" < $1))"#),
            "{s}"
        );
        let (s, args) = sql("contains(name,'50%')", &RowScope::All).unwrap();
        assert!(s.contains(r#""name" LIKE $1 ESCAPE '\'"#), "{s}");
        assert_eq!(args, vec![Value::Text(Some("%50\\%%".into()))]);
        let (s, _) = sql("10 lt numberofemployees", &RowScope::All).unwrap();
        assert!(s.contains(r#""numberofemployees" > $1"#), "{s}");
        let (s, _) = sql("name ne 'x'", &RowScope::All).unwrap();
        assert!(s.contains(r#"("name" <> $1 OR "name" IS NULL)"#), "{s}");
    }

    #[test]
    fn the_row_scope_comes_first() {
        let (u, bu) = (Uuid::new_v4(), Uuid::new_v4());
        let scope = RowScope::Owned {
            owners: vec![u],
            business_units: vec![bu],
            shared: None,
        };
        let (s, args) = sql("name eq 'a'", &scope).unwrap();
        assert!(
            s.contains(
                r#"WHERE ("ownerid" IN ($1) OR "owningbusinessunit" IN ($2)) AND "name" = $3"#
            ),
            "{s}"
        );
        assert_eq!(args[0], u.into());
    }

    #[test]
    fn shared_rows_join_the_scope_through_the_share_table() {
        let (u, team) = (Uuid::new_v4(), Uuid::new_v4());
        let scope = RowScope::Owned {
            owners: vec![u, team],
            business_units: vec![],
            shared: Some(keyway_core::dataverse::authz::Shared {
                principals: vec![u, team],
                right: 2,
            }),
        };
        let (s, args) = sql("name eq 'a'", &scope).unwrap();
        assert!(
            s.contains(r#"WHERE ("ownerid" IN ($1, $2) OR EXISTS (SELECT 1 FROM dv_shares WHERE table_name = $3 AND object_id = "dv7_account"."accountid" AND principal_id IN ($4, $5) AND (access_mask & $6) <> 0)) AND "name" = $7"#),
            "{s}"
        );
        assert_eq!(args[2], Value::Text(Some("dv7_account".into())));
        assert_eq!(args[5], Value::Int(Some(2)));
    }

    #[test]
    fn a_page_starts_after_the_last_sort_key() {
        let e = account();
        let id = Uuid::new_v4();
        let orderby = [OrderBy {
            property: "name".into(),
            descending: false,
        }];
        let mut last = Record::new("account");
        last.fields
            .insert("name".into(), FieldValue::Text("acme".into()));
        last.fields.insert("accountid".into(), FieldValue::Id(id));
        let key = page_key(&e, &orderby, &last).unwrap();
        assert_eq!(
            key,
            vec![FieldValue::Text("acme".into()), FieldValue::Id(id)]
        );
        assert_eq!(
            page_key_from_json(&e, &orderby, &page_key_json(&key)).unwrap(),
            key
        );
        let compiled = |dialect, key: &[FieldValue]| {
            let q = RecordQuery {
                entity: &e,
                env_number: 7,
                scope: &RowScope::All,
                filter: None,
                orderby: &orderby,
                limit: 51,
                after: Some(key),
            };
            compile(&q, dialect).unwrap().0
        };
        let (s, args) = compiled(Dialect::Sqlite, &key);
        assert!(
            s.ends_with(r#"WHERE "name" >= $1 AND ("name" > $1 OR "name" = $1 AND "accountid" > $2) ORDER BY "name" ASC, "accountid" ASC LIMIT 51"#),
            "{s}"
        );
        assert_eq!(args, vec![Value::Text(Some("acme".into())), id.into()]);
        // PostgreSQL sorts nulls last going up, so they are still to come.
        let (s, _) = compiled(Dialect::Postgres, &key);
        assert!(
            s.contains(r#"WHERE ("name" >= $1 OR "name" IS NULL) AND (("name" > $1 OR "name" IS NULL) OR "name" = $1 AND "accountid" > $2)"#),
            "{s}"
        );
        // After a row with no name: on SQLite every named row is still to come.
        let null_key = [FieldValue::Null, FieldValue::Id(id)];
        let (s, _) = compiled(Dialect::Sqlite, &null_key);
        assert!(
            s.contains(r#"WHERE ("name" IS NOT NULL OR "name" IS NULL AND "accountid" > $1)"#),
            "{s}"
        );
        let (s, _) = compiled(Dialect::Postgres, &null_key);
        assert!(
            s.contains(r#"WHERE "name" IS NULL AND ("name" IS NULL AND "accountid" > $1)"#),
            "{s}"
        );
        // Without $orderby the key alone, which its primary index serves.
        let q = RecordQuery {
            entity: &e,
            env_number: 7,
            scope: &RowScope::All,
            filter: None,
            orderby: &[],
            limit: 51,
            after: Some(&[FieldValue::Id(id)]),
        };
        let (s, _) = compile(&q, Dialect::Postgres).unwrap().0;
        assert!(
            s.ends_with(r#"WHERE ("accountid" > $1) ORDER BY "accountid" ASC LIMIT 51"#),
            "{s}"
        );
        // A key that does not fit the order is refused.
        for bad in [
            serde_json::json!(["acme"]),
            serde_json::json!([1, id.to_string()]),
            serde_json::json!(["acme", "not-a-guid"]),
            serde_json::json!({"k": 1}),
        ] {
            assert!(page_key_from_json(&e, &orderby, &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_columns_and_mismatched_values_are_refused() {
        for (f, want_invalid) in [
            ("nope eq 1", true),
            ("name eq 1", true),
            ("numberofemployees eq 'x'", true),
            ("primarycontactid eq null", true),
            ("primarycontactid/fullname eq 'x'", false),
            ("contains(numberofemployees,'1')", true),
            ("revenue gt null", true),
            ("1 eq 1", false),
        ] {
            match sql(f, &RowScope::All) {
                Err(QueryError::Invalid(_)) => assert!(want_invalid, "{f}"),
                Err(QueryError::Unsupported(_)) => assert!(!want_invalid, "{f}"),
                Ok(s) => panic!("{f} compiled to {s:?}"),
            }
        }
    }
}
