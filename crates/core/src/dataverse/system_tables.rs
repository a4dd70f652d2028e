//! The tables every environment starts with: the security tables (business units, users, roles,
//! teams), the standard `account` and `contact`, and connection references and environment
//! variables, with the system columns Keyway maintains.

use super::metadata::{AttributeDef, AttributeType, EntityDef, OptionDef, Ownership, builtin_id};

fn attr(entity: &str, name: &str, schema: &str, kind: AttributeType) -> AttributeDef {
    AttributeDef {
        max_length: match kind {
            AttributeType::String => Some(100),
            AttributeType::Memo => Some(2000),
            _ => None,
        },
        ..AttributeDef::new(name, schema, kind, builtin_id(entity, name))
    }
}

/// A built-in choice column with Dataverse's choices.
fn choice(entity: &str, name: &str, schema: &str, options: &[(i32, &str)]) -> AttributeDef {
    AttributeDef {
        options: options
            .iter()
            .map(|(value, label)| OptionDef {
                value: *value,
                label: label.to_string(),
            })
            .collect(),
        ..attr(entity, name, schema, AttributeType::Picklist)
    }
}

fn string(entity: &str, name: &str, schema: &str, max: u32) -> AttributeDef {
    AttributeDef {
        max_length: Some(max),
        ..attr(entity, name, schema, AttributeType::String)
    }
}

fn lookup(entity: &str, name: &str, schema: &str, target: &str) -> AttributeDef {
    AttributeDef {
        target: Some(target.to_string()),
        ..attr(entity, name, schema, AttributeType::Lookup)
    }
}

fn system(a: AttributeDef) -> AttributeDef {
    AttributeDef { system: true, ..a }
}

/// The columns Keyway sets on every row: id, ownership, who and when, version.
pub fn system_columns(entity: &str, primary_id: &str, ownership: Ownership) -> Vec<AttributeDef> {
    let mut cols = vec![
        system(AttributeDef {
            required: true,
            ..attr(
                entity,
                primary_id,
                primary_id,
                AttributeType::Uniqueidentifier,
            )
        }),
        system(lookup(entity, "createdby", "CreatedBy", "systemuser")),
        system(lookup(
            entity,
            "createdonbehalfby",
            "CreatedOnBehalfBy",
            "systemuser",
        )),
        system(lookup(entity, "modifiedby", "ModifiedBy", "systemuser")),
        system(lookup(
            entity,
            "modifiedonbehalfby",
            "ModifiedOnBehalfBy",
            "systemuser",
        )),
        system(attr(
            entity,
            "createdon",
            "CreatedOn",
            AttributeType::DateTime,
        )),
        system(attr(
            entity,
            "modifiedon",
            "ModifiedOn",
            AttributeType::DateTime,
        )),
        system(attr(
            entity,
            "versionnumber",
            "VersionNumber",
            AttributeType::BigInt,
        )),
    ];
    if ownership == Ownership::UserOwned {
        cols.push(AttributeDef {
            target: Some("systemuser".into()),
            ..attr(entity, "ownerid", "OwnerId", AttributeType::Owner)
        });
        cols.push(system(lookup(
            entity,
            "owningbusinessunit",
            "OwningBusinessUnit",
            "businessunit",
        )));
        cols.push(attr(entity, "statecode", "StateCode", AttributeType::State));
        cols.push(attr(
            entity,
            "statuscode",
            "StatusCode",
            AttributeType::Status,
        ));
    }
    cols
}

struct Spec {
    logical: &'static str,
    schema: &'static str,
    set: &'static str,
    primary_name: &'static str,
    code: i64,
    ownership: Ownership,
    audited: bool,
}

fn entity(spec: Spec, own: Vec<AttributeDef>) -> EntityDef {
    let primary_id = format!("{}id", spec.logical);
    let mut attributes = system_columns(spec.logical, &primary_id, spec.ownership);
    attributes.extend(own);
    EntityDef {
        logical_name: spec.logical.into(),
        schema_name: spec.schema.into(),
        entity_set_name: spec.set.into(),
        primary_id,
        primary_name: spec.primary_name.into(),
        object_type_code: spec.code,
        ownership: spec.ownership,
        is_custom: false,
        audited: spec.audited,
        metadata_id: builtin_id(spec.logical, ""),
        attributes,
    }
}

/// Every built-in table, in the order they are created (targets of lookups first).
pub fn builtin_entities() -> Vec<EntityDef> {
    let bu = "businessunit";
    let su = "systemuser";
    let ro = "role";
    let te = "team";
    let ac = "account";
    let co = "contact";
    let mut all = vec![
        entity(
            Spec {
                logical: bu,
                schema: "BusinessUnit",
                set: "businessunits",
                primary_name: "name",
                code: 10,
                ownership: Ownership::OrganizationOwned,
                audited: true,
            },
            vec![
                string(bu, "name", "Name", 160),
                lookup(bu, "parentbusinessunitid", "ParentBusinessUnitId", bu),
                attr(bu, "isdisabled", "IsDisabled", AttributeType::Boolean),
            ],
        ),
        entity(
            Spec {
                logical: su,
                schema: "SystemUser",
                set: "systemusers",
                primary_name: "fullname",
                code: 8,
                ownership: Ownership::OrganizationOwned,
                audited: true,
            },
            vec![
                string(su, "fullname", "FullName", 200),
                string(su, "domainname", "DomainName", 1024),
                string(su, "internalemailaddress", "InternalEMailAddress", 100),
                attr(
                    su,
                    "applicationid",
                    "ApplicationId",
                    AttributeType::Uniqueidentifier,
                ),
                attr(
                    su,
                    "azureactivedirectoryobjectid",
                    "AzureActiveDirectoryObjectId",
                    AttributeType::Uniqueidentifier,
                ),
                lookup(su, "businessunitid", "BusinessUnitId", bu),
                attr(su, "isdisabled", "IsDisabled", AttributeType::Boolean),
                attr(su, "islicensed", "IsLicensed", AttributeType::Boolean),
                choice(
                    su,
                    "accessmode",
                    "AccessMode",
                    &[
                        (0, "Read-Write"),
                        (1, "Administrative"),
                        (2, "Read"),
                        (3, "Support User"),
                        (4, "Non-interactive"),
                        (5, "Delegated Admin"),
                    ],
                ),
                attr(su, "isguest", "IsGuest", AttributeType::Boolean),
            ],
        ),
        entity(
            Spec {
                logical: ro,
                schema: "Role",
                set: "roles",
                primary_name: "name",
                code: 1036,
                ownership: Ownership::OrganizationOwned,
                audited: true,
            },
            vec![
                string(ro, "name", "Name", 100),
                lookup(ro, "businessunitid", "BusinessUnitId", bu),
            ],
        ),
        entity(
            Spec {
                logical: te,
                schema: "Team",
                set: "teams",
                primary_name: "name",
                code: 9,
                ownership: Ownership::OrganizationOwned,
                audited: true,
            },
            vec![
                string(te, "name", "Name", 160),
                lookup(te, "businessunitid", "BusinessUnitId", bu),
                choice(
                    te,
                    "teamtype",
                    "TeamType",
                    &[
                        (0, "Owner"),
                        (1, "Access"),
                        (2, "Security Group"),
                        (3, "Office Group"),
                    ],
                ),
            ],
        ),
        entity(
            Spec {
                logical: ac,
                schema: "Account",
                set: "accounts",
                primary_name: "name",
                code: 1,
                ownership: Ownership::UserOwned,
                audited: true,
            },
            vec![
                AttributeDef {
                    required: true,
                    ..string(ac, "name", "Name", 160)
                },
                string(ac, "accountnumber", "AccountNumber", 20),
                attr(
                    ac,
                    "numberofemployees",
                    "NumberOfEmployees",
                    AttributeType::Integer,
                ),
                attr(ac, "revenue", "Revenue", AttributeType::Money),
                attr(ac, "description", "Description", AttributeType::Memo),
                string(ac, "telephone1", "Telephone1", 50),
                string(ac, "emailaddress1", "EMailAddress1", 100),
                string(ac, "address1_city", "Address1_City", 80),
                lookup(ac, "parentaccountid", "ParentAccountId", ac),
                lookup(ac, "primarycontactid", "PrimaryContactId", co),
            ],
        ),
        entity(
            Spec {
                logical: co,
                schema: "Contact",
                set: "contacts",
                primary_name: "fullname",
                code: 2,
                ownership: Ownership::UserOwned,
                audited: true,
            },
            vec![
                string(co, "fullname", "FullName", 160),
                string(co, "firstname", "FirstName", 50),
                string(co, "lastname", "LastName", 50),
                string(co, "emailaddress1", "EMailAddress1", 100),
                string(co, "jobtitle", "JobTitle", 100),
                attr(co, "birthdate", "BirthDate", AttributeType::DateTime),
                AttributeDef {
                    target: Some(ac.into()),
                    ..attr(
                        co,
                        "parentcustomerid",
                        "ParentCustomerId",
                        AttributeType::Customer,
                    )
                },
            ],
        ),
    ];
    all.extend(alm_entities());
    all
}

/// The solution-aware tables of application lifecycle management (seed 002): connection
/// references, which flows name instead of connections, and environment variables. Added after
/// the tables above, so environments made before them get them the same way (see
/// [`unique_columns`] for their keys).
pub fn alm_entities() -> Vec<EntityDef> {
    let cr = "connectionreference";
    let ed = "environmentvariabledefinition";
    let ev = "environmentvariablevalue";
    vec![
        entity(
            Spec {
                logical: cr,
                schema: "ConnectionReference",
                set: "connectionreferences",
                primary_name: "connectionreferencedisplayname",
                // Dataverse numbers these per organization; Keyway's stay below custom tables'.
                code: 9_500,
                ownership: Ownership::UserOwned,
                audited: true,
            },
            vec![
                string(
                    cr,
                    "connectionreferencedisplayname",
                    "ConnectionReferenceDisplayName",
                    400,
                ),
                AttributeDef {
                    required: true,
                    ..string(
                        cr,
                        "connectionreferencelogicalname",
                        "ConnectionReferenceLogicalName",
                        100,
                    )
                },
                string(cr, "connectorid", "ConnectorId", 400),
                string(cr, "connectionid", "ConnectionId", 100),
                attr(cr, "description", "Description", AttributeType::Memo),
            ],
        ),
        entity(
            Spec {
                logical: ed,
                schema: "EnvironmentVariableDefinition",
                set: "environmentvariabledefinitions",
                primary_name: "schemaname",
                code: 380,
                ownership: Ownership::UserOwned,
                audited: true,
            },
            vec![
                AttributeDef {
                    required: true,
                    ..string(ed, "schemaname", "SchemaName", 100)
                },
                string(ed, "displayname", "DisplayName", 100),
                AttributeDef {
                    required: true,
                    ..choice(
                        ed,
                        "type",
                        "Type",
                        &[
                            (VARIABLE_STRING, "String"),
                            (VARIABLE_NUMBER, "Number"),
                            (VARIABLE_BOOLEAN, "Boolean"),
                            (VARIABLE_JSON, "JSON"),
                        ],
                    )
                },
                attr(ed, "defaultvalue", "DefaultValue", AttributeType::Memo),
                attr(ed, "description", "Description", AttributeType::Memo),
            ],
        ),
        entity(
            Spec {
                logical: ev,
                schema: "EnvironmentVariableValue",
                set: "environmentvariablevalues",
                primary_name: "schemaname",
                code: 381,
                ownership: Ownership::UserOwned,
                audited: true,
            },
            vec![
                string(ev, "schemaname", "SchemaName", 100),
                attr(ev, "value", "Value", AttributeType::Memo),
                lookup(
                    ev,
                    "environmentvariabledefinitionid",
                    "EnvironmentVariableDefinitionId",
                    ed,
                ),
            ],
        ),
    ]
}

/// Environment variable types, as Dataverse numbers them.
pub const VARIABLE_STRING: i32 = 100_000_000;
pub const VARIABLE_NUMBER: i32 = 100_000_001;
pub const VARIABLE_BOOLEAN: i32 = 100_000_002;
pub const VARIABLE_JSON: i32 = 100_000_003;

/// Columns no two rows of a built-in table may share (Dataverse's alternate keys): a connection
/// reference's logical name and a variable's schema name name one thing per environment, and a
/// variable has at most one current value.
pub fn unique_columns(entity: &str) -> &'static [&'static str] {
    match entity {
        "connectionreference" => &["connectionreferencelogicalname"],
        "environmentvariabledefinition" => &["schemaname"],
        "environmentvariablevalue" => &["environmentvariabledefinitionid"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataverse::metadata::validate_logical_name;

    #[test]
    fn builtin_tables_are_well_formed() {
        let all = builtin_entities();
        let names: Vec<&str> = all.iter().map(|e| e.logical_name.as_str()).collect();
        for e in &all {
            assert_eq!(
                validate_logical_name("x", &e.logical_name).unwrap(),
                e.logical_name
            );
            assert!(
                e.attribute(&e.primary_id).is_some(),
                "{} has its id",
                e.logical_name
            );
            assert!(
                e.attribute(&e.primary_name).is_some(),
                "{} has its name",
                e.logical_name
            );
            let mut seen = std::collections::HashSet::new();
            for a in &e.attributes {
                assert_eq!(
                    validate_logical_name("x", &a.logical_name).unwrap(),
                    a.logical_name
                );
                assert!(
                    seen.insert(&a.logical_name),
                    "{}.{} twice",
                    e.logical_name,
                    a.logical_name
                );
                if a.kind.is_lookup() {
                    let t = a.target.as_deref().unwrap();
                    assert!(
                        names.contains(&t),
                        "{}.{} points at {t}",
                        e.logical_name,
                        a.logical_name
                    );
                }
            }
        }
        let account = all.iter().find(|e| e.logical_name == "account").unwrap();
        assert_eq!(account.entity_set_name, "accounts");
        assert_eq!(account.sql_table(3), "dv3_account");
        assert!(
            account.attribute("ownerid").is_some()
                && account.attribute("owningbusinessunit").is_some()
        );
    }
}
