//! One story run on both backends: what the directory store promises, whichever database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keyway_core::directory::*;
use keyway_store::{AssertionUse, DirectoryStore, SqlStore, StoredSigningKey, TenantBirth};
use std::sync::Arc;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const NOW: OffsetDateTime = datetime!(2026-11-23 12:00 UTC);

fn birth() -> TenantBirth {
    let tid = Uuid::new_v4();
    let app = Application {
        id: Uuid::new_v4(),
        tenant_id: tid,
        app_id: Uuid::new_v4(),
        display_name: "admin".into(),
        sign_in_audience: "AzureADMyOrg".into(),
        identifier_uris: vec![],
        is_fallback_public_client: false,
        created_at: NOW,
    };
    let graph = ServicePrincipal {
        id: Uuid::new_v4(),
        tenant_id: tid,
        app_id: keyway_core::graph_roles::GRAPH_APP_ID,
        display_name: "Microsoft Graph".into(),
        account_enabled: true,
        app_owner_organization_id: None,
        created_at: NOW,
    };
    let admin_sp = ServicePrincipal {
        id: Uuid::new_v4(),
        app_id: app.app_id,
        display_name: "admin".into(),
        app_owner_organization_id: Some(tid),
        ..graph.clone()
    };
    TenantBirth {
        tenant: Tenant {
            id: tid,
            display_name: "Contoso".into(),
            domains: vec![format!("c{}.example", tid.simple())],
            is_system: false,
            created_at: NOW,
        },
        signing_key: StoredSigningKey {
            kid: format!("k-{}", Uuid::new_v4()),
            tenant_id: tid,
            alg: "ES256".into(),
            sealed_private_key: vec![1, 2, 3],
            public_x: "x".into(),
            public_y: "y".into(),
            created_at: NOW,
            retired_at: None,
        },
        admin_secret: PasswordCredential {
            key_id: Uuid::new_v4(),
            application_id: app.id,
            display_name: Some("bootstrap".into()),
            hint: "abc".into(),
            start: NOW,
            end: NOW + Duration::days(180),
            secret_hash: vec![9; 32],
        },
        admin_roles: vec![AppRoleAssignment {
            id: Uuid::new_v4(),
            tenant_id: tid,
            principal_id: admin_sp.id,
            resource_id: graph.id,
            app_role_id: keyway_core::graph_roles::DIRECTORY_READWRITE_ALL.id,
            created_at: NOW,
        }],
        admin_app: app,
        admin_sp,
        graph,
    }
}

async fn story(store: Arc<SqlStore>) {
    let b = birth();
    let tid = b.tenant.id;
    store.tenant_create(&b).await.unwrap();
    assert_eq!(store.tenant_get(tid).await.unwrap().unwrap(), b.tenant);
    let by_domain = store
        .tenant_by_domain(&b.tenant.domains[0].to_uppercase())
        .await
        .unwrap();
    assert_eq!(by_domain.unwrap().id, tid);
    assert!(
        store
            .tenant_list()
            .await
            .unwrap()
            .iter()
            .any(|t| t.id == tid)
    );

    // The token path reads the client whole.
    let rec = store
        .client_record(tid, b.admin_app.app_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.application, b.admin_app);
    assert_eq!(rec.passwords.len(), 1);
    assert_eq!(rec.passwords[0].secret_hash, vec![9; 32]);
    assert!(rec.service_principal.unwrap().account_enabled);
    let roles = store
        .app_role_assignments(tid, b.admin_sp.id)
        .await
        .unwrap();
    assert_eq!(roles, b.admin_roles);

    // Applications: identifier URIs are unique per tenant and found case-insensitively.
    let api = Application {
        id: Uuid::new_v4(),
        app_id: Uuid::new_v4(),
        display_name: "api".into(),
        identifier_uris: vec!["api://Orders".into()],
        ..b.admin_app.clone()
    };
    store.application_create(&api, &[]).await.unwrap();
    let found = store
        .application_by_identifier_uri(tid, "API://orders")
        .await
        .unwrap();
    assert_eq!(found.unwrap().id, api.id);
    let dup = Application {
        id: Uuid::new_v4(),
        app_id: Uuid::new_v4(),
        ..api.clone()
    };
    assert!(matches!(
        store.application_create(&dup, &[]).await,
        Err(keyway_store::StoreError::Conflict(_))
    ));
    assert!(
        store.application_get(tid, dup.id).await.unwrap().is_none(),
        "nothing half-written"
    );

    // Two secrets live at once; one removed.
    let second = PasswordCredential {
        key_id: Uuid::new_v4(),
        application_id: api.id,
        ..b.admin_secret.clone()
    };
    let third = PasswordCredential {
        key_id: Uuid::new_v4(),
        ..second.clone()
    };
    let before = store.directory_generation();
    store.password_add(&second).await.unwrap();
    assert!(
        store.directory_generation() > before,
        "writes are counted for caches"
    );
    store.password_add(&third).await.unwrap();
    assert_eq!(store.passwords(api.id).await.unwrap().len(), 2);
    assert!(store.password_remove(api.id, second.key_id).await.unwrap());
    assert!(!store.password_remove(api.id, second.key_id).await.unwrap());
    assert_eq!(store.passwords(api.id).await.unwrap(), vec![third]);

    // Certificates are replaced as a whole.
    let key = KeyCredential {
        key_id: Uuid::new_v4(),
        application_id: api.id,
        display_name: Some("CN=x".into()),
        thumbprint_sha1: "t1".into(),
        thumbprint_sha256: "t256".into(),
        der: vec![0x30, 1],
        start: NOW,
        end: NOW + Duration::days(365),
    };
    let mut renamed = api.clone();
    renamed.display_name = "orders api".into();
    renamed.identifier_uris = vec!["api://orders-v2".into()];
    store
        .application_update(&renamed, Some(std::slice::from_ref(&key)))
        .await
        .unwrap();
    assert_eq!(store.key_credentials(api.id).await.unwrap(), vec![key]);
    assert!(
        store
            .application_by_identifier_uri(tid, "api://orders")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.application_get(tid, api.id).await.unwrap().unwrap(),
        renamed
    );
    store.application_update(&renamed, Some(&[])).await.unwrap();
    assert!(store.key_credentials(api.id).await.unwrap().is_empty());

    // Service principals: one per app per tenant, can be disabled, go with their app.
    let sp = ServicePrincipal {
        id: Uuid::new_v4(),
        app_id: api.app_id,
        ..b.admin_sp.clone()
    };
    store.service_principal_create(&sp).await.unwrap();
    let again = ServicePrincipal {
        id: Uuid::new_v4(),
        ..sp.clone()
    };
    assert!(store.service_principal_create(&again).await.is_err());
    assert!(
        store
            .service_principal_set_enabled(tid, sp.id, false)
            .await
            .unwrap()
    );
    assert!(
        !store
            .service_principal_get(tid, sp.id)
            .await
            .unwrap()
            .unwrap()
            .account_enabled
    );
    assert!(store.application_delete(tid, api.id).await.unwrap());
    assert!(
        store
            .service_principal_get(tid, sp.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.passwords(api.id).await.unwrap().is_empty());
    assert!(!store.application_delete(tid, api.id).await.unwrap());

    // Users.
    let user = User {
        id: Uuid::new_v4(),
        tenant_id: tid,
        user_principal_name: format!("alice@{}", b.tenant.domains[0]),
        display_name: "Alice".into(),
        mail_nickname: "alice".into(),
        account_enabled: true,
        password_hash: "$argon2id$x".into(),
        created_at: NOW,
        user_type: UserType::Member,
        mail: None,
        home: None,
    };
    store.user_create(&user).await.unwrap();
    // A guest of the same tenant stands for a home account elsewhere; one per home account.
    let home = HomeAccount {
        tenant_id: Uuid::new_v4(),
        user_id: Uuid::new_v4(),
    };
    let guest = User {
        id: Uuid::new_v4(),
        user_principal_name: guest_user_principal_name(
            "bob@fabrikam.example",
            &b.tenant.domains[0],
        ),
        password_hash: String::new(),
        user_type: UserType::Guest,
        mail: Some("bob@fabrikam.example".into()),
        home: Some(home),
        ..user.clone()
    };
    store.user_create(&guest).await.unwrap();
    assert_eq!(
        store.user_guest_of(tid, home.user_id).await.unwrap(),
        Some(guest.clone())
    );
    assert_eq!(
        store
            .user_by_upn(&guest.user_principal_name.to_lowercase())
            .await
            .unwrap()
            .map(|u| u.id),
        Some(guest.id),
        "a guest's #EXT# name is found whatever its case"
    );
    assert!(
        store
            .user_create(&User {
                id: Uuid::new_v4(),
                user_principal_name: "other#ext#@x".into(),
                ..guest.clone()
            })
            .await
            .is_err(),
        "a second guest for the same home account"
    );
    assert!(store.user_delete(tid, guest.id).await.unwrap());
    assert_eq!(store.user_guest_of(tid, home.user_id).await.unwrap(), None);
    assert!(
        store
            .user_create(&User {
                id: Uuid::new_v4(),
                ..user.clone()
            })
            .await
            .is_err()
    );
    assert_eq!(
        store
            .user_by_upn(&user.user_principal_name.to_uppercase())
            .await
            .unwrap()
            .unwrap(),
        user
    );
    let disabled = User {
        account_enabled: false,
        ..user.clone()
    };
    assert!(store.user_update(&disabled).await.unwrap());
    assert_eq!(
        store.user_get(tid, user.id).await.unwrap().unwrap(),
        disabled
    );
    assert_eq!(store.user_list(tid).await.unwrap().len(), 1);
    assert!(store.user_delete(tid, user.id).await.unwrap());

    // Assertions: the same one again is a repeat, other claims under the same jti a conflict.
    let client = b.admin_app.app_id;
    let exp = NOW + Duration::minutes(10);
    assert_eq!(
        store
            .assertion_record(client, "j", b"h1", exp)
            .await
            .unwrap(),
        AssertionUse::New
    );
    assert_eq!(
        store
            .assertion_record(client, "j", b"h1", exp)
            .await
            .unwrap(),
        AssertionUse::Repeat
    );
    assert_eq!(
        store
            .assertion_record(client, "j", b"h2", exp)
            .await
            .unwrap(),
        AssertionUse::Conflict
    );
    assert_eq!(
        store
            .assertion_record(Uuid::new_v4(), "j", b"h2", exp)
            .await
            .unwrap(),
        AssertionUse::New
    );
    assert!(
        store
            .assertions_purge(exp + Duration::seconds(1))
            .await
            .unwrap()
            >= 2
    );
    assert_eq!(
        store
            .assertion_record(client, "j", b"h2", exp)
            .await
            .unwrap(),
        AssertionUse::New
    );

    // Signing keys rotate: the new one is active, the old one retired and later purged.
    let newer = StoredSigningKey {
        kid: format!("k-{}", Uuid::new_v4()),
        created_at: NOW + Duration::seconds(1),
        ..b.signing_key.clone()
    };
    store
        .signing_key_rotate(&newer, NOW + Duration::seconds(1))
        .await
        .unwrap();
    let keys = store.signing_keys(tid).await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].kid, newer.kid);
    assert!(keys[0].retired_at.is_none() && keys[1].retired_at.is_some());
    store
        .signing_keys_purge(NOW + Duration::days(2))
        .await
        .unwrap();
    assert_eq!(store.signing_keys(tid).await.unwrap().len(), 1);

    // Environments: unique names, numbers never reused.
    use keyway_store::EnvironmentStore;
    let env = keyway_core::environment::Environment {
        id: Uuid::new_v4(),
        tenant_id: tid,
        name: format!("dev{}", &tid.simple().to_string()[..8]),
        number: 0,
        created_by: b.admin_sp.id,
        created_at: NOW,
    };
    let tables = keyway_core::dataverse::system_tables::builtin_entities();
    let creator = keyway_core::dataverse::seed::Creator::Application {
        app_id: b.admin_app.app_id,
        display_name: "admin".into(),
    };
    let seed = |name: &str| keyway_core::dataverse::seed::build(name, &tables, &creator, NOW);
    let dev = store
        .environment_create(&env, &tables, &seed("dev"))
        .await
        .unwrap();
    assert!(dev.number > 0);
    // Its tables are made with their metadata, in the same transaction.
    let loaded = store.environment_tables(dev.id).await.unwrap();
    assert_eq!(loaded, tables);
    // The creator is a system user there, holding the System Administrator's privileges.
    use keyway_store::SystemUserKey;
    let me = store
        .dataverse_user(&dev, SystemUserKey::ApplicationId(b.admin_app.app_id))
        .await
        .unwrap()
        .unwrap();
    assert!(!me.disabled);
    assert!(me.privileges.iter().any(|p| p.name == "prvDeleteaccount"
        && p.depth == keyway_core::dataverse::security::Depth::Organization));
    assert!(
        store
            .dataverse_user(&dev, SystemUserKey::ApplicationId(Uuid::new_v4()))
            .await
            .unwrap()
            .is_none()
    );
    let bu_table = tables
        .iter()
        .find(|t| t.logical_name == "businessunit")
        .unwrap();
    let root = store
        .record_get(&dev, bu_table, me.business_unit)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        root.fields["name"],
        keyway_core::dataverse::record::FieldValue::Text("dev".into())
    );
    assert_eq!(
        root.fields["parentbusinessunitid"],
        keyway_core::dataverse::record::FieldValue::Null
    );
    assert!(
        store
            .record_get(&dev, bu_table, Uuid::new_v4())
            .await
            .unwrap()
            .is_none()
    );

    // Rows change with their audit rows, inside the caller's scope, at the expected version.
    use keyway_core::dataverse::audit::AuditContext;
    use keyway_core::dataverse::authz::RowScope;
    use keyway_core::dataverse::record::{FieldValue as F, Record};
    use keyway_store::RecordStore;
    let account = tables.iter().find(|t| t.logical_name == "account").unwrap();
    let ctx = AuditContext {
        user_id: me.id,
        calling_user_id: None,
        transaction_id: Uuid::new_v4(),
        at: NOW,
    };
    let id = Uuid::new_v4();
    let row = Record::new("account")
        .with("accountid", F::Id(id))
        .with("name", F::Text("Contoso".into()))
        .with("numberofemployees", F::Int(10))
        .with("ownerid", F::Id(me.id))
        .with("owningbusinessunit", F::Id(me.business_unit))
        .with("createdon", F::Instant(NOW))
        .with("versionnumber", F::Int(1));
    store
        .record_create(&dev, account, std::slice::from_ref(&row), &ctx)
        .await
        .unwrap();
    assert!(matches!(
        store
            .record_create(&dev, account, std::slice::from_ref(&row), &ctx)
            .await,
        Err(keyway_store::StoreError::Conflict(_))
    ));
    // All or none: a batch whose second row collides leaves no first row behind.
    let fresh = Record::new("account")
        .with("accountid", F::Id(Uuid::new_v4()))
        .with("name", F::Text("Fresh".into()));
    assert!(
        store
            .record_create(&dev, account, &[fresh.clone(), row.clone()], &ctx)
            .await
            .is_err()
    );
    assert!(
        store
            .record_get(&dev, account, fresh.id("accountid").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    let stranger_scope = RowScope::Owned {
        owners: vec![Uuid::new_v4()],
        business_units: vec![],
        shared: None,
    };
    let set = Record::new("account").with("name", F::Text("Contoso Ltd".into()));
    assert_eq!(
        store
            .record_update(&dev, account, id, &set, None, &stranger_scope, &ctx)
            .await,
        Err(keyway_store::StoreError::RowOutOfScope)
    );
    assert_eq!(
        store
            .record_update(&dev, account, id, &set, Some(7), &RowScope::All, &ctx)
            .await,
        Err(keyway_store::StoreError::VersionMismatch)
    );
    assert_eq!(
        store
            .record_update(
                &dev,
                account,
                Uuid::new_v4(),
                &set,
                None,
                &RowScope::All,
                &ctx
            )
            .await,
        Err(keyway_store::StoreError::RowMissing)
    );
    let updated = store
        .record_update(&dev, account, id, &set, Some(1), &RowScope::All, &ctx)
        .await
        .unwrap();
    assert_eq!(updated.fields["name"], F::Text("Contoso Ltd".into()));
    assert_eq!(updated.fields["versionnumber"], F::Int(2));
    assert_eq!(updated.fields["numberofemployees"], F::Int(10));
    let audit = store.audit_entries(&dev, Some(id), 10, 0).await.unwrap();
    assert_eq!(
        audit.iter().map(|a| a.entry.action).collect::<Vec<_>>(),
        vec![2, 1],
        "newest first, nothing for refused writes"
    );
    assert_eq!(audit[0].entry.change_data["oldValue"]["name"], "Contoso");
    store
        .record_delete(&dev, account, id, None, &RowScope::All, &ctx)
        .await
        .unwrap();
    assert!(store.record_get(&dev, account, id).await.unwrap().is_none());
    let check = store.audit_verify(&dev).await.unwrap();
    assert_eq!(
        check,
        keyway_store::AuditCheck {
            rows: 3,
            first_broken: None
        }
    );
    let test = store
        .environment_create(
            &keyway_core::environment::Environment {
                id: Uuid::new_v4(),
                name: format!("{}t", env.name),
                ..env.clone()
            },
            &tables,
            &seed("x"),
        )
        .await
        .unwrap();
    assert_ne!(dev.number, test.number);
    assert!(
        store
            .environment_create(
                &keyway_core::environment::Environment {
                    id: Uuid::new_v4(),
                    ..env.clone()
                },
                &tables,
                &seed("x")
            )
            .await
            .is_err()
    );
    assert_eq!(
        store.environment_by_name(&env.name).await.unwrap().unwrap(),
        dev
    );
    assert_eq!(store.environment_get(dev.id).await.unwrap().unwrap(), dev);
    assert_eq!(store.environment_list(tid).await.unwrap().len(), 2);
    assert!(store.environment_delete(tid, test.id).await.unwrap());
    assert!(store.environment_tables(test.id).await.unwrap().is_empty());
    assert!(!store.environment_delete(tid, test.id).await.unwrap());
    let again = store
        .environment_create(
            &keyway_core::environment::Environment {
                id: Uuid::new_v4(),
                name: format!("{}u", env.name),
                ..env.clone()
            },
            &tables,
            &seed("x"),
        )
        .await
        .unwrap();
    assert!(again.number > test.number, "numbers are never reused");

    // Server secrets: the first value wins.
    let a = store
        .server_secret_get_or_insert("pepper-test", vec![1], NOW)
        .await
        .unwrap();
    let b2 = store
        .server_secret_get_or_insert("pepper-test", vec![2], NOW)
        .await
        .unwrap();
    assert_eq!((a, b2), (vec![1], vec![1]));

    flows_story(&store, &dev, &tables, me.id).await;
    flow_schedule_story(&store, &dev).await;
    flow_run_batch_story(&store, &dev).await;
    flow_run_only_story(&store, &dev).await;
    connection_proof_story(&store, &dev).await;
}

/// Row changes queue the runs of the flows they trigger, in their own transaction; workers claim
/// runs under a lease, one worker per run; a run whose worker died is claimed again.
async fn flows_story(
    store: &Arc<SqlStore>,
    dev: &keyway_core::environment::Environment,
    tables: &[keyway_core::dataverse::metadata::EntityDef],
    me: Uuid,
) {
    use keyway_core::dataverse::audit::AuditContext;
    use keyway_core::dataverse::authz::RowScope;
    use keyway_core::dataverse::record::{FieldValue as F, Record};
    use keyway_store::{ActionRow, FlowRow, FlowStore, RecordStore, RunStatus, StoreError};
    let account = tables.iter().find(|t| t.logical_name == "account").unwrap();
    let flow = |name: &str, on: bool, message: i64, attrs: &[&str]| FlowRow {
        id: Uuid::new_v4(),
        environment_id: dev.id,
        name: name.into(),
        owner_id: me,
        on,
        definition: serde_json::json!({"triggers": {}, "actions": {}}),
        trigger_kind: "dataverse".into(),
        trigger_entity: Some("account".into()),
        trigger_message: Some(message),
        trigger_attributes: attrs.iter().map(|a| a.to_string()).collect(),
        created_at: NOW,
        modified_at: NOW,
        version: 1,
        connection_references: serde_json::json!({}),
    };
    let on_name = flow("on name", true, 4, &["name"]);
    let off = flow("off", false, 7, &[]);
    let on_delete = flow("on delete", true, 2, &[]);
    for f in [&on_name, &off, &on_delete] {
        store.flow_save(f, None).await.unwrap();
    }
    assert!(matches!(
        store
            .flow_save(
                &FlowRow {
                    id: Uuid::new_v4(),
                    ..on_name.clone()
                },
                None
            )
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.flow_save(&on_name, Some(7)).await,
        Err(StoreError::VersionMismatch)
    ));
    store
        .flow_save(
            &FlowRow {
                version: 2,
                ..on_name.clone()
            },
            Some(1),
        )
        .await
        .unwrap();
    assert_eq!(store.flow_list(dev.id).await.unwrap().len(), 3);

    let ctx = AuditContext {
        user_id: me,
        calling_user_id: None,
        transaction_id: Uuid::new_v4(),
        at: NOW,
    };
    let id = Uuid::new_v4();
    let row = Record::new("account")
        .with("accountid", F::Id(id))
        .with("name", F::Text("Flowing".into()))
        .with("ownerid", F::Id(me))
        .with("versionnumber", F::Int(1));
    store
        .record_create(dev, account, &[row], &ctx)
        .await
        .unwrap();
    let runs = store.runs_of(on_name.id, 10).await.unwrap();
    assert_eq!(runs.len(), 1, "added: one run");
    assert_eq!(runs[0].status, RunStatus::Queued);
    assert_eq!(runs[0].trigger_outputs["body"]["name"], "Flowing");
    assert_eq!(
        runs[0].trigger_outputs["body"]["_ownerid_value"],
        me.to_string()
    );
    assert_eq!(runs[0].trigger_outputs["body"]["SdkMessage"], "Create");
    assert!(
        store.runs_of(off.id, 10).await.unwrap().is_empty(),
        "a flow that is off never runs"
    );
    assert!(store.runs_of(on_delete.id, 10).await.unwrap().is_empty());
    // A change to a column the trigger does not filter on fires nothing; a change of name does.
    let set = |col: &str, v: &str| Record::new("account").with(col, F::Text(v.into()));
    store
        .record_update(
            dev,
            account,
            id,
            &set("description", "x"),
            None,
            &RowScope::All,
            &ctx,
        )
        .await
        .unwrap();
    assert_eq!(store.runs_of(on_name.id, 10).await.unwrap().len(), 1);
    store
        .record_update(
            dev,
            account,
            id,
            &set("name", "Renamed"),
            None,
            &RowScope::All,
            &ctx,
        )
        .await
        .unwrap();
    let runs = store.runs_of(on_name.id, 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        runs[0].trigger_outputs["keyway"]["changedColumns"],
        serde_json::json!(["name"])
    );

    // Two workers, two due runs: each takes one.
    let lease = Duration::seconds(30);
    let (a, b) = tokio::join!(
        store.run_claim("worker-a", NOW, lease),
        store.run_claim("worker-b", NOW, lease)
    );
    let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
    assert_ne!(a.id, b.id);
    assert!(
        store
            .run_claim("worker-c", NOW, lease)
            .await
            .unwrap()
            .is_none()
    );
    let action = ActionRow {
        name: "Add_a_contact".into(),
        status: "Succeeded".into(),
        inputs: serde_json::json!({"item": {"lastname": "x"}}),
        outputs: serde_json::json!({"contactid": "1"}),
        connection_id: Some(Uuid::new_v4()),
        identity: Some(me.to_string()),
        error: None,
        started_at: NOW,
        ended_at: NOW,
    };
    store.run_action(a.id, "worker-a", &action).await.unwrap();
    store
        .run_finish(a.id, "worker-a", RunStatus::Succeeded, None, NOW)
        .await
        .unwrap();
    assert_eq!(store.run_actions(a.id).await.unwrap(), vec![action.clone()]);
    assert!(
        matches!(
            store.run_action(a.id, "worker-a", &action).await,
            Err(StoreError::RowMissing)
        ),
        "an ended run takes no more actions"
    );
    // worker-b dies: once its lease is over, another worker claims the run and b can do nothing.
    let later = NOW + Duration::seconds(31);
    let c = store
        .run_claim("worker-c", later, lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.id, c.attempt), (b.id, 2));
    assert!(matches!(
        store
            .run_finish(b.id, "worker-b", RunStatus::Succeeded, None, later)
            .await,
        Err(StoreError::RowMissing)
    ));
    // A retry waits for its time.
    store
        .run_retry(
            c.id,
            "worker-c",
            later + Duration::seconds(10),
            ("Throttled".into(), "busy".into()),
        )
        .await
        .unwrap();
    assert!(
        store
            .run_claim("worker-c", later, lease)
            .await
            .unwrap()
            .is_none()
    );
    let again = store
        .run_claim("worker-c", later + Duration::seconds(10), lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.id, again.attempt), (c.id, 3));
    // Cancelled while running: the worker's next step is refused.
    assert!(store.run_cancel(again.id, later).await.unwrap());
    assert!(!store.run_cancel(again.id, later).await.unwrap());
    assert!(matches!(
        store.run_renew(again.id, "worker-c", later + lease).await,
        Err(StoreError::RowMissing)
    ));
    assert_eq!(
        store.run_get(again.id).await.unwrap().unwrap().status,
        RunStatus::Cancelled
    );

    // A deletion fires the delete flow with the old row; a manual run is queued directly.
    store
        .record_delete(dev, account, id, None, &RowScope::All, &ctx)
        .await
        .unwrap();
    let deleted = store.runs_of(on_delete.id, 10).await.unwrap();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].trigger_outputs["body"]["name"], "Renamed");
    let manual = store
        .run_queue(off.id, dev.id, &serde_json::json!({"body": {"x": 1}}), NOW)
        .await
        .unwrap();
    assert_eq!(
        store.run_get(manual).await.unwrap().unwrap().status,
        RunStatus::Queued
    );
    store.flow_delete(on_name.id).await.unwrap();
    assert!(
        store.run_get(a.id).await.unwrap().is_none(),
        "runs go with their flow"
    );
}

/// A busy worker claims several runs in one transaction, each once, runs whose worker died
/// first, then due runs oldest first; their ends are written together with the action records
/// not written yet, and a run the worker holds no more is left as it is.
async fn flow_run_batch_story(store: &Arc<SqlStore>, dev: &keyway_core::environment::Environment) {
    use keyway_store::{ActionRow, FlowStore, RunEnd, RunRow, RunStatus};
    let ids = |runs: &[RunRow]| runs.iter().map(|r| r.id).collect::<Vec<_>>();
    let end = |id, status| RunEnd {
        id,
        status,
        error: None,
        actions: vec![],
        at: NOW,
    };
    let lease = Duration::seconds(30);
    let at = NOW + Duration::days(30);
    // What earlier stories left due is ended first.
    let left = store.runs_claim("sweeper", at, lease, 500).await.unwrap();
    let swept: Vec<_> = left
        .iter()
        .map(|r| end(r.id, RunStatus::Cancelled))
        .collect();
    let ended = store.runs_end("sweeper", &swept).await.unwrap();
    assert!(ended.len() == left.len() && ended.iter().all(|e| *e));

    let flow = store.flow_list(dev.id).await.unwrap().remove(0);
    let mut queued = Vec::new();
    for i in 0..5 {
        let due = at - Duration::seconds(10 - i);
        let outputs = serde_json::json!({ "i": i });
        queued.push(
            store
                .run_queue(flow.id, dev.id, &outputs, due)
                .await
                .unwrap(),
        );
    }
    let first = store.runs_claim("worker-a", at, lease, 3).await.unwrap();
    assert_eq!(ids(&first), queued[..3], "oldest first");
    assert!(first.iter().all(|r| r.status == RunStatus::Running
        && r.attempt == 1
        && r.lease_owner.as_deref() == Some("worker-a")));
    let rest = store.runs_claim("worker-b", at, lease, 10).await.unwrap();
    assert_eq!(ids(&rest), queued[3..]);
    assert!(
        store
            .runs_claim("worker-c", at, lease, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // worker-a's ends in one transaction, one with its last action.
    let action = ActionRow {
        name: "Add_a_new_row".into(),
        status: "Succeeded".into(),
        inputs: serde_json::json!({"item": {"lastname": "x"}}),
        outputs: serde_json::json!({"statusCode": 201}),
        connection_id: None,
        identity: None,
        error: None,
        started_at: at,
        ended_at: at,
    };
    let mut with_action = end(queued[0], RunStatus::Succeeded);
    with_action.actions = vec![action.clone()];
    let mut failed = end(queued[1], RunStatus::Failed);
    failed.error = Some(("ActionFailed".into(), "no".into()));
    let ends = [with_action, failed, end(queued[2], RunStatus::Succeeded)];
    assert_eq!(
        store.runs_end("worker-a", &ends).await.unwrap(),
        vec![true, true, true]
    );
    // worker-b dies: once its lease is over its runs come before a run queued earlier than that.
    let late = at + lease + Duration::seconds(1);
    let waiting = store
        .run_queue(flow.id, dev.id, &serde_json::json!({}), at)
        .await
        .unwrap();
    let taken = store.runs_claim("worker-c", late, lease, 2).await.unwrap();
    assert_eq!(ids(&taken), queued[3..]);
    assert!(taken.iter().all(|r| r.attempt == 2));
    let next = store.runs_claim("worker-c", late, lease, 2).await.unwrap();
    assert_eq!(ids(&next), vec![waiting]);

    // worker-b's end is refused, its action record too: its runs are worker-c's now.
    let mut stale = end(queued[3], RunStatus::Succeeded);
    stale.actions = vec![action.clone()];
    assert_eq!(
        store.runs_end("worker-b", &[stale]).await.unwrap(),
        vec![false]
    );
    assert_eq!(store.run_actions(queued[0]).await.unwrap(), vec![action]);
    let run = |id| async move { store.run_get(id).await.unwrap().unwrap() };
    assert_eq!(run(queued[0]).await.status, RunStatus::Succeeded);
    let f = run(queued[1]).await;
    assert_eq!(
        (f.status, f.error),
        (
            RunStatus::Failed,
            Some(("ActionFailed".into(), "no".into()))
        )
    );
    assert_eq!(run(queued[3]).await.status, RunStatus::Running);
    assert!(store.run_actions(queued[3]).await.unwrap().is_empty());
    let mine: Vec<_> = [queued[3], queued[4], waiting]
        .into_iter()
        .map(|id| end(id, RunStatus::Succeeded))
        .collect();
    assert_eq!(
        store.runs_end("worker-c", &mine).await.unwrap(),
        vec![true; 3]
    );
}

/// Recurrence ticks: a flow's schedule is set as of a version; a tick moves the next occurrence
/// on by compare-and-set and queues its run with the occurrence's id unless that run exists, so
/// two processes reading the same due tick queue it once; a flow turned off fires no more.
async fn flow_schedule_story(store: &Arc<SqlStore>, dev: &keyway_core::environment::Environment) {
    use keyway_store::{FlowRow, FlowStore};
    let base = store.flow_list(dev.id).await.unwrap().remove(0);
    let recurring = |name: &str, on: bool| FlowRow {
        id: Uuid::new_v4(),
        name: name.into(),
        on,
        trigger_kind: "recurrence".into(),
        trigger_entity: None,
        trigger_message: None,
        trigger_attributes: vec![],
        version: 1,
        ..base.clone()
    };
    let every = recurring("every second", true);
    let off = recurring("recurring but off", false);
    store.flow_save(&every, None).await.unwrap();
    store.flow_save(&off, None).await.unwrap();
    let due_ids =
        |d: &[keyway_store::ScheduledFlow]| d.iter().map(|f| f.flow.id).collect::<Vec<_>>();

    // Saved but not scheduled yet: due, so a server schedules it; the flow that is off is not.
    let due = store.flows_due(NOW, 100).await.unwrap();
    assert_eq!(due_ids(&due), vec![every.id]);
    assert_eq!((due[0].anchor, due[0].next_fire_at), (None, None));
    assert!(
        !store
            .flow_schedule_set(every.id, 2, Some(NOW), Some(NOW))
            .await
            .unwrap(),
        "not at version 2"
    );
    assert!(
        store
            .flow_schedule_set(every.id, 1, Some(NOW), Some(NOW))
            .await
            .unwrap()
    );
    assert!(
        store
            .flows_due(NOW - Duration::seconds(1), 100)
            .await
            .unwrap()
            .is_empty()
    );
    let due = store.flows_due(NOW, 100).await.unwrap();
    assert_eq!((due[0].anchor, due[0].next_fire_at), (Some(NOW), Some(NOW)));

    // A tick: queued once; a second process holding the same read moves nothing.
    let s = |n: i64| NOW + Duration::seconds(n);
    let tick = |n: i64| Uuid::new_v5(&every.id, &n.to_be_bytes());
    let outputs = serde_json::json!({"body": {"scheduledTime": "t0"}});
    assert!(
        store
            .recurrence_fire(every.id, dev.id, s(0), Some(s(1)), tick(0), &outputs, NOW)
            .await
            .unwrap()
    );
    assert!(
        !store
            .recurrence_fire(every.id, dev.id, s(0), Some(s(1)), tick(0), &outputs, NOW)
            .await
            .unwrap()
    );
    let run = store.run_get(tick(0)).await.unwrap().unwrap();
    assert_eq!(
        (run.status, run.flow_id),
        (keyway_store::RunStatus::Queued, every.id)
    );
    assert_eq!(run.trigger_outputs, outputs);
    assert_eq!(
        store.flows_due(s(1), 100).await.unwrap()[0].next_fire_at,
        Some(s(1))
    );

    // Insert-if-absent: a tick whose run exists moves the schedule on but queues nothing more.
    assert!(
        !store
            .recurrence_fire(every.id, dev.id, s(1), Some(s(2)), tick(0), &outputs, NOW)
            .await
            .unwrap()
    );
    assert_eq!(store.runs_of(every.id, 10).await.unwrap().len(), 1);

    // Two processes on the same due tick at once: exactly one queues it.
    let (a, b) = tokio::join!(
        store.recurrence_fire(every.id, dev.id, s(2), Some(s(3)), tick(2), &outputs, NOW),
        store.recurrence_fire(every.id, dev.id, s(2), Some(s(3)), tick(2), &outputs, NOW),
    );
    assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|q| **q).count(), 1);
    assert_eq!(store.runs_of(every.id, 10).await.unwrap().len(), 2);

    // Turned off: not due, and a tick read before it was turned off fires nothing.
    let turned_off = FlowRow {
        on: false,
        version: 2,
        ..every.clone()
    };
    store.flow_save(&turned_off, Some(1)).await.unwrap();
    assert!(store.flows_due(s(10), 100).await.unwrap().is_empty());
    assert!(
        !store
            .recurrence_fire(every.id, dev.id, s(3), Some(s(4)), tick(3), &outputs, NOW)
            .await
            .unwrap()
    );
    assert_eq!(store.runs_of(every.id, 10).await.unwrap().len(), 2);
    assert!(
        store
            .flow_schedule_set(every.id, 2, None, None)
            .await
            .unwrap()
    );
    store.flow_delete(every.id).await.unwrap();
    store.flow_delete(off.id).await.unwrap();
}

#[tokio::test]
async fn directory_story_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = keyway_store::open(&format!("sqlite://{}/k.db", dir.path().display()))
        .await
        .unwrap();
    assert_eq!(store.backend(), "sqlite");
    story(store).await;
}

#[tokio::test]
async fn directory_story_on_postgres() {
    let url = keyway_store::testing::scratch_postgres().await.unwrap();
    let store = keyway_store::open(&url).await.unwrap();
    assert_eq!(store.backend(), "postgres");
    story(store.clone()).await;
    drop(store);
    keyway_store::testing::drop_postgres(&url).await.unwrap();
}

#[tokio::test]
async fn migrations_run_twice_and_concurrently_on_postgres() {
    let url = keyway_store::testing::scratch_postgres().await.unwrap();
    let (a, b) = tokio::join!(keyway_store::open(&url), keyway_store::open(&url));
    a.unwrap();
    b.unwrap();
    keyway_store::open(&url).await.unwrap();
    keyway_store::testing::drop_postgres(&url).await.unwrap();
}

/// Run-only grants: one per flow and principal (granting again keeps the first), found through a
/// user or any of their teams, revoked once, and gone with their flow.
async fn flow_run_only_story(store: &Arc<SqlStore>, dev: &keyway_core::environment::Environment) {
    use keyway_store::{FlowRow, FlowStore, RunOnlyGrant, RunOnlyStore};
    let base = store.flow_list(dev.id).await.unwrap().remove(0);
    let flow = FlowRow {
        id: Uuid::new_v4(),
        name: "button".into(),
        trigger_kind: "manual".into(),
        version: 1,
        ..base
    };
    store.flow_save(&flow, None).await.unwrap();
    let (user, team, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let grant = |who: Uuid, kind: &str, at| RunOnlyGrant {
        flow_id: flow.id,
        principal_id: who,
        principal_kind: kind.into(),
        granted_by: flow.owner_id,
        granted_at: at,
    };
    assert!(!store.run_only_allows(flow.id, &[user]).await.unwrap());
    assert!(
        store
            .run_only_grant(&grant(user, "systemuser", NOW))
            .await
            .unwrap()
    );
    let later = NOW + time::Duration::minutes(1);
    assert!(
        !store
            .run_only_grant(&grant(user, "systemuser", later))
            .await
            .unwrap(),
        "granted once"
    );
    assert!(
        store
            .run_only_grant(&grant(team, "team", later))
            .await
            .unwrap()
    );
    assert_eq!(
        store.run_only_list(flow.id).await.unwrap(),
        vec![grant(user, "systemuser", NOW), grant(team, "team", later)]
    );
    assert!(store.run_only_allows(flow.id, &[user]).await.unwrap());
    assert!(
        store
            .run_only_allows(flow.id, &[other, team])
            .await
            .unwrap(),
        "through a team"
    );
    assert!(!store.run_only_allows(flow.id, &[other]).await.unwrap());
    assert!(!store.run_only_allows(flow.id, &[]).await.unwrap());
    assert_eq!(
        store.run_only_flows(&[other, team]).await.unwrap(),
        vec![flow.id],
        "the flows a user may run, through a team"
    );
    assert_eq!(
        store.run_only_flows(&[user, team]).await.unwrap(),
        vec![flow.id],
        "each once"
    );
    assert!(store.run_only_flows(&[other]).await.unwrap().is_empty());
    assert!(store.run_only_flows(&[]).await.unwrap().is_empty());
    assert!(store.run_only_revoke(flow.id, user).await.unwrap());
    assert!(!store.run_only_revoke(flow.id, user).await.unwrap());
    assert!(!store.run_only_allows(flow.id, &[user]).await.unwrap());
    store.flow_delete(flow.id).await.unwrap();
    assert!(
        store.run_only_list(flow.id).await.unwrap().is_empty(),
        "grants go with their flow"
    );
}

/// A connection's proof (whom its credential signed in as) is recorded only for the version it
/// was proven at: an edit that drops it is not undone by a token the old credential got.
async fn connection_proof_story(
    store: &Arc<SqlStore>,
    dev: &keyway_core::environment::Environment,
) {
    use keyway_core::connections::{Api, Connection, Identity, Proof, Status};
    use keyway_store::{ConnectionEvent, ConnectionStore, SecretChanges};
    let event = |id| ConnectionEvent {
        id: Uuid::new_v4(),
        connection_id: id,
        at: NOW,
        kind: "test".into(),
        caller: "contract".into(),
        acting_as: None,
        purpose: "proof".into(),
    };
    let me = Identity {
        id: Uuid::new_v4(),
        kind: "ServicePrincipal".into(),
        display_name: "maker".into(),
        tenant_id: dev.tenant_id,
    };
    let mut c = Connection {
        id: Uuid::new_v4(),
        api: Api::PowerPlatform,
        scope: dev.id.to_string(),
        name: "proof".into(),
        tenant_id: dev.tenant_id,
        connector: "shared_commondataserviceforapps".into(),
        parameter_set: "ServicePrincipalOauth".into(),
        display_name: "proof".into(),
        description: String::new(),
        public_values: serde_json::Map::new(),
        secret_fields: vec![],
        created_by: me.clone(),
        modified_by: me,
        run_owner: None,
        status: Status::Unknown,
        tested_at: None,
        expires_at: None,
        created_at: NOW,
        modified_at: NOW,
        version: 0,
        proof: None,
    };
    store
        .connection_create(&c, &[], &event(c.id))
        .await
        .unwrap();
    let proof_of = |id| {
        let store = store.clone();
        async move { store.connection_get(id).await.unwrap().unwrap().proof }
    };
    assert_eq!(proof_of(c.id).await, None);
    let first = Proof {
        identity: Uuid::new_v4(),
        at: NOW,
    };
    assert!(store.connection_prove(c.id, 0, &first).await.unwrap());
    assert_eq!(proof_of(c.id).await, Some(first));
    // Proven for a version it is not at: nothing changes.
    let other = Proof {
        identity: Uuid::new_v4(),
        at: NOW + Duration::minutes(1),
    };
    assert!(!store.connection_prove(c.id, 7, &other).await.unwrap());
    assert_eq!(proof_of(c.id).await, Some(first));
    // An edit that keeps the credential keeps the proof.
    c.display_name = "renamed".into();
    c.version = 1;
    c.proof = Some(first);
    store
        .connection_update(&c, 0, &SecretChanges::default(), &event(c.id))
        .await
        .unwrap();
    assert_eq!(proof_of(c.id).await, Some(first));
    // A new credential drops it, and a token the old one got cannot bring it back.
    c.version = 2;
    c.proof = None;
    store
        .connection_update(&c, 1, &SecretChanges::default(), &event(c.id))
        .await
        .unwrap();
    assert_eq!(proof_of(c.id).await, None);
    assert!(!store.connection_prove(c.id, 1, &first).await.unwrap());
    assert_eq!(proof_of(c.id).await, None);
    assert!(store.connection_prove(c.id, 2, &other).await.unwrap());
    assert_eq!(proof_of(c.id).await, Some(other));
    store.connection_delete(c.id, &event(c.id)).await.unwrap();
}
