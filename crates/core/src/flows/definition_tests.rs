//! Flow definitions as Power Automate exports them: a seed-002 flow read and ordered, every
//! refusal naming the JSON path, and expressions' action reads checked against `runAfter`.

use serde_json::{Value, json};
use time::macros::datetime;

use super::action::*;
use super::definition::*;
use super::evaluate::RecordedRun;
use super::trigger::*;

const SCHEMA: &str = "https://schema.management.azure.com/providers/Microsoft.Logic/schemas/2016-06-01/workflowdefinition.json#";

fn dataverse_host(operation: &str) -> Value {
    json!({
        "connectionName": "shared_commondataserviceforapps",
        "operationId": operation,
        "apiId": "/providers/Microsoft.PowerApps/apis/shared_commondataserviceforapps"
    })
}

/// Seed 002: when a row is added to account, add a contact through a connection reference.
fn seed_002() -> Value {
    json!({
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": {
            "$connections": {"defaultValue": {}, "type": "Object"},
            "$authentication": {"defaultValue": {}, "type": "SecureObject"},
            "pfx_ContactSource": {"defaultValue": "flow", "type": "String", "metadata": {"schemaName": "pfx_ContactSource"}}
        },
        "triggers": {
            "When_a_row_is_added": {
                "metadata": {"operationMetadataId": "11111111-aaaa-1111-aaaa-111111111111"},
                "type": "OpenApiConnectionWebhook",
                "inputs": {
                    "host": dataverse_host("SubscribeWebhookTrigger"),
                    "parameters": {
                        "subscriptionRequest/message": 1,
                        "subscriptionRequest/entityname": "account",
                        "subscriptionRequest/scope": 4,
                        "subscriptionRequest/runas": 3,
                        "subscriptionRequest/filterexpression": "statecode eq 0"
                    },
                    "authentication": "@parameters('$authentication')"
                }
            }
        },
        "actions": {
            "Add_a_new_row": {
                "runAfter": {},
                "metadata": {"operationMetadataId": "22222222-aaaa-2222-aaaa-222222222222"},
                "type": "OpenApiConnection",
                "inputs": {
                    "host": dataverse_host("CreateRecord"),
                    "parameters": {
                        "entityName": "contacts",
                        "item/lastname": "@triggerOutputs()?['body/name']",
                        "item/parentcustomerid_account@odata.bind": "accounts(@{triggerOutputs()?['body/accountid']})",
                        "item/description": "Added by @{parameters('pfx_ContactSource')} on @{utcNow('yyyy-MM-dd')}"
                    },
                    "authentication": "@parameters('$authentication')"
                }
            },
            "Compose_summary": {
                "runAfter": {"Add_a_new_row": ["Succeeded"]},
                "type": "Compose",
                "inputs": "@concat('Contact ', outputs('Add_a_new_row')?['body/contactid'])"
            },
            "Audit_note": {
                "runAfter": {},
                "type": "Compose",
                "inputs": {"account": "@triggerBody()?['name']"}
            },
            "Condition": {
                "runAfter": {"Compose_summary": ["Succeeded"], "Audit_note": ["Succeeded", "Skipped"]},
                "type": "If",
                "expression": {"and": [{"not": {"equals": ["@triggerOutputs()?['body/revenue']", "@null"]}}]},
                "actions": {
                    "Update_a_row": {
                        "runAfter": {},
                        "type": "OpenApiConnection",
                        "inputs": {
                            "host": dataverse_host("UpdateRecord"),
                            "parameters": {
                                "entityName": "contacts",
                                "recordId": "@outputs('Add_a_new_row')?['body/contactid']",
                                "item/jobtitle": "@outputs('Compose_summary')"
                            }
                        }
                    }
                },
                "else": {
                    "actions": {
                        "Stop": {
                            "runAfter": {},
                            "type": "Terminate",
                            "inputs": {"runStatus": "Failed", "runError": {"code": "NoRevenue", "message": "@{triggerBody()?['name']} has no revenue"}}
                        }
                    }
                }
            }
        },
        "outputs": {}
    })
}

fn refused(definition: Value) -> String {
    match FlowDefinition::parse(&definition) {
        Ok(_) => panic!("accepted: {definition}"),
        Err(err) => err.to_string(),
    }
}

/// A minimal flow around the given actions.
fn with_actions(actions: Value) -> Value {
    json!({
        "parameters": {"p": {"type": "String", "defaultValue": "x"}},
        "triggers": {"manual": {"type": "Request", "kind": "Button", "inputs": {"schema": {"type": "object"}}}},
        "actions": actions
    })
}

fn compose(run_after: Value, inputs: Value) -> Value {
    json!({"type": "Compose", "runAfter": run_after, "inputs": inputs})
}

#[test]
fn seed_002_reads_as_a_dataverse_trigger_and_ordered_actions() {
    let flow = FlowDefinition::parse(&seed_002()).unwrap();
    assert_eq!(flow.schema.as_deref(), Some(SCHEMA));
    assert_eq!(flow.content_version.as_deref(), Some("1.0.0.0"));
    assert_eq!(flow.trigger.name, "When_a_row_is_added");
    let TriggerKind::Dataverse(trigger) = &flow.trigger.kind else {
        panic!("not the Dataverse trigger");
    };
    assert_eq!(flow.trigger.kind.name(), "dataverse");
    assert_eq!(trigger.connection_name, "shared_commondataserviceforapps");
    assert_eq!(trigger.message, TriggerMessage::Added);
    assert_eq!(trigger.entity_name, "account");
    assert_eq!(trigger.scope, TriggerScope::Organization);
    assert_eq!(trigger.run_as, RunAs::FlowOwner);
    assert_eq!(trigger.filter_expression.as_deref(), Some("statecode eq 0"));
    assert!(trigger.filtering_attributes.is_empty());

    // Ties (two actions that run first) go by name.
    assert_eq!(
        flow.execution_order(),
        [
            "Add_a_new_row",
            "Audit_note",
            "Compose_summary",
            "Condition"
        ]
    );
    let Some(ActionKind::Dataverse(create)) = flow.action("Add_a_new_row").map(|a| &a.kind) else {
        panic!("not a Dataverse action");
    };
    assert_eq!(create.operation, DataverseOperation::CreateRecord);
    assert_eq!(create.entity_name, "contacts");
    assert_eq!(
        create.item.keys().collect::<Vec<_>>(),
        [
            "description",
            "lastname",
            "parentcustomerid_account@odata.bind"
        ]
    );
    let condition = flow.action("Condition").unwrap();
    assert_eq!(
        condition.run_after.get("Audit_note"),
        Some(&vec![RunStatus::Succeeded, RunStatus::Skipped])
    );
    let ActionKind::If(branches) = &condition.kind else {
        panic!("not an If");
    };
    assert_eq!(branches.actions.order, ["Update_a_row"]);
    assert_eq!(branches.else_actions.order, ["Stop"]);
    assert!(flow.action("Stop").is_some());
    assert_eq!(
        flow.connection_names().into_iter().collect::<Vec<_>>(),
        ["shared_commondataserviceforapps"]
    );
    assert!(flow.required_features().is_empty());
    assert_eq!(
        flow.default_parameters().get("pfx_ContactSource"),
        Some(&json!("flow"))
    );
}

#[test]
fn seed_002_inputs_evaluate_against_a_run() {
    let flow = FlowDefinition::parse(&seed_002()).unwrap();
    let mut run = RecordedRun::new(
        json!({"body": {"accountid": "a1", "name": "Contoso", "revenue": null}}),
        datetime!(2025-01-31 09:30 UTC),
    );
    run.parameters = flow.default_parameters();
    let Some(ActionKind::Dataverse(create)) = flow.action("Add_a_new_row").map(|a| &a.kind) else {
        panic!("not a Dataverse action");
    };
    let columns: Vec<(String, Value)> = create
        .item
        .iter()
        .map(|(column, value)| (column.clone(), value.evaluate(&run).unwrap()))
        .collect();
    assert_eq!(
        columns,
        [
            (
                "description".to_owned(),
                json!("Added by flow on 2025-01-31")
            ),
            ("lastname".to_owned(), json!("Contoso")),
            (
                "parentcustomerid_account@odata.bind".to_owned(),
                json!("accounts(a1)")
            ),
        ]
    );
    run.record(
        "Add_a_new_row",
        RunStatus::Succeeded,
        json!({"body": {"contactid": "c1"}}),
    );
    let ActionKind::Compose(summary) = &flow.action("Compose_summary").unwrap().kind else {
        panic!("not a Compose");
    };
    assert_eq!(summary.evaluate(&run).unwrap(), json!("Contact c1"));
    let ActionKind::If(branches) = &flow.action("Condition").unwrap().kind else {
        panic!("not an If");
    };
    // Revenue is null: the else branch runs.
    assert!(!branches.condition.evaluate(&run).unwrap());
    run.trigger_outputs = json!({"body": {"revenue": 5}});
    assert!(branches.condition.evaluate(&run).unwrap());
}

#[test]
fn a_definition_serializes_as_it_was_read() {
    let flow: FlowDefinition = serde_json::from_value(seed_002()).unwrap();
    assert_eq!(serde_json::to_value(&flow).unwrap(), seed_002());
    assert_eq!(flow.source(), &seed_002());
    let text = serde_json::to_string(&seed_002()).unwrap();
    assert_eq!(FlowDefinition::from_json(&text).unwrap(), flow);
    let err = serde_json::from_value::<FlowDefinition>(with_actions(json!({}))).unwrap_err();
    assert_eq!(err.to_string(), "actions: a flow needs at least one action");
}

#[test]
fn the_trigger_is_exactly_one() {
    let mut flow = seed_002();
    flow["triggers"] = json!({});
    assert_eq!(refused(flow.clone()), "triggers: a flow needs a trigger");
    flow["triggers"] = json!({
        "a": {"type": "Request", "kind": "Http"},
        "b": {"type": "Recurrence", "recurrence": {"frequency": "Day", "interval": 1}}
    });
    assert_eq!(
        refused(flow.clone()),
        "triggers: a flow has exactly one trigger, this one has 2: a, b"
    );
    flow.as_object_mut().unwrap().remove("triggers");
    assert_eq!(
        refused(flow),
        "A flow definition needs the property 'triggers'"
    );
}

#[test]
fn dataverse_trigger_parameters_are_checked() {
    let trigger = |parameters: Value| {
        let mut flow = seed_002();
        flow["triggers"]["When_a_row_is_added"]["inputs"]["parameters"] = parameters;
        flow
    };
    assert_eq!(
        refused(trigger(
            json!({"subscriptionRequest/message": 8, "subscriptionRequest/entityname": "account", "subscriptionRequest/scope": 4})
        )),
        "triggers.When_a_row_is_added.inputs.parameters.subscriptionRequest/message: message (1 added, 2 deleted, 3 modified, 4 added or modified, 5 added or deleted, 6 modified or deleted, 7 all) must be a whole number from 1 to 7, found 8"
    );
    assert_eq!(
        refused(trigger(
            json!({"subscriptionRequest/message": 1, "subscriptionRequest/scope": 4})
        )),
        "triggers.When_a_row_is_added.inputs.parameters: the Dataverse trigger needs 'subscriptionRequest/entityname'"
    );
    assert_eq!(
        refused(trigger(
            json!({"subscriptionRequest/message": 1, "subscriptionRequest/entityname": "account", "subscriptionRequest/scope": 5})
        )),
        "triggers.When_a_row_is_added.inputs.parameters.subscriptionRequest/scope: scope (1 user, 2 business unit, 3 parent: child business units, 4 organization) must be a whole number from 1 to 4, found 5"
    );
    assert!(refused(trigger(json!({"subscriptionRequest/message": 1, "subscriptionRequest/entityname": "account", "subscriptionRequest/scope": 4, "subscriptionRequest/runas": 0})))
        .starts_with("triggers.When_a_row_is_added.inputs.parameters.subscriptionRequest/runas: runas"));
    assert_eq!(
        refused(trigger(
            json!({"subscriptionRequest/message": 1, "subscriptionRequest/entityname": "@parameters('p')", "subscriptionRequest/scope": 4})
        )),
        "triggers.When_a_row_is_added.inputs.parameters.subscriptionRequest/entityname: the table name (entityname) must be written out, not computed by an expression"
    );
    assert_eq!(
        refused(trigger(
            json!({"subscriptionRequest/message": 1, "subscriptionRequest/entityname": "account", "subscriptionRequest/scope": 4, "subscriptionRequest/colour": "red"})
        )),
        "triggers.When_a_row_is_added.inputs.parameters.subscriptionRequest/colour: unknown property 'subscriptionRequest/colour' in the Dataverse trigger's parameters (did you mean 'subscriptionRequest/scope'?)"
    );
    assert_eq!(
        refused(trigger(
            json!({"message": 1, "subscriptionRequest/message": 1, "entityname": "account", "scope": 4})
        )),
        "triggers.When_a_row_is_added.inputs.parameters.message: 'message' is given twice, as 'subscriptionRequest/message' and 'message'"
    );

    // The bare names of the brief are read too, and numbers may come as digits in strings.
    let flow = FlowDefinition::parse(&trigger(json!({
        "message": "6", "entityname": "contact", "scope": 1, "runas": 2,
        "filteringattributes": "firstname, lastname,", "postponeuntil": "@addDays(utcNow(), 1)"
    })))
    .unwrap();
    let TriggerKind::Dataverse(read) = &flow.trigger.kind else {
        panic!("not the Dataverse trigger");
    };
    assert_eq!(read.message, TriggerMessage::ModifiedOrDeleted);
    assert_eq!(read.scope, TriggerScope::User);
    assert_eq!(read.run_as, RunAs::RowOwner);
    assert!(read.run_as.acts_on_behalf());
    assert_eq!(read.filtering_attributes, ["firstname", "lastname"]);
    assert!(read.postpone_until.is_some());

    let mut flow = seed_002();
    flow["triggers"]["When_a_row_is_added"]["inputs"]["host"]["operationId"] =
        json!("GetOnNewItems");
    assert!(refused(flow).starts_with(
        "triggers.When_a_row_is_added.inputs.host.operationId: 'GetOnNewItems' is not a trigger Keyway runs"
    ));
}

#[test]
fn trigger_messages_fire_on_their_changes() {
    use RowChange::{Added, Deleted, Modified};
    let fires =
        |message: TriggerMessage| [Added, Modified, Deleted].map(|change| message.fires_on(change));
    assert_eq!(fires(TriggerMessage::Added), [true, false, false]);
    assert_eq!(fires(TriggerMessage::Deleted), [false, false, true]);
    assert_eq!(fires(TriggerMessage::Modified), [false, true, false]);
    assert_eq!(fires(TriggerMessage::AddedOrModified), [true, true, false]);
    assert_eq!(fires(TriggerMessage::AddedOrDeleted), [true, false, true]);
    assert_eq!(
        fires(TriggerMessage::ModifiedOrDeleted),
        [false, true, true]
    );
    assert_eq!(fires(TriggerMessage::All), [true, true, true]);
    for code in 1..=7 {
        assert_eq!(
            TriggerMessage::from_code(code).map(|m| u64::from(m.code())),
            Some(code)
        );
    }
    assert_eq!(TriggerMessage::from_code(0), None);
}

#[test]
fn request_and_recurrence_triggers() {
    let mut flow = seed_002();
    flow["triggers"] = json!({"manual": {"type": "Request", "kind": "Http", "inputs": {"method": "POST", "schema": {"type": "object"}}}});
    // The seed's actions read the trigger only through triggerOutputs(), so they still validate.
    let read = FlowDefinition::parse(&flow).unwrap();
    assert!(
        matches!(&read.trigger.kind, TriggerKind::Request(r) if r.kind == RequestKind::Http && r.method.as_deref() == Some("POST"))
    );
    assert!(
        read.connection_names()
            .contains("shared_commondataserviceforapps")
    );

    flow["triggers"] = json!({"Recurrence": {"type": "Recurrence", "recurrence": {
        "frequency": "Week", "interval": 1, "startTime": "2025-01-06T09:00:00", "timeZone": "W. Europe Standard Time",
        "schedule": {"hours": [9, 17], "minutes": [0], "weekDays": ["Monday", "Friday"]}
    }}});
    let read = FlowDefinition::parse(&flow).unwrap();
    let TriggerKind::Recurrence(recurrence) = &read.trigger.kind else {
        panic!("not a recurrence");
    };
    assert_eq!(recurrence.frequency, Frequency::Week);
    assert_eq!(
        recurrence.schedule.as_ref().map(|s| s.hours.clone()),
        Some(vec![9, 17])
    );
    assert_eq!(
        recurrence.schedule.as_ref().map(|s| s.week_days.len()),
        Some(2)
    );

    flow["triggers"]["Recurrence"]["recurrence"]["frequency"] = json!("Fortnight");
    assert_eq!(
        refused(flow.clone()),
        "triggers.Recurrence.recurrence.frequency: 'Fortnight' is not a valid frequency; use 'Second', 'Minute', 'Hour', 'Day', 'Week' and 'Month'"
    );
    flow["triggers"]["Recurrence"]["recurrence"]["frequency"] = json!("Day");
    flow["triggers"]["Recurrence"]["recurrence"]["schedule"]["hours"] = json!([24]);
    assert_eq!(
        refused(flow.clone()),
        "triggers.Recurrence.recurrence.schedule.hours[0]: hours must be a whole number from 0 to 23, found 24"
    );
    flow["triggers"] = json!({"poll": {"type": "ApiConnection", "inputs": {}}});
    assert_eq!(
        refused(flow),
        "triggers.poll.type: 'ApiConnection' is not a valid trigger type; use 'OpenApiConnectionWebhook', 'Request' and 'Recurrence'"
    );
}

#[test]
fn trigger_conditions_are_expressions_over_the_trigger() {
    let mut flow = seed_002();
    flow["triggers"]["When_a_row_is_added"]["conditions"] =
        json!([{"expression": "@equals(triggerOutputs()?['body/statecode'], 0)"}]);
    let read = FlowDefinition::parse(&flow).unwrap();
    assert_eq!(read.trigger.conditions.len(), 1);
    let run = RecordedRun::new(
        json!({"body": {"statecode": 0}}),
        datetime!(2025-01-01 0:00 UTC),
    );
    assert!(read.trigger.conditions[0].evaluate(&run).unwrap());

    flow["triggers"]["When_a_row_is_added"]["conditions"] =
        json!([{"expression": "@equals(body('Add_a_new_row'), 0)"}]);
    assert_eq!(
        refused(flow),
        "triggers.When_a_row_is_added.conditions[0].expression: at 8: a trigger cannot read the action 'Add_a_new_row': no action has run when the trigger fires"
    );
}

#[test]
fn expression_errors_carry_the_json_path_and_offset() {
    let mut flow = seed_002();
    flow["actions"]["Add_a_new_row"]["inputs"]["parameters"]["item/lastname"] =
        json!("Name: @{concatt(triggerOutputs()?['body/name'])}");
    assert_eq!(
        refused(flow),
        "actions.Add_a_new_row.inputs.parameters.item/lastname: at 8: unknown function 'concatt' (did you mean 'concat'?)"
    );
    let mut flow = seed_002();
    flow["actions"]["Condition"]["actions"]["Update_a_row"]["inputs"]["parameters"]["recordId"] =
        json!("@outputs('Add_a_new_row')?['body/contactid'");
    assert_eq!(
        refused(flow),
        "actions.Condition.actions.Update_a_row.inputs.parameters.recordId: at 43: expected ']' to close the property access, found the end of the expression"
    );
    let mut flow = seed_002();
    flow["actions"]["Condition"]["expression"]["and"][0]["not"]["equals"][1] = json!("@nul");
    assert_eq!(
        refused(flow),
        "actions.Condition.expression.and[0].not.equals[1]: at 1: 'nul' is not a value: call a function with 'nul(…)' or quote text as 'nul'"
    );
    let mut flow = seed_002();
    flow["actions"]["Compose_summary"]["inputs"] = json!("@parameters('pfx_Missing')");
    assert_eq!(
        refused(flow),
        "actions.Compose_summary.inputs: at 1: the parameter 'pfx_Missing' is not declared in the definition's parameters"
    );
}

#[test]
fn expressions_may_only_read_actions_that_ran_before() {
    // Directly before, and through another action.
    let ok = with_actions(json!({
        "A": compose(json!({}), json!(1)),
        "B": compose(json!({"A": ["Succeeded"]}), json!(2)),
        "C": compose(json!({"B": ["Failed"]}), json!("@outputs('A')"))
    }));
    assert_eq!(
        FlowDefinition::parse(&ok).unwrap().execution_order(),
        ["A", "B", "C"]
    );

    let sibling = with_actions(json!({
        "A": compose(json!({}), json!(1)),
        "B": compose(json!({}), json!("x @{body('A')}"))
    }));
    assert_eq!(
        refused(sibling),
        "actions.B.inputs: at 4: 'B' reads 'A', which does not run before it: add 'A' to its runAfter (or to an action it runs after)"
    );
    let later = with_actions(json!({
        "A": compose(json!({}), json!("@outputs('B')")),
        "B": compose(json!({"A": ["Succeeded"]}), json!(1))
    }));
    assert!(
        refused(later)
            .starts_with("actions.A.inputs: at 1: 'A' reads 'B', which does not run before it")
    );
    let itself = with_actions(json!({"A": compose(json!({}), json!("@outputs('A')"))}));
    assert_eq!(
        refused(itself),
        "actions.A.inputs: at 1: 'A' cannot read its own outputs"
    );
    let unknown = with_actions(json!({
        "Get_row": compose(json!({}), json!(1)),
        "B": compose(json!({"Get_row": ["Succeeded"]}), json!("@outputs('Get_rows')"))
    }));
    assert_eq!(
        refused(unknown),
        "actions.B.inputs: at 1: there is no action named 'Get_rows' (did you mean 'Get_row'?)"
    );
    let trigger = with_actions(json!({"A": compose(json!({}), json!("@body('manual')"))}));
    assert_eq!(
        refused(trigger),
        "actions.A.inputs: at 1: 'manual' is the trigger: read it with triggerOutputs() or triggerBody()"
    );
}

#[test]
fn nested_actions_read_their_branch_and_what_ran_before_the_if() {
    let branchy = |reader: Value| {
        with_actions(json!({
            "First": compose(json!({}), json!(1)),
            "Check": {
                "type": "If",
                "runAfter": {"First": ["Succeeded"]},
                "expression": "@equals(outputs('First'), 1)",
                "actions": {
                    "Inner": compose(json!({}), json!(2)),
                    "Reader": compose(json!({"Inner": ["Succeeded"]}), reader.clone())
                },
                "else": {"actions": {"Other": compose(json!({}), json!(3))}}
            },
            "After": compose(json!({"Check": ["Succeeded"]}), json!("@coalesce(outputs('Inner'), outputs('Other'))"))
        }))
    };
    assert!(
        FlowDefinition::parse(&branchy(json!(
            "@concat(outputs('First'), outputs('Inner'))"
        )))
        .is_ok()
    );
    assert_eq!(
        refused(branchy(json!("@outputs('Other')"))),
        "actions.Check.actions.Reader.inputs: at 1: 'Reader' reads 'Other', which does not run before it: add 'Other' to its runAfter (or to an action it runs after)"
    );
    let bad_condition = with_actions(json!({
        "Check": {"type": "If", "expression": "@equals(outputs('Late'), 1)", "actions": {}},
        "Late": compose(json!({"Check": ["Succeeded"]}), json!(1))
    }));
    assert!(
        refused(bad_condition).starts_with("actions.Check.expression: at 8: 'Check' reads 'Late'")
    );
}

#[test]
fn run_after_forms_a_dag_of_siblings() {
    let missing = with_actions(json!({
        "Get_row": compose(json!({}), json!(1)),
        "B": compose(json!({"Get_rows": ["Succeeded"]}), json!(1))
    }));
    assert_eq!(
        refused(missing),
        "actions.B.runAfter.Get_rows: 'B' runs after 'Get_rows', which is not an action at this level (did you mean 'Get_row'?); runAfter names actions of the same scope"
    );
    let cycle = with_actions(json!({
        "A": compose(json!({"C": ["Succeeded"]}), json!(1)),
        "B": compose(json!({"A": ["Succeeded"]}), json!(1)),
        "C": compose(json!({"B": ["Succeeded"]}), json!(1)),
        "D": compose(json!({}), json!(1))
    }));
    assert_eq!(
        refused(cycle),
        "actions.A.runAfter: these actions wait for each other in a cycle: A → C → B → A"
    );
    let own = with_actions(json!({"A": compose(json!({"A": ["Succeeded"]}), json!(1))}));
    assert_eq!(
        refused(own),
        "actions.A.runAfter: these actions wait for each other in a cycle: A → A"
    );
    let cross_scope = with_actions(json!({
        "Check": {"type": "If", "expression": true, "actions": {"Inner": compose(json!({}), json!(1))}},
        "After": compose(json!({"Inner": ["Succeeded"]}), json!(1))
    }));
    assert!(refused(cross_scope).starts_with("actions.After.runAfter.Inner: 'After' runs after 'Inner', which is not an action at this level"));
    let status = with_actions(json!({
        "A": compose(json!({}), json!(1)),
        "B": compose(json!({"A": ["Succeded"]}), json!(1))
    }));
    assert_eq!(
        refused(status),
        "actions.B.runAfter.A[0]: 'Succeded' is not a valid run status (did you mean 'Succeeded'?); use 'Succeeded', 'Failed', 'Skipped' and 'TimedOut'"
    );
    let empty = with_actions(
        json!({"A": compose(json!({}), json!(1)), "B": compose(json!({"A": []}), json!(1))}),
    );
    assert_eq!(
        refused(empty),
        "actions.B.runAfter.A: list at least one status: Succeeded, Failed, Skipped or TimedOut"
    );
    assert_eq!(
        refused(with_actions(json!({}))),
        "actions: a flow needs at least one action"
    );
}

#[test]
fn execution_order_is_topological_with_ties_by_name() {
    let flow = with_actions(json!({
        "z_last": compose(json!({"m_middle": ["Succeeded"], "b_second": ["Succeeded"]}), json!(1)),
        "m_middle": compose(json!({"a_first": ["Succeeded"]}), json!(1)),
        "b_second": compose(json!({}), json!(1)),
        "a_first": compose(json!({}), json!(1)),
        "c_alone": compose(json!({}), json!(1))
    }));
    assert_eq!(
        FlowDefinition::parse(&flow).unwrap().execution_order(),
        ["a_first", "b_second", "c_alone", "m_middle", "z_last"]
    );
}

#[test]
fn action_names_are_unique_and_well_formed() {
    let nested_twice = with_actions(json!({
        "Check": {"type": "If", "expression": true,
            "actions": {"Same": compose(json!({}), json!(1))},
            "else": {"actions": {"Same": compose(json!({}), json!(2))}}}
    }));
    assert_eq!(
        refused(nested_twice),
        "actions.Check.actions.Same: the action name 'Same' is already used at actions.Check.else.actions.Same: action names are unique in a flow"
    );
    let text = r#"{"triggers": {"manual": {"type": "Request"}},
        "actions": {"A": {"type": "Compose", "inputs": 1}, "A": {"type": "Compose", "inputs": 2}}}"#;
    let err = FlowDefinition::from_json(text).unwrap_err();
    assert!(
        err.message
            .starts_with("invalid JSON: the key 'A' appears twice in one object at line 2"),
        "{err}"
    );
    assert!(
        refused(with_actions(json!({"a/b": compose(json!({}), json!(1))})))
            .starts_with("actions.a/b: 'a/b' is not a valid action name")
    );
    let long = "x".repeat(81);
    assert!(
        refused(with_actions(
            json!({long.clone(): compose(json!({}), json!(1))})
        ))
        .contains("is not a valid action name")
    );
}

#[test]
fn unknown_kinds_and_properties_are_refused_by_path() {
    assert_eq!(
        refused(with_actions(
            json!({"Loop": {"type": "Foreach", "foreach": "@body('x')", "actions": {}}})
        )),
        "actions.Loop.type: 'Foreach' is not a valid action type; use 'OpenApiConnection', 'If', 'Compose', 'Http', 'Terminate' and 'RunDesktopFlow'"
    );
    assert_eq!(
        refused(with_actions(json!({"A": {"type": "Compose", "inputz": 1}}))),
        "actions.A: An action needs the property 'inputs'"
    );
    assert_eq!(
        refused(with_actions(
            json!({"A": {"type": "Compose", "inputs": 1, "runtimeConfiguration": {}}})
        )),
        "actions.A.runtimeConfiguration: unknown property 'runtimeConfiguration' in an action; the known ones are 'description', 'inputs', 'metadata', 'runAfter' and 'type'"
    );
    assert_eq!(
        refused(with_actions(
            json!({"A": {"type": "Compose", "inputs": 1, "runAftr": {}}})
        )),
        "actions.A.runAftr: unknown property 'runAftr' in an action (did you mean 'runAfter'?)"
    );
    let mut flow = seed_002();
    flow["outputs"] = json!({"x": 1});
    assert_eq!(
        refused(flow),
        "outputs: definition outputs are not supported; leave 'outputs' empty ({})"
    );
    let mut flow = seed_002();
    flow["staticResults"] = json!({});
    assert!(
        refused(flow)
            .starts_with("staticResults: unknown property 'staticResults' in a flow definition")
    );
    let mut flow = seed_002();
    flow["parameters"]["n"] = json!({"type": "Int", "defaultValue": "seven"});
    assert_eq!(
        refused(flow),
        "parameters.n.defaultValue: the default value is a string, which a Int parameter cannot hold"
    );
}

#[test]
fn dataverse_operations_take_their_own_parameters() {
    let action = |operation: &str, parameters: Value| {
        with_actions(json!({"Op": {"type": "OpenApiConnection", "inputs": {
            "host": dataverse_host(operation), "parameters": parameters
        }}}))
    };
    let list = FlowDefinition::parse(&action(
        "ListRecords",
        json!({"entityName": "accounts", "$filter": "name eq '@{parameters('p')}'", "$select": "name", "$top": 5, "$orderby": "name desc"}),
    ))
    .unwrap();
    let Some(ActionKind::Dataverse(read)) = list.action("Op").map(|a| &a.kind) else {
        panic!("not a Dataverse action");
    };
    assert_eq!(read.operation, DataverseOperation::ListRecords);
    assert!(read.filter.is_some() && read.top.is_some() && read.order_by.is_some());
    let get = FlowDefinition::parse(&action(
        "GetItem",
        json!({"entityName": "accounts", "recordId": "1", "$select": "name"}),
    ))
    .unwrap();
    assert!(get.action("Op").is_some());
    // The whole-item form is read too.
    let update = FlowDefinition::parse(&action(
        "UpdateRecord",
        json!({"entityName": "accounts", "recordId": "1", "item": {"name": "@parameters('p')"}, "item/city": "Oslo"}),
    ))
    .unwrap();
    let Some(ActionKind::Dataverse(write)) = update.action("Op").map(|a| &a.kind) else {
        panic!("not a Dataverse action");
    };
    assert_eq!(write.item.keys().collect::<Vec<_>>(), ["city", "name"]);

    assert_eq!(
        refused(action("UpdateRecord", json!({"entityName": "accounts"}))),
        "actions.Op.inputs.parameters: UpdateRecord needs 'recordId', the row's id"
    );
    assert_eq!(
        refused(action(
            "CreateRecord",
            json!({"entityName": "accounts", "$filter": "x"})
        )),
        "actions.Op.inputs.parameters.$filter: unknown property '$filter' in CreateRecord's parameters; the known ones are 'entityName' and 'item'"
    );
    assert_eq!(
        refused(action("DeleteRecord", json!({"recordId": "1"}))),
        "actions.Op.inputs.parameters: DeleteRecord's parameters needs the property 'entityName'"
    );
    assert_eq!(
        refused(action("CreateRecordd", json!({"entityName": "accounts"}))),
        "actions.Op.inputs.host.operationId: 'CreateRecordd' is not a valid Dataverse operation (did you mean 'CreateRecord'?); use 'CreateRecord', 'UpdateRecord', 'DeleteRecord', 'GetItem' and 'ListRecords'"
    );
    assert_eq!(
        refused(action(
            "CreateRecord",
            json!({"entityName": "@{parameters('p')}"})
        )),
        "actions.Op.inputs.parameters.entityName: entityName must be written out, not computed by an expression"
    );
    let mut other_api = action("SendEmailV2", json!({}));
    other_api["actions"]["Op"]["inputs"]["host"]["apiId"] =
        json!("/providers/Microsoft.PowerApps/apis/shared_office365");
    assert_eq!(
        refused(other_api),
        "actions.Op.inputs.host.apiId: '/providers/Microsoft.PowerApps/apis/shared_office365' is not a connector Keyway runs: connector actions use Dataverse (shared_commondataserviceforapps) or desktop flows (shared_uiflow)"
    );
    let mut old_style = action("CreateRecord", json!({"entityName": "accounts"}));
    old_style["actions"]["Op"]["inputs"]["host"] =
        json!({"connection": {"name": "@parameters('$connections')['x']['connectionId']"}});
    assert!(refused(old_style).starts_with(
        "actions.Op.inputs.host.connection: name the connection reference with host.connectionName"
    ));
}

#[test]
fn if_conditions_take_expressions_or_condition_objects() {
    let check = |expression: Value| {
        with_actions(json!({"Check": {"type": "If", "expression": expression, "actions": {}}}))
    };
    for expression in [
        json!("@equals(parameters('p'), 'x')"),
        json!(true),
        json!({"or": [{"contains": ["@parameters('p')", "x"]}, {"greater": [2, 1]}]}),
    ] {
        let flow = FlowDefinition::parse(&check(expression)).unwrap();
        let ActionKind::If(branches) = &flow.action("Check").unwrap().kind else {
            panic!("not an If");
        };
        let mut run = RecordedRun::new(json!({}), datetime!(2025-01-01 0:00 UTC));
        run.parameters = flow.default_parameters();
        assert!(branches.condition.evaluate(&run).unwrap());
        assert!(branches.actions.actions.is_empty() && branches.else_actions.actions.is_empty());
    }
    assert_eq!(
        refused(check(json!("plain text"))),
        "actions.Check.expression: a condition must be an expression starting with @ (such as @equals(…)) or a condition object"
    );
    assert_eq!(
        refused(check(json!({"equal": ["a", "b"]}))),
        "actions.Check.expression.equal: unknown condition operator 'equal'; use 'and', 'or', 'not', 'equals', 'contains', 'startsWith', 'endsWith', 'greater', 'greaterOrEquals', 'less' and 'lessOrEquals'"
    );
    assert_eq!(
        refused(check(json!({"equals": ["a"]}))),
        "actions.Check.expression.equals: 'equals' compares two values, 1 given"
    );
    assert_eq!(
        refused(check(json!({"and": []}))),
        "actions.Check.expression.and: 'and' needs at least one condition"
    );
    let flow = FlowDefinition::parse(&check(json!("@parameters('p')"))).unwrap();
    let ActionKind::If(branches) = &flow.action("Check").unwrap().kind else {
        panic!("not an If");
    };
    let mut run = RecordedRun::new(json!({}), datetime!(2025-01-01 0:00 UTC));
    run.parameters = flow.default_parameters();
    assert_eq!(
        branches.condition.evaluate(&run).unwrap_err().message,
        "an If condition must be true or false, and this is a string"
    );
}

#[test]
fn http_takes_its_token_from_a_connection() {
    let http = |inputs: Value| with_actions(json!({"Call": {"type": "Http", "inputs": inputs}}));
    let flow = FlowDefinition::parse(&http(json!({
        "method": "post",
        "uri": "https://api.example.com/orders/@{parameters('p')}",
        "headers": {"Content-Type": "application/json"},
        "queries": {"api-version": "1"},
        "body": {"id": "@parameters('p')"},
        "authentication": {"type": "Connection", "connectionName": "pfx_api", "audience": "api://orders"}
    })))
    .unwrap();
    let ActionKind::Http(call) = &flow.action("Call").unwrap().kind else {
        panic!("not Http");
    };
    assert_eq!(call.method, "POST");
    assert_eq!(
        call.authentication,
        Some(HttpAuthentication {
            connection_name: "pfx_api".into(),
            audience: Some("api://orders".into())
        })
    );
    assert!(flow.connection_names().contains("pfx_api"));
    assert_eq!(
        refused(http(
            json!({"method": "GET", "uri": "https://x", "headers": {"Authorization": "Bearer abc"}})
        )),
        "actions.Call.inputs.headers: an Authorization header would put a secret in the definition: use authentication {\"type\": \"Connection\", \"connectionName\": …}"
    );
    assert!(refused(http(json!({"method": "GET", "uri": "https://x", "authentication": {"type": "ActiveDirectoryOAuth", "secret": "s"}})))
        .starts_with("actions.Call.inputs.authentication.type: the authentication type 'ActiveDirectoryOAuth' would keep a secret in the definition"));
    assert_eq!(
        refused(http(json!({"method": "FETCH", "uri": "https://x"}))),
        "actions.Call.inputs.method: 'FETCH' is not a valid HTTP method (did you mean 'PATCH'?); use 'GET', 'POST', 'PUT', 'PATCH' and 'DELETE'"
    );
}

#[test]
fn terminate_ends_a_run_with_a_status() {
    let terminate =
        |inputs: Value| with_actions(json!({"End": {"type": "Terminate", "inputs": inputs}}));
    let flow = FlowDefinition::parse(&terminate(json!({"runStatus": "Cancelled"}))).unwrap();
    assert!(
        matches!(&flow.action("End").unwrap().kind, ActionKind::Terminate(t) if t.status == TerminateStatus::Cancelled)
    );
    assert_eq!(
        refused(terminate(
            json!({"runStatus": "Succeeded", "runError": {"code": "x"}})
        )),
        "actions.End.inputs.runError: runError goes with runStatus Failed only"
    );
}

#[test]
fn desktop_flow_runs_validate_and_need_machines() {
    let reserved = with_actions(json!({"Run_desktop": {"type": "RunDesktopFlow", "inputs": {
        "host": {"connectionName": "pfx_uiflow"},
        "parameters": {"desktopFlowId": "0b0f6c2e-0000-0000-0000-000000000001", "runMode": "unattended",
                       "runPriority": "high", "timeout": 3600, "item/Invoice": "@parameters('p')"}
    }}}));
    let flow = FlowDefinition::parse(&reserved).unwrap();
    let ActionKind::RunDesktopFlow(run) = &flow.action("Run_desktop").unwrap().kind else {
        panic!("not a desktop flow run");
    };
    assert_eq!(run.run_mode, DesktopRunMode::Unattended);
    assert_eq!(run.run_priority, DesktopRunPriority::High);
    assert_eq!(run.inputs.keys().collect::<Vec<_>>(), ["Invoice"]);
    assert!(flow.required_features().contains(&Feature::Machines));
    assert!(flow.connection_names().contains("pfx_uiflow"));

    // An export's OpenApiConnection on shared_uiflow reads as the same action.
    let exported = with_actions(
        json!({"Run_desktop_flow": {"type": "OpenApiConnection", "inputs": {
            "host": {"apiId": "/providers/Microsoft.PowerApps/apis/shared_uiflow", "connectionName": "shared_uiflow", "operationId": "RunUIFlow_V2"},
            "parameters": {"uiFlowId": "0b0f6c2e-0000-0000-0000-000000000001", "runMode": "attended", "uiFlowType": "desktopFlow"},
            "authentication": "@parameters('p')"
        }}}),
    );
    let flow = FlowDefinition::parse(&exported).unwrap();
    assert!(
        matches!(&flow.action("Run_desktop_flow").unwrap().kind, ActionKind::RunDesktopFlow(r) if r.run_mode == DesktopRunMode::Attended)
    );
    assert!(flow.required_features().contains(&Feature::Machines));

    let no_mode = with_actions(json!({"R": {"type": "RunDesktopFlow", "inputs": {
        "host": {"connectionName": "c", "operationId": "RunUIFlow_V2"}, "parameters": {"desktopFlowId": "x"}
    }}}));
    assert_eq!(
        refused(no_mode),
        "actions.R.inputs.parameters: a desktop flow run needs 'runMode': attended or unattended"
    );
}

#[test]
fn flow_state_codes_follow_dataverse() {
    assert_eq!(FlowState::Off.state_code(), 0);
    assert_eq!(FlowState::On.state_code(), 1);
    assert_eq!(serde_json::to_value(FlowState::On).unwrap(), json!("on"));
}

#[test]
fn the_documented_example_is_a_valid_flow() {
    let docs = include_str!("../../../../docs/flows.md");
    let start = docs.find("```json\n").unwrap() + "```json\n".len();
    let end = start + docs[start..].find("```").unwrap();
    let flow = FlowDefinition::from_json(&docs[start..end]).unwrap();
    assert_eq!(flow.execution_order(), ["Add_a_new_row", "Has_revenue"]);
    assert!(flow.action("Update_a_row").is_some());
}

#[test]
fn an_action_runs_when_its_run_after_statuses_hold_and_is_skipped_otherwise() {
    let flow = FlowDefinition::parse(&with_actions(json!({
        "A": compose(json!({}), json!(1)),
        "B": compose(json!({}), json!(1)),
        "Handler": compose(json!({"A": ["Failed", "TimedOut"], "B": ["Succeeded", "Skipped"]}), json!(1))
    })))
    .unwrap();
    let handler = flow.action("Handler").unwrap();
    let status = |a: Option<RunStatus>, b: Option<RunStatus>| {
        move |name: &str| match name {
            "A" => a,
            "B" => b,
            _ => None,
        }
    };
    use RunStatus::{Failed, Skipped, Succeeded};
    assert_eq!(handler.decide(status(None, None)), RunDecision::Wait);
    assert_eq!(
        handler.decide(status(Some(Failed), None)),
        RunDecision::Wait
    );
    assert_eq!(
        handler.decide(status(Some(Failed), Some(Skipped))),
        RunDecision::Run
    );
    assert_eq!(
        handler.decide(status(Some(Succeeded), None)),
        RunDecision::Skip
    );
    assert_eq!(
        handler.decide(status(Some(Failed), Some(Failed))),
        RunDecision::Skip
    );
    assert_eq!(flow.action("A").unwrap().decide(|_| None), RunDecision::Run);
}

#[test]
fn a_parameter_with_a_schema_name_stands_for_an_environment_variable() {
    let flow = FlowDefinition::parse(&seed_002()).unwrap();
    let vars: Vec<_> = flow
        .environment_variables()
        .map(|(name, p)| (name, p.schema_name.as_deref(), p.kind))
        .collect();
    assert_eq!(
        vars,
        [(
            "pfx_ContactSource",
            Some("pfx_ContactSource"),
            ParameterType::String
        )]
    );
    let mut def = seed_002();
    def["parameters"]["pfx_ContactSource"]["metadata"]["schemaName"] = json!(7);
    assert_eq!(
        refused(def),
        "parameters.pfx_ContactSource.metadata.schemaName: schemaName names an environment variable and must be its schema name, found a number"
    );
}
