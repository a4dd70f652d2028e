//! Choice and lookup columns on a custom table, made the Dataverse way (an OptionSet on
//! `…/Attributes`, a one-to-many relationship on `RelationshipDefinitions`), and the metadata
//! paths clients read about them: keys, relationships both ways, and the SDK message filters
//! flow triggers look up.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(choice_and_lookup_columns_and_their_metadata);

async fn call(
    app: &TestApp,
    api: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value, Option<String>) {
    let (s, loc, v) = web_call(
        &app.http,
        token,
        method,
        format!("{api}/{path}"),
        body,
        headers,
    )
    .await;
    (s, v, loc)
}

fn label(text: &str) -> Value {
    json!({"@odata.type": "Microsoft.Dynamics.CRM.Label", "LocalizedLabels": [{"@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel", "Label": text, "LanguageCode": 1033}]})
}

async fn choice_and_lookup_columns_and_their_metadata(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, api, t) = app.environment("dev").await;
    let go = |method: Method, path: String, body: Option<Value>| {
        let (app, api, t) = (&app, api.clone(), t.clone());
        async move { call(app, &api, &t, method, &path, body, &[]).await }
    };
    let (s, v, _) = go(
        Method::POST,
        "EntityDefinitions".into(),
        Some(json!({
            "@odata.type": "Microsoft.Dynamics.CRM.EntityMetadata",
            "SchemaName": "new_Project",
            "Attributes": [{"@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata", "SchemaName": "new_Name", "IsPrimaryName": true, "MaxLength": 100}],
        })),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");

    // A choice column with its own options.
    let picklist = json!({
        "@odata.type": "Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
        "SchemaName": "new_Color",
        "DisplayName": label("Color"),
        "OptionSet": {
            "@odata.type": "Microsoft.Dynamics.CRM.OptionSetMetadata",
            "IsGlobal": false,
            "OptionSetType": "Picklist",
            "Options": [{"Value": 1, "Label": label("Red")}, {"Value": 2, "Label": label("Blue")}],
        },
    });
    let attrs = "EntityDefinitions(LogicalName='new_project')/Attributes".to_string();
    let (s, v, loc) = go(Method::POST, attrs.clone(), Some(picklist)).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    assert!(loc.unwrap().contains("/Attributes("));
    for (bad, why) in [
        (
            json!({"@odata.type": "Microsoft.Dynamics.CRM.PicklistAttributeMetadata", "SchemaName": "new_Size"}),
            "OptionSet",
        ),
        (
            json!({"@odata.type": "Microsoft.Dynamics.CRM.PicklistAttributeMetadata", "SchemaName": "new_Size", "OptionSet": {"Options": [{"Value": 1, "Label": label("S")}, {"Value": 1, "Label": label("M")}]}}),
            "twice",
        ),
        (
            json!({"@odata.type": "Microsoft.Dynamics.CRM.LookupAttributeMetadata", "SchemaName": "new_Other"}),
            "RelationshipDefinitions",
        ),
    ] {
        let (s, v, _) = go(Method::POST, attrs.clone(), Some(bad)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(why), "{v}");
    }
    let (s, v, _) = go(
        Method::GET,
        format!("{attrs}/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let color = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["LogicalName"] == "new_color")
        .unwrap_or_else(|| panic!("{v}"));
    let labels: Vec<(i64, &str)> = color["OptionSet"]["Options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["Value"].as_i64().unwrap(),
                o["Label"]["LocalizedLabels"][0]["Label"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(labels, [(1, "Red"), (2, "Blue")]);

    // Values are checked on write and read back as the number, labelled when asked.
    let (s, v, loc) = go(
        Method::POST,
        "new_projects".into(),
        Some(json!({"new_name": "Apollo", "new_color": 2})),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let project = loc
        .unwrap()
        .rsplit('(')
        .next()
        .unwrap()
        .trim_end_matches(')')
        .to_string();
    let (s, v, _) = go(
        Method::POST,
        "new_projects".into(),
        Some(json!({"new_name": "Gemini", "new_color": 7})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("7 is not a valid value for 'new_color'"),
        "{v}"
    );
    let (s, v, _) = go(
        Method::PATCH,
        format!("new_projects({project})"),
        Some(json!({"new_color": 3})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let annotated = [("Prefer", "odata.include-annotations=\"*\"")];
    let (s, v, _) = call(
        &app,
        &api,
        &t,
        Method::GET,
        &format!("new_projects({project})?$select=new_color"),
        None,
        &annotated,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["new_color"], 2);
    assert_eq!(
        v["new_color@OData.Community.Display.V1.FormattedValue"],
        "Blue"
    );
    let (_, v, _) = go(
        Method::GET,
        format!("new_projects({project})?$select=new_color"),
        None,
    )
    .await;
    assert_eq!(v["new_color"], 2);
    assert!(
        v.get("new_color@OData.Community.Display.V1.FormattedValue")
            .is_none()
    );
    let (_, v, _) = call(
        &app,
        &api,
        &t,
        Method::GET,
        "new_projects?$filter=new_color eq 2&$select=new_name,new_color",
        None,
        &[(
            "Prefer",
            "odata.include-annotations=\"OData.Community.Display.V1.FormattedValue\"",
        )],
    )
    .await;
    assert_eq!(
        v["value"][0]["new_color@OData.Community.Display.V1.FormattedValue"], "Blue",
        "{v}"
    );

    // A lookup, made with its relationship: a real column that binds, filters and expands.
    let relationship = json!({
        "@odata.type": "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
        "SchemaName": "new_account_new_project",
        "ReferencedEntity": "account",
        "ReferencedAttribute": "accountid",
        "ReferencingEntity": "new_project",
        "Lookup": {
            "@odata.type": "Microsoft.Dynamics.CRM.LookupAttributeMetadata",
            "AttributeType": "Lookup",
            "SchemaName": "new_AccountId",
            "DisplayName": label("Account"),
        },
    });
    let (s, v, loc) = go(
        Method::POST,
        "RelationshipDefinitions".into(),
        Some(relationship.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let rel_url = loc.unwrap();
    let (s, v, _) = go(
        Method::POST,
        "RelationshipDefinitions".into(),
        Some(relationship),
    )
    .await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED, "{v}");
    let (s, v, _) = go(
        Method::POST,
        "RelationshipDefinitions".into(),
        Some(json!({
            "@odata.type": "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
            "SchemaName": "new_widget_new_project",
            "ReferencedEntity": "new_widget",
            "ReferencingEntity": "new_project",
            "Lookup": {"SchemaName": "new_WidgetId"},
        })),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("new_widget"),
        "{v}"
    );
    let (s, v, _) = go(
        Method::GET,
        rel_url.rsplit("v9.2/").next().unwrap().to_string(),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["SchemaName"], "new_account_new_project");

    let (_, v, loc) = go(
        Method::POST,
        "accounts".into(),
        Some(json!({"name": "Contoso"})),
    )
    .await;
    let account = loc
        .unwrap_or_else(|| panic!("{v}"))
        .rsplit('(')
        .next()
        .unwrap()
        .trim_end_matches(')')
        .to_string();
    let (s, v, _) = go(
        Method::PATCH,
        format!("new_projects({project})"),
        Some(json!({"new_AccountId@odata.bind": format!("/accounts({account})")})),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, v, _) = go(
        Method::POST,
        "new_projects".into(),
        Some(json!({"new_name": "Mercury", "new_accountid@odata.bind": format!("accounts({account})")})),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, v, _) = go(
        Method::GET,
        format!("new_projects?$filter=_new_accountid_value eq {account}&$select=new_name,_new_accountid_value&$orderby=new_name&$expand=new_accountid($select=name)"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let rows = v["value"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{v}");
    assert_eq!(rows[0]["new_name"], "Apollo");
    assert_eq!(rows[0]["_new_accountid_value"], account.as_str());
    assert_eq!(rows[0]["new_accountid"]["name"], "Contoso");
    let (s, v, _) = go(
        Method::PATCH,
        format!("new_projects({project})"),
        Some(json!({"new_AccountId@odata.bind": format!("/contacts({account})")})),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "a lookup points at its own table only: {v}"
    );

    // Relationships both ways, by name, and the list of all; no alternate keys.
    let (s, v, _) = go(
        Method::GET,
        "EntityDefinitions(LogicalName='new_project')/ManyToOneRelationships?$select=SchemaName,ReferencedEntity,ReferencedAttribute,ReferencingAttribute,ReferencingEntityNavigationPropertyName".into(),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ours = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["SchemaName"] == "new_account_new_project")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(ours["ReferencedEntity"], "account");
    assert_eq!(ours["ReferencedAttribute"], "accountid");
    assert_eq!(ours["ReferencingAttribute"], "new_accountid");
    assert_eq!(
        ours["ReferencingEntityNavigationPropertyName"],
        "new_AccountId"
    );
    assert!(ours["MetadataId"].is_string());
    let (_, v, _) = go(
        Method::GET,
        "EntityDefinitions(LogicalName='account')/OneToManyRelationships?$filter=ReferencingEntity eq 'new_project'".into(),
        None,
    )
    .await;
    assert_eq!(v["value"].as_array().unwrap().len(), 1, "{v}");
    let (_, v, _) = go(
        Method::GET,
        "EntityDefinitions(LogicalName='contact')/ManyToOneRelationships?$filter=ReferencingAttribute eq 'parentcustomerid'".into(),
        None,
    )
    .await;
    let navs: Vec<&str> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["ReferencingEntityNavigationPropertyName"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        navs,
        ["parentcustomerid_account", "parentcustomerid_contact"]
    );
    let (s, v, _) = go(
        Method::GET,
        "RelationshipDefinitions(SchemaName='new_account_new_project')?$select=ReferencingEntity"
            .into(),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["ReferencingEntity"], "new_project");
    let (s, v, _) = go(
        Method::GET,
        "RelationshipDefinitions(SchemaName='nope')".into(),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (_, v, _) = go(Method::GET, "RelationshipDefinitions".into(), None).await;
    assert!(v["value"].as_array().unwrap().len() > 10, "{v}");
    let (s, v, _) = go(
        Method::GET,
        "EntityDefinitions(LogicalName='new_project')/Keys".into(),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["value"], json!([]));

    // SDK message filters, looked up as clients do: through the message's name.
    let (s, v, _) = go(
        Method::GET,
        "sdkmessagefilters?$select=sdkmessagefilterid,primaryobjecttypecode&$filter=sdkmessageid/name eq 'Create' and primaryobjecttypecode eq 'new_project'&$expand=sdkmessageid($select=name)".into(),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let filters = v["value"].as_array().unwrap();
    assert_eq!(filters.len(), 1, "{v}");
    assert_eq!(filters[0]["primaryobjecttypecode"], "new_project");
    assert_eq!(filters[0]["sdkmessageid"]["name"], "Create");
    let filter_id = filters[0]["sdkmessagefilterid"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v, _) = go(Method::GET, format!("sdkmessagefilters({filter_id})"), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v.get("sdkmessageid").is_none(), "not expanded: {v}");
    let message = v["_sdkmessageid_value"].as_str().unwrap().to_string();
    let (_, v, _) = go(
        Method::GET,
        format!("sdkmessages({message})?$select=name"),
        None,
    )
    .await;
    assert_eq!(v["name"], "Create");
    let (_, v, _) = go(
        Method::GET,
        "sdkmessagefilters?$filter=primaryobjecttypecode eq 'account'".into(),
        None,
    )
    .await;
    let mut messages: Vec<String> = Vec::new();
    for f in v["value"].as_array().unwrap() {
        let id = f["_sdkmessageid_value"].as_str().unwrap();
        let (_, m, _) = go(Method::GET, format!("sdkmessages({id})"), None).await;
        messages.push(m["name"].as_str().unwrap().to_string());
    }
    messages.sort();
    assert_eq!(
        messages,
        [
            "Assign",
            "Create",
            "Delete",
            "GrantAccess",
            "Retrieve",
            "RetrieveMultiple",
            "Update"
        ]
    );
    app.stop().await;
}
