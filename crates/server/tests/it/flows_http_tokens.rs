//! An Http action authenticated with a connection sends the connection's token only where it is
//! valid: to its resource's own origin or to this server. A flow calling another host with a
//! token for this server's environment fails `TokenAudienceMismatch`, and the host sees nothing.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::flows::Fx;
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(connection_tokens_go_only_to_their_resource);

/// A server answering 200 `{"ok": true}` and keeping each request's head.
async fn capturing_server() -> (String, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                kept.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase());
                let body = "{\"ok\":true}";
                let _ = sock
                    .write_all(format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes())
                    .await;
            });
        }
    });
    (format!("http://127.0.0.1:{}", addr.port()), seen)
}

fn calling(uri: &str, authentication: Value) -> Value {
    json!({
        "triggers": {"manual": {"type": "Request", "kind": "Button"}},
        "actions": {"Call": {"type": "Http", "inputs": {"method": "GET", "uri": uri, "authentication": authentication}}},
    })
}

async fn run_once(fx: &Fx, flow: &str) -> Value {
    fx.start(flow).await;
    fx.last_run(flow, 1).await
}

async fn connection_tokens_go_only_to_their_resource(backend: Backend) {
    let fx = Fx::writer(backend).await;
    let (elsewhere, seen) = capturing_server().await;
    // The connection's own resource is this environment: its token may not go elsewhere.
    let leak = fx
        .flow(
            "sends the token elsewhere",
            calling(
                &format!("{elsewhere}/collect"),
                json!({"type": "Connection", "connectionName": "sp-dataverse"}),
            ),
        )
        .await;
    let run = run_once(&fx, &leak).await;
    assert_eq!(run["status"], "Failed", "{run}");
    assert_eq!(run["error"]["code"], "TokenAudienceMismatch", "{run}");
    assert!(
        error_message(&run).contains(&elsewhere),
        "the message names the host: {run}"
    );
    assert!(seen.lock().unwrap().is_empty(), "the host got no request");
    // Nor a token for this server's Graph or Power Platform audiences.
    for audience in [
        "https://graph.microsoft.com",
        "https://api.powerplatform.com",
    ] {
        let flow = fx
            .flow(
                &format!("sends a {audience} token elsewhere"),
                calling(
                    &elsewhere,
                    json!({"type": "Connection", "connectionName": "sp-dataverse", "audience": audience}),
                ),
            )
            .await;
        let run = run_once(&fx, &flow).await;
        assert_eq!(run["error"]["code"], "TokenAudienceMismatch", "{run}");
    }
    assert!(seen.lock().unwrap().is_empty(), "the host got no request");
    // A token for that host itself (an API registered with its URL) goes to it.
    fx.app
        .create_app("orders", json!({"identifierUris": [elsewhere]}))
        .await;
    let own = fx
        .flow(
            "calls its audience",
            calling(
                &format!("{elsewhere}/orders"),
                json!({"type": "Connection", "connectionName": "sp-dataverse", "audience": elsewhere}),
            ),
        )
        .await;
    let run = run_once(&fx, &own).await;
    assert_eq!(run["status"], "Succeeded", "{run}");
    let heads = seen.lock().unwrap().clone();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(heads[0].contains("authorization: bearer "), "{heads:?}");
    // And the environment's token to the environment (this server).
    let whoami = fx
        .flow(
            "calls the environment",
            calling(
                &format!("{}/WhoAmI", fx.api),
                json!({"type": "Connection", "connectionName": "sp-dataverse"}),
            ),
        )
        .await;
    let run = run_once(&fx, &whoami).await;
    assert_eq!(run["status"], "Succeeded", "{run}");
    assert!(
        run["actions"][0]["outputs"]["body"]["UserId"].is_string(),
        "{run}"
    );
}
