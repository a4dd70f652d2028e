//! Keyset paging: `@odata.nextLink`'s `$skiptoken` carries the last row's sort key, sealed, so
//! every page is found through the index; paging on a non-unique column sees every row once; a
//! changed or misplaced token is a 400. And a verified token kept in memory still expires.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(keyset_pages_see_every_row_exactly_once);

fn code(e: &Value) -> String {
    e["error"]["code"].as_str().unwrap_or_default().to_string()
}

async fn keyset_pages_see_every_row_exactly_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, api, token) = app.environment("paging").await;
    // 45 accounts over 4 account numbers, every fifth with none (nulls sort where the database
    // puts them, but always together and always once).
    let targets: Vec<Value> = (0..45)
        .map(|i| {
            let mut t = json!({"name": format!("p{i:02}")});
            if i % 5 != 0 {
                t["accountnumber"] = json!(format!("N{}", i % 4));
            }
            t
        })
        .collect();
    let (s, _, r) = web_call(
        &app.http,
        &token,
        Method::POST,
        format!("{api}/accounts/Microsoft.Dynamics.CRM.CreateMultiple"),
        Some(json!({"Targets": targets})),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let page = |link: String| {
        let (http, token) = (app.http.clone(), token.clone());
        async move {
            web_call(
                &http,
                &token,
                Method::GET,
                link,
                None,
                &[("Prefer", "odata.maxpagesize=4")],
            )
            .await
        }
    };
    let mut a_next_link = String::new();
    for (order, descending) in [
        ("accountnumber", false),
        ("accountnumber desc", true),
        ("accountnumber desc,name desc", true),
        ("name desc", true),
    ] {
        let mut next = Some(format!(
            "{api}/accounts?$select=name,accountnumber&$filter=startswith(name,'p')&$orderby={order}"
        ));
        let (mut seen, mut pages) = (Vec::new(), 0);
        while let Some(link) = next {
            let (s, _, p) = page(link).await;
            assert_eq!(s, StatusCode::OK, "{order}: {p}");
            for row in p["value"].as_array().unwrap() {
                seen.push((
                    row["accountnumber"].as_str().map(str::to_string),
                    row["name"].as_str().unwrap().to_string(),
                ));
            }
            next = p["@odata.nextLink"].as_str().map(str::to_string);
            if let Some(n) = &next {
                assert!(
                    !n.contains("$skiptoken=4&"),
                    "the token is not an offset: {n}"
                );
                a_next_link = n.clone();
            }
            pages += 1;
        }
        assert_eq!(pages, 12, "{order}: 45 rows, 4 a page");
        let mut names: Vec<&str> = seen.iter().map(|(_, n)| n.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!((seen.len(), names.len()), (45, 45), "{order}: {seen:?}");
        if order == "name desc" {
            let got: Vec<&str> = seen.iter().map(|(_, n)| n.as_str()).collect();
            let mut want = got.clone();
            want.sort_unstable_by(|a, b| b.cmp(a));
            assert_eq!(got, want);
            continue;
        }
        // Sorted by the column, nulls in one run at one end.
        let numbers: Vec<&str> = seen.iter().filter_map(|(n, _)| n.as_deref()).collect();
        let mut sorted = numbers.clone();
        sorted.sort_unstable();
        if descending {
            sorted.reverse();
        }
        assert_eq!(numbers, sorted, "{order}");
        let nulls: Vec<usize> = (0..seen.len()).filter(|i| seen[*i].0.is_none()).collect();
        assert_eq!(nulls.len(), 9);
        assert!(
            nulls == (0..9).collect::<Vec<_>>() || nulls == (36..45).collect::<Vec<_>>(),
            "{order}: {nulls:?}"
        );
    }

    // $top still ends the collection across pages: 10 rows as 4 + 4 + 2.
    let mut next = Some(format!(
        "{api}/accounts?$select=name&$filter=startswith(name,'p')&$orderby=name&$top=10"
    ));
    let mut sizes = Vec::new();
    while let Some(link) = next {
        let (s, _, p) = page(link).await;
        assert_eq!(s, StatusCode::OK, "{p}");
        sizes.push(p["value"].as_array().unwrap().len());
        next = p["@odata.nextLink"].as_str().map(str::to_string);
    }
    assert_eq!(sizes, vec![4, 4, 2]);

    // A token changed by one character, or moved onto another query, is refused with a 400.
    let (before, token_part) = a_next_link.split_once("$skiptoken=").unwrap();
    let (skiptoken, after) = token_part
        .split_once('&')
        .map_or((token_part, ""), |(t, rest)| (t, rest));
    let mut chars: Vec<char> = skiptoken.chars().collect();
    let mid = chars.len() / 2;
    chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    let sep = if after.is_empty() { "" } else { "&" };
    for link in [
        format!("{before}$skiptoken={tampered}{sep}{after}"),
        format!("{api}/accounts?$select=name&$orderby=accountnumber&$skiptoken={skiptoken}"),
        format!("{api}/accounts?$skiptoken=12"),
    ] {
        let (s, _, e) = page(link.clone()).await;
        assert_eq!(
            (s, code(&e)),
            (StatusCode::BAD_REQUEST, "0x80060888".to_string()),
            "{link}: {e}"
        );
    }
    // The untouched link still works.
    let (s, _, p) = page(a_next_link.clone()).await;
    assert_eq!(s, StatusCode::OK, "{p}");

    // A token verified once and kept in memory is still refused once it has expired.
    let (s, _, _) = page(format!("{api}/WhoAmI")).await;
    assert_eq!(s, StatusCode::OK);
    app.clock.advance(time::Duration::days(2));
    let (s, _, e) = page(format!("{api}/WhoAmI")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{e}");
}
