//! Instance annotations Dataverse adds to rows when a client asks with
//! `Prefer: odata.include-annotations="*"` (or names `OData.Community.Display.V1.FormattedValue`):
//! the label of each choice value.

use axum::http::HeaderMap;
use keyway_core::dataverse::metadata::{AttributeType, EntityDef};
use keyway_core::dataverse::record::{FieldValue, Record};
use serde_json::{Map, Value};

const FORMATTED_VALUE: &str = "OData.Community.Display.V1.FormattedValue";

/// Did the request ask for formatted values?
pub(crate) fn wanted(headers: &HeaderMap) -> bool {
    headers
        .get_all("Prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split_once("odata.include-annotations="))
        .any(|(_, rest)| {
            let list = rest.trim_start().trim_start_matches('"');
            let list = list.split('"').next().unwrap_or_default();
            list.split(',')
                .map(str::trim)
                .any(|a| a == "*" || a == FORMATTED_VALUE || a == "OData.Community.Display.V1.*")
        })
}

/// Add `<column>@OData.Community.Display.V1.FormattedValue` beside each choice value the row
/// shows.
pub(crate) fn formatted_values(entity: &EntityDef, record: &Record, out: &mut Map<String, Value>) {
    for a in &entity.attributes {
        if a.kind != AttributeType::Picklist || !out.contains_key(&a.logical_name) {
            continue;
        }
        if let Some(FieldValue::Int(n)) = record.fields.get(&a.logical_name)
            && let Some(label) = a.option_label(*n)
        {
            out.insert(
                format!("{}@{FORMATTED_VALUE}", a.logical_name),
                label.to_string().into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn prefer(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("Prefer", HeaderValue::from_static(v));
        h
    }

    #[test]
    fn formatted_values_are_asked_for_by_name_or_wildcard() {
        assert!(wanted(&prefer("odata.include-annotations=\"*\"")));
        assert!(wanted(&prefer(
            "return=representation,odata.include-annotations=\"OData.Community.Display.V1.FormattedValue\""
        )));
        assert!(wanted(&prefer(
            "odata.include-annotations=\"Microsoft.Dynamics.CRM.lookuplogicalname,OData.Community.Display.V1.FormattedValue\""
        )));
        assert!(!wanted(&prefer(
            "odata.include-annotations=\"Microsoft.Dynamics.CRM.lookuplogicalname\""
        )));
        assert!(!wanted(&prefer("odata.maxpagesize=10")));
        assert!(!wanted(&HeaderMap::new()));
    }
}
