//! Cloud flows through the real binary: seed 002 set up with the CLI (app, secret, application
//! user, connection, `keyway flow create`), a burst of trigger events, `kill -9` in the middle of
//! it (runs caught midway), a restart on the same data directory — and every committed row ran its
//! flow exactly once, the cut runs resumed when their lease ended.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use common::{
    account_to_contact, app_user, create_flow, json, keyway, ok, serve, service_principal, web,
};

async fn count(http: &reqwest::Client, api: &str, token: &str, query: &str) -> Vec<Value> {
    let r: Value = http
        .get(format!("{api}/{query}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["value"].as_array().unwrap().clone()
}

/// A plain-HTTP server on this machine that answers every request after `delay`.
fn slow_server(delay: Duration) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut sock in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf);
                // A plain thread, not an async runtime: sleeping blocks nothing else.
                #[allow(clippy::disallowed_methods)]
                std::thread::sleep(delay);
                let _ = sock.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                );
            });
        }
    });
    url
}

#[test]
fn a_burst_of_trigger_events_survives_kill_9_and_each_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]);
    let profile = dir.path().join("admin.json");

    json(&profile, &["env", "create", "dev"]);
    let sp = service_principal(
        &profile,
        "D365-App-Registration",
        &dir.path().join("sp.secret"),
    );
    app_user(&profile, "dev", &sp.app_id, "System Administrator");
    sp.connection(&profile, "dev", "sp-dataverse");
    // Each run first waits on a slow call, so the kill finds runs in the middle.
    let slow = slow_server(Duration::from_millis(300));
    let mut definition = account_to_contact("sp-dataverse");
    definition["actions"]["Wait"] =
        json!({"type": "Http", "inputs": {"method": "GET", "uri": slow}});
    definition["actions"]["Add_a_new_row"]["runAfter"] = json!({"Wait": ["Succeeded"]});
    let definition = json!({"properties": {"definition": definition}});
    let flow = create_flow(
        &profile,
        "dev",
        "Account to contact",
        &definition,
        &dir.path().join("flow.json"),
    );
    assert_eq!(flow["state"], "on", "{flow}");
    let listed = ok(&profile, &["flow", "list", "dev"]);
    assert!(
        listed.contains("Account to contact") && listed.contains("dataverse"),
        "{listed}"
    );

    // The burst: 80 accounts at once; kill -9 once a third are acknowledged...
    let (http, api, token) = web(&profile, "dev");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let acknowledged = rt.block_on(async {
        let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..80 {
            let (http, api, token, done) = (http.clone(), api.clone(), token.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                let r = http
                    .post(format!("{api}/accounts"))
                    .bearer_auth(&token)
                    .json(&json!({"name": format!("Burst {i}")}))
                    .send()
                    .await;
                let ok = r.is_ok_and(|r| r.status().as_u16() == 204);
                if ok {
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                ok
            }));
        }
        let start = Instant::now();
        while done.load(std::sync::atomic::Ordering::SeqCst) < 27
            && start.elapsed() < Duration::from_secs(30)
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tasks
    });
    // ... and once a run is in the middle of its actions.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !json(
        &profile,
        &["flow", "runs", "dev", "Account to contact", "--top", "500"],
    )
    .as_array()
    .unwrap()
    .iter()
    .any(|r| r["status"] == "Running")
    {
        assert!(Instant::now() < deadline, "no run started");
    }
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL, mid-burst
    server.child.wait().unwrap();
    let acked = rt.block_on(async {
        let mut n = 0;
        for t in acknowledged {
            n += usize::from(t.await.unwrap());
        }
        n
    });
    assert!(
        acked >= 27,
        "{acked} creates were acknowledged before the kill"
    );

    // Restart on the same data directory; the runs the dead process held resume after their lease.
    let _server = serve(dir.path(), &[]);
    let (http, api, token) = web(&profile, "dev");
    let deadline = Instant::now() + Duration::from_secs(90);
    let runs = loop {
        let runs = json(
            &profile,
            &["flow", "runs", "dev", "Account to contact", "--top", "500"],
        );
        let runs = runs.as_array().unwrap().clone();
        let ended = runs
            .iter()
            .all(|r| !matches!(r["status"].as_str(), Some("Queued" | "Running")));
        if ended && runs.len() >= acked {
            break runs;
        }
        assert!(Instant::now() < deadline, "runs did not end: {runs:?}");
        rt.block_on(async { tokio::time::sleep(Duration::from_millis(250)).await });
    };
    let (accounts, contacts) = rt.block_on(async {
        (
            count(&http, &api, &token, "accounts?$select=accountid,name").await,
            count(
                &http,
                &api,
                &token,
                "contacts?$select=contactid,_parentcustomerid_value",
            )
            .await,
        )
    });
    assert!(
        accounts.len() >= acked,
        "every acknowledged create is there"
    );
    assert_eq!(
        runs.len(),
        accounts.len(),
        "one run per committed row: {runs:?}"
    );
    assert!(runs.iter().all(|r| r["status"] == "Succeeded"), "{runs:?}");
    assert_eq!(contacts.len(), accounts.len(), "one contact per row");
    let mut parents: Vec<&str> = contacts
        .iter()
        .map(|c| c["_parentcustomerid_value"].as_str().unwrap())
        .collect();
    parents.sort();
    parents.dedup();
    assert_eq!(
        parents.len(),
        accounts.len(),
        "each row's contact made once"
    );
    let resumed = runs
        .iter()
        .filter(|r| r["attempt"].as_i64() > Some(1))
        .count();
    assert!(
        resumed > 0,
        "some run was cut by the kill and resumed: {runs:?}"
    );
    eprintln!(
        "{} rows committed ({acked} acknowledged before kill -9), {} runs, {resumed} resumed after the restart",
        accounts.len(),
        runs.len()
    );
}

#[test]
fn run_only_users_are_added_listed_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let _server = serve(dir.path(), &[]);
    let profile = dir.path().join("admin.json");
    json(&profile, &["env", "create", "dev"]);
    let runner = service_principal(&profile, "runner", &dir.path().join("runner.secret"));
    let user = app_user(&profile, "dev", &runner.app_id, "Basic User");
    let user = user["systemuserid"].as_str().unwrap().to_string();
    // The runner's own profile: the same server and CA, the runner's credentials.
    let mut p: Value = serde_json::from_slice(&std::fs::read(&profile).unwrap()).unwrap();
    p["clientId"] = json!(runner.app_id);
    p["clientSecret"] = json!(std::fs::read_to_string(&runner.secret_file).unwrap());
    let as_runner = dir.path().join("runner.json");
    std::fs::write(&as_runner, p.to_string()).unwrap();
    // A slow call, so that a cancel lands while the run is under way.
    let definition = json!({
        "triggers": {"manual": {"type": "Request", "kind": "Button", "inputs": {"schema": {"type": "object"}}}},
        "actions": {"Call": {"type": "Http", "inputs": {"method": "GET", "uri": slow_server(Duration::from_secs(3))}}},
    });
    create_flow(
        &profile,
        "dev",
        "Button",
        &definition,
        &dir.path().join("button.json"),
    );
    // Not theirs to run yet: not found by name.
    let (success, _, err) = keyway(&as_runner, &["flow", "run", "dev", "Button"]);
    assert!(!success && err.contains("no flow named 'Button'"), "{err}");
    let g = json(
        &profile,
        &[
            "flow",
            "run-only",
            "add",
            "dev",
            "Button",
            "--system-user",
            &user,
        ],
    );
    assert_eq!(g["systemUserId"], user.as_str(), "{g}");
    let listed = ok(&profile, &["flow", "run-only", "list", "dev", "Button"]);
    assert!(
        listed.contains(&user) && listed.contains("systemuser"),
        "{listed}"
    );

    // The runner lists the flow (without its definition), runs it by name and cancels the run.
    let flows = json(&as_runner, &["flow", "list", "dev"]);
    assert_eq!(flows.as_array().unwrap().len(), 1, "{flows}");
    assert_eq!(flows[0]["name"], "Button", "{flows}");
    assert_eq!(flows[0]["access"], "runOnly", "{flows}");
    assert!(flows[0].get("definition").is_none(), "{flows}");
    let table = ok(&as_runner, &["flow", "list", "dev"]);
    assert!(
        table.contains("ACCESS") && table.contains("runOnly"),
        "{table}"
    );
    let shown = ok(&as_runner, &["flow", "show", "dev", "Button"]);
    assert!(shown.contains("runOnly"), "{shown}");
    let mine = json(&as_runner, &["flow", "run", "dev", "Button"]);
    let mine = mine["id"].as_str().unwrap().to_string();
    let c = json(&as_runner, &["flow", "cancel", "dev", "Button", &mine]);
    assert_eq!(c["status"], "Cancelled", "{c}");
    let runs = json(&as_runner, &["flow", "runs", "dev", "Button"]);
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
    assert_eq!(runs[0]["id"], mine.as_str(), "{runs}");
    // The owner's run is not the runner's to cancel; the owner cancels it.
    let theirs = json(&profile, &["flow", "run", "dev", "Button"]);
    let theirs = theirs["id"].as_str().unwrap().to_string();
    let (success, _, err) = keyway(&as_runner, &["flow", "cancel", "dev", "Button", &theirs]);
    assert!(
        !success && err.contains("0x80040217") && err.contains("runs they started"),
        "{err}"
    );
    let c = json(&profile, &["flow", "cancel", "dev", "Button", &theirs]);
    assert_eq!(c["status"], "Cancelled", "{c}");

    // --connection names connections the flow takes from its runner; this one takes none.
    let (success, _, err) = keyway(
        &profile,
        &["flow", "run", "dev", "Button", "--connection", "dv=mine"],
    );
    assert!(!success && err.contains("does not take 'dv'"), "{err}");
    ok(
        &profile,
        &["flow", "run-only", "remove", "dev", "Button", &user],
    );
    let listed = json(&profile, &["flow", "run-only", "list", "dev", "Button"]);
    assert_eq!(listed, json!([]), "{listed}");
    assert_eq!(json(&as_runner, &["flow", "list", "dev"]), json!([]));
}
