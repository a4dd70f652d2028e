//! Recurrence triggers end to end over HTTPS, on the test server's manual clock (no test waits
//! for real seconds to pass): a flow fires once per occurrence with a Compose and a Dataverse
//! CreateRecord, missed occurrences run only the latest, turning it off stops the ticks and turning
//! it on counts again from then; a future startTime waits; a time zone other than UTC is refused;
//! two server processes on one PostgreSQL queue each occurrence once.

use std::time::Duration as Wait;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use keyway_core::Clock;

use crate::flows::{DV, Fx, ended_runs, second_node};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    recurrence_fires_each_occurrence_until_turned_off,
    a_future_start_time_is_the_first_occurrence,
    time_zones_other_than_utc_are_refused
);

/// Every `seconds` seconds: compose the occurrence's time, then add a contact named for it.
fn every(seconds: u32, extra: Value) -> Value {
    let mut recurrence = json!({"frequency": "Second", "interval": seconds});
    for (k, v) in extra.as_object().unwrap() {
        recurrence[k] = v.clone();
    }
    json!({
        "triggers": {"Recurrence": {"type": "Recurrence", "recurrence": recurrence}},
        "actions": {
            "Compose": {"type": "Compose", "runAfter": {}, "inputs": "@triggerOutputs()?['body/scheduledTime']"},
            "Add_a_new_row": {
                "type": "OpenApiConnection",
                "runAfter": {"Compose": ["Succeeded"]},
                "inputs": {
                    "host": {"connectionName": "sp-dataverse", "operationId": "CreateRecord", "apiId": format!("/providers/Microsoft.PowerApps/apis/{DV}")},
                    "parameters": {"entityName": "contacts", "item/lastname": "tick @{outputs('Compose')}"},
                },
            },
        },
    })
}

fn at(text: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(text.as_str().unwrap(), &Rfc3339).unwrap()
}

/// The run's occurrence (`triggerOutputs().body.scheduledTime`).
fn scheduled(run: &Value) -> OffsetDateTime {
    at(&run["trigger"]["outputs"]["body"]["scheduledTime"])
}

/// Wait (generously) until the flow has `n` runs, all ended; oldest first.
async fn runs(fx: &Fx, flow: &str, n: usize) -> Vec<Value> {
    let mut list = ended_runs(&fx.app, &fx.flows(), flow, n, Wait::from_secs(60)).await;
    list.sort_by_key(scheduled);
    list
}

/// Several scheduler polls (250 ms each) with the clock standing still: nothing new is due.
async fn settle() {
    tokio::time::sleep(Wait::from_millis(1200)).await;
}

async fn recurrence_fires_each_occurrence_until_turned_off(backend: Backend) {
    let fx = Fx::writer(backend).await;
    let clock = fx.app.clock.clone();
    let flow = fx.flow("Every five seconds", every(5, json!({}))).await;
    let (_, saved) = fx
        .app
        .graph(Method::GET, &format!("{}/{flow}", fx.flows()), None)
        .await;
    // Without a startTime it counts from when it was turned on (to the second), and fires then.
    let on = at(&saved["createdDateTime"]).replace_nanosecond(0).unwrap();
    let first = runs(&fx, &flow, 1).await;
    assert_eq!(scheduled(&first[0]), on, "{}", first[0]);

    // Each occurrence once, when the clock reaches it; not before.
    clock.advance(Duration::seconds(5));
    runs(&fx, &flow, 2).await;
    clock.advance(Duration::seconds(4));
    settle().await;
    runs(&fx, &flow, 2).await;
    clock.advance(Duration::seconds(1));
    let list = runs(&fx, &flow, 3).await;
    let times: Vec<_> = list.iter().map(scheduled).collect();
    assert_eq!(times, [0, 5, 10].map(|s| on + Duration::seconds(s)));

    // Down for a minute: of the twelve occurrences missed, only the latest runs; then on schedule.
    clock.advance(Duration::seconds(64));
    let list = runs(&fx, &flow, 4).await;
    assert_eq!(scheduled(&list[3]), on + Duration::seconds(70));
    settle().await;
    runs(&fx, &flow, 4).await;
    clock.advance(Duration::seconds(1));
    let list = runs(&fx, &flow, 5).await;
    assert_eq!(scheduled(&list[4]), on + Duration::seconds(75));

    // Each run composed its occurrence and made its contact, as the service principal.
    for run in &list {
        assert_eq!(run["status"], "Succeeded", "{run}");
        assert_eq!(run["attempt"], 1, "{run}");
        let detail = fx.run(&flow, run).await;
        let actions = detail["actions"].as_array().unwrap();
        assert_eq!(
            actions[0]["outputs"], run["trigger"]["outputs"]["body"]["scheduledTime"],
            "{detail}"
        );
        assert_eq!(actions[1]["status"], "Succeeded", "{detail}");
        assert_eq!(actions[1]["identity"]["systemUserId"], fx.sp_user.as_str());
        assert_eq!(run["trigger"]["outputs"]["headers"], json!({}));
    }
    let mut ids: Vec<&str> = list.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "one run id per occurrence");

    // Off: no more ticks, however long.
    fx.turn(&flow, false).await;
    clock.advance(Duration::seconds(30));
    settle().await;
    runs(&fx, &flow, 5).await;
    // On again: counting starts over from now, firing at once.
    let back_on = clock.now();
    fx.turn(&flow, true).await;
    let list = runs(&fx, &flow, 6).await;
    assert_eq!(scheduled(&list[5]), back_on.replace_nanosecond(0).unwrap());
    clock.advance(Duration::seconds(5));
    let list = runs(&fx, &flow, 7).await;
    assert_eq!(
        scheduled(&list[6]),
        back_on.replace_nanosecond(0).unwrap() + Duration::seconds(5)
    );

    let contacts = fx
        .get("contacts?$select=lastname&$filter=startswith(lastname,'tick ')")
        .await;
    let mut names: Vec<String> = contacts["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["lastname"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    let mut expected: Vec<String> = list
        .iter()
        .map(|r| {
            format!(
                "tick {}",
                r["trigger"]["outputs"]["body"]["scheduledTime"]
                    .as_str()
                    .unwrap()
            )
        })
        .collect();
    expected.sort();
    assert_eq!(names, expected, "one contact per occurrence");
    fx.app.stop().await;
}

async fn a_future_start_time_is_the_first_occurrence(backend: Backend) {
    let fx = Fx::writer(backend).await;
    let clock = fx.app.clock.clone();
    let start = clock.now().replace_nanosecond(0).unwrap() + Duration::seconds(30);
    let flow = fx
        .flow(
            "From a start time",
            every(
                10,
                json!({"startTime": start.format(&Rfc3339).unwrap(), "timeZone": "UTC"}),
            ),
        )
        .await;
    settle().await;
    runs(&fx, &flow, 0).await;
    clock.advance(Duration::seconds(29));
    settle().await;
    runs(&fx, &flow, 0).await;
    clock.advance(Duration::seconds(1));
    let list = runs(&fx, &flow, 1).await;
    assert_eq!(scheduled(&list[0]), start);
    clock.advance(Duration::seconds(10));
    let list = runs(&fx, &flow, 2).await;
    assert_eq!(scheduled(&list[1]), start + Duration::seconds(10));
    fx.app.stop().await;
}

async fn time_zones_other_than_utc_are_refused(backend: Backend) {
    let fx = Fx::writer(backend).await;
    let flows = fx.flows();
    let save = |name: &str, definition: Value| {
        fx.app.graph(
            Method::POST,
            &flows,
            Some(json!({"name": name, "definition": definition})),
        )
    };
    let (s, e) = save(
        "Pacific",
        every(5, json!({"timeZone": "Pacific Standard Time"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["code"], "InvalidFlowDefinition", "{e}");
    assert_eq!(
        e["error"]["path"],
        "triggers.Recurrence.recurrence.timeZone"
    );
    assert!(error_message(&e).contains("UTC only"), "{e}");
    // A schedule where it does not apply (hours with a Second frequency).
    let (s, e) = save("Hours", every(5, json!({"schedule": {"hours": [9]}}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(
        e["error"]["path"],
        "triggers.Recurrence.recurrence.schedule"
    );
    // Nothing was saved; nothing runs.
    let (s, list) = fx.app.graph(Method::GET, &fx.flows(), None).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list["value"].as_array().unwrap().len(), 0, "{list}");
    // Replacing a saved flow's definition with a time zone is refused too, and changes nothing.
    let flow = fx.flow("Utc", every(5, json!({"timeZone": "UTC"}))).await;
    runs(&fx, &flow, 1).await;
    let (s, e) = fx
        .app
        .graph(
            Method::PUT,
            &format!("{}/{flow}", fx.flows()),
            Some(json!({"definition": every(5, json!({"timeZone": "W. Europe Standard Time"}))})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (_, saved) = fx
        .app
        .graph(Method::GET, &format!("{}/{flow}", fx.flows()), None)
        .await;
    assert_eq!(
        saved["definition"]["triggers"]["Recurrence"]["recurrence"]["timeZone"],
        "UTC"
    );
    fx.app.stop().await;
}

/// Two server processes on one PostgreSQL and one clock: both see every occurrence due, and
/// each is queued once, with the run id derived from the flow and the occurrence.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_on_one_postgres_fire_each_occurrence_once() {
    use std::sync::Arc;
    let fx = Fx::writer(Backend::Postgres).await;
    let clock = fx.app.clock.clone();
    let b_handle = second_node(&fx.app, Arc::new(clock.clone())).await;

    let flow = fx.flow("Every second", every(1, json!({}))).await;
    runs(&fx, &flow, 1).await;
    let ticks = 8;
    for n in 1..=ticks {
        clock.advance(Duration::seconds(1));
        runs(&fx, &flow, n + 1).await;
    }
    // Both processes kept polling: still one run per occurrence.
    settle().await;
    let list = runs(&fx, &flow, ticks + 1).await;
    let first = scheduled(&list[0]);
    let flow_id = uuid::Uuid::parse_str(&flow).unwrap();
    for (i, run) in list.iter().enumerate() {
        let occurrence = first + Duration::seconds(i as i64);
        assert_eq!(scheduled(run), occurrence, "{run}");
        assert_eq!(run["status"], "Succeeded", "{run}");
        let micros = (occurrence.unix_timestamp_nanos() / 1000) as i64;
        assert_eq!(
            run["id"].as_str().unwrap(),
            uuid::Uuid::new_v5(&flow_id, &micros.to_be_bytes()).to_string(),
            "the run id is the occurrence's"
        );
    }
    b_handle.shutdown();
    fx.app.stop().await;
}
