//! Mini program code in the sandbox: the template library (drafts → templates, component
//! token under a configurable parameter), commit against it, audits with the monthly quota,
//! results pushed (encrypted) to the message URL or lost, undo, release, rollback, gray
//! release, the per-mini-program knobs and the call counts.

use super::*;

/// A mini program authorized through the sandbox's bulk control: (appid, authorizer token).
async fn bulk_mps(sb: &Sb, ct: &str, start: i64, count: i64) -> Vec<(String, String)> {
    let list = sb
        .post(
            "/sandbox/merchants/bulk",
            json!({ "count": count, "start": start, "kind": "mini_program" }),
        )
        .await;
    let mut out = Vec::new();
    for m in list.as_array().unwrap() {
        let appid = m["appid"].as_str().unwrap().to_string();
        let v = sb
            .refresh(ct, &appid, m["refresh_token"].as_str().unwrap())
            .await;
        let at = v["authorizer_access_token"].as_str().unwrap().to_string();
        out.push((appid, at));
    }
    out
}

async fn add_template(sb: &Sb, ct: &str, draft_id: i64) -> i64 {
    let v = sb
        .post(
            &format!("/wxa/addtotemplate?access_token={ct}"),
            json!({ "draft_id": draft_id, "template_type": 0 }),
        )
        .await;
    assert_eq!(errcode(&v), 0, "{v}");
    let list = sb
        .get(&format!("/wxa/gettemplatelist?access_token={ct}"))
        .await;
    list["template_list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["draft_id"] == draft_id)
        .filter_map(|t| t["template_id"].as_i64())
        .max()
        .expect("the new template")
}

async fn commit(sb: &Sb, at: &str, template_id: i64, version: &str) -> Value {
    sb.post(
        &format!("/wxa/commit?access_token={at}"),
        json!({
            "template_id": template_id,
            "ext_json": "{\"extAppid\":\"wx1\",\"ext\":{\"shop\":1}}",
            "user_version": version,
            "user_desc": "sandbox",
        }),
    )
    .await
}

async fn submit(sb: &Sb, at: &str) -> Value {
    sb.post(
        &format!("/wxa/submit_audit?access_token={at}"),
        json!({ "version_desc": "v", "privacy_api_not_use": true }),
    )
    .await
}

async fn status(sb: &Sb, at: &str, auditid: i64) -> Value {
    sb.post(
        &format!("/wxa/get_auditstatus?access_token={at}"),
        json!({ "auditid": auditid }),
    )
    .await
}

#[tokio::test]
async fn the_template_library_turns_drafts_into_templates() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let drafts = sb
        .get(&format!("/wxa/gettemplatedraftlist?access_token={ct}"))
        .await;
    let ids: Vec<i64> = drafts["draft_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["draft_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2], "{drafts}");
    assert_eq!(
        drafts["draft_list"][0]["source_miniprogram_appid"],
        sandbox::DEV_APPID
    );
    // The developer uploads a third draft.
    let d = sb
        .post(
            "/sandbox/code/drafts",
            json!({ "user_version": "2.0.0", "user_desc": "new", "pages": ["pages/a/a"] }),
        )
        .await;
    assert_eq!(d["draft_id"], 3, "{d}");

    let add = format!("/wxa/addtotemplate?access_token={ct}");
    assert_eq!(
        errcode(&sb.post(&add, json!({ "draft_id": 99 })).await),
        85064
    );
    assert_eq!(
        errcode(
            &sb.post(&add, json!({ "draft_id": 1, "template_type": 2 }))
                .await
        ),
        40097
    );
    assert_eq!(errcode(&sb.post(&add, json!({ "draft_id": 3 })).await), 0);
    assert_eq!(
        errcode(
            &sb.post(&add, json!({ "draft_id": 1, "template_type": 1 }))
                .await
        ),
        0
    );
    let list = sb
        .get(&format!("/wxa/gettemplatelist?access_token={ct}"))
        .await;
    let got: Vec<(i64, i64, i64)> = list["template_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["template_id"].as_i64().unwrap(),
                t["draft_id"].as_i64().unwrap(),
                t["template_type"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [(1, 3, 0), (2, 1, 1)]);
    let standard = sb
        .get(&format!(
            "/wxa/gettemplatelist?access_token={ct}&template_type=1"
        ))
        .await;
    assert_eq!(standard["template_list"].as_array().unwrap().len(), 1);

    let delete = format!("/wxa/deletetemplate?access_token={ct}");
    assert_eq!(
        errcode(&sb.post(&delete, json!({ "template_id": 2 })).await),
        0
    );
    assert_eq!(
        errcode(&sb.post(&delete, json!({ "template_id": 2 })).await),
        85064
    );
    assert_eq!(
        errcode(&sb.post(&delete, json!({ "template_id": "1" })).await),
        85064,
        "a quoted id finds nothing"
    );
    // An authorizer token is the wrong kind for the library.
    let (atm, _) = sb.authorizer(&ct, MP1, None).await;
    assert_eq!(
        errcode(
            &sb.get(&format!("/wxa/gettemplatelist?access_token={atm}"))
                .await
        ),
        40001
    );
}

#[tokio::test]
async fn the_template_token_parameter_is_configurable() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let by_access = format!("/wxa/gettemplatelist?access_token={ct}");
    let by_component = format!("/wxa/gettemplatelist?component_access_token={ct}");
    assert_eq!(errcode(&sb.get(&by_access).await), 0);
    assert_eq!(errcode(&sb.get(&by_component).await), 41001);
    sb.config(json!({ "template_token_param": "component_access_token" }))
        .await;
    assert_eq!(errcode(&sb.get(&by_access).await), 41001);
    assert_eq!(errcode(&sb.get(&by_component).await), 0);
    let (s, v) = sb
        .post_status(
            "/sandbox/config",
            json!({ "template_token_param": "token" }),
        )
        .await;
    assert_eq!(s, 400, "{v}");
}

#[tokio::test]
async fn an_approved_audit_is_pushed_then_released_once() {
    let sb = Sb::start().await;
    let (url, log) = message_receiver().await;
    sb.config(json!({ "message_callback_base": url, "audit_delay_secs": 600 }))
        .await;
    let ct = sb.component_token().await;
    let (atm, _) = sb.authorizer(&ct, MP1, None).await;
    let at = atm.as_str();

    // Nothing committed: no submit, no pages; a template that does not exist does not commit.
    assert_eq!(errcode(&submit(&sb, at).await), 85086);
    assert_eq!(
        errcode(&sb.get(&format!("/wxa/get_page?access_token={at}")).await),
        86001
    );
    assert_eq!(errcode(&commit(&sb, at, 42, "1.0.0").await), 85014);
    let template = add_template(&sb, &ct, 1).await;
    assert_eq!(errcode(&commit(&sb, at, template, "1.0.0").await), 0);
    let pages = sb.get(&format!("/wxa/get_page?access_token={at}")).await;
    assert_eq!(
        pages["page_list"],
        json!(["pages/index/index", "pages/about/about"])
    );

    let quota = sb.get(&format!("/wxa/queryquota?access_token={at}")).await;
    assert_eq!(
        (quota["rest"].as_i64(), quota["limit"].as_i64()),
        (Some(100), Some(100))
    );
    let bad_items = sb
        .post(
            &format!("/wxa/submit_audit?access_token={at}"),
            json!({ "item_list": [] }),
        )
        .await;
    assert_eq!(errcode(&bad_items), 85023);
    let s = submit(&sb, at).await;
    assert_eq!(errcode(&s), 0, "{s}");
    let auditid = s["auditid"].as_i64().unwrap();
    assert_eq!(errcode(&submit(&sb, at).await), 85009, "one in review");
    let quota = sb.get(&format!("/wxa/queryquota?access_token={at}")).await;
    assert_eq!(quota["rest"], 99, "{quota}");
    assert_eq!(status(&sb, at, auditid).await["status"], 2);
    assert_eq!(errcode(&status(&sb, at, auditid + 1).await), 85012);
    let release = format!("/wxa/release?access_token={at}");
    assert_eq!(errcode(&sb.post(&release, json!({})).await), 85019);

    // Not due yet: a run pushes nothing.
    let run = sb.post("/sandbox/code/audits/run", json!({})).await;
    assert_eq!(run["pushed"], json!([]));
    sb.advance(600).await;
    // Due: the status shows it before any push.
    assert_eq!(status(&sb, at, auditid).await["status"], 0);
    let run = sb.post("/sandbox/code/audits/run", json!({})).await;
    let pushed = run["pushed"].as_array().unwrap();
    assert_eq!(pushed.len(), 1, "{run}");
    assert_eq!(pushed[0]["event"], "weapp_audit_success");
    assert_eq!(pushed[0]["delivery"]["delivered"], true, "{run}");
    {
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 1);
        let xml = &log[0].body;
        assert_eq!(log[0].path, format!("/{MP1}"));
        assert_eq!(
            field(xml, "ToUserName").as_deref(),
            Some("gh_mp000000000001")
        );
        assert_eq!(field(xml, "MsgType").as_deref(), Some("event"));
        assert_eq!(field(xml, "Event").as_deref(), Some("weapp_audit_success"));
        assert!(field(xml, "SuccTime").is_some() && field(xml, "CreateTime").is_some());
        assert!(field(xml, "FromUserName").is_some());
    }
    // Pushed once: a second run sends nothing more.
    let run = sb.post("/sandbox/code/audits/run", json!({})).await;
    assert_eq!(run["pushed"], json!([]));

    let latest = sb
        .get(&format!("/wxa/get_latest_auditstatus?access_token={at}"))
        .await;
    assert_eq!(
        (latest["auditid"].as_i64(), latest["status"].as_i64()),
        (Some(auditid), Some(0))
    );
    assert_eq!(latest["user_version"], "1.0.0");
    // The release needs the literal `{}`: an empty body is 44002.
    let (_, v) = sb.send(sb.http.post(sb.url(&release))).await;
    assert_eq!(errcode(&v), 44002);
    assert_eq!(errcode(&sb.post(&release, json!({})).await), 0);
    assert_eq!(errcode(&sb.post(&release, json!({})).await), 85052);
    let p = sb.get(&format!("/sandbox/code/programs/{MP1}")).await;
    assert_eq!(p["program"]["released"]["user_version"], "1.0.0", "{p}");
    assert_eq!(
        p["program"]["audits"][0]["submission"],
        json!({ "version_desc": "v", "privacy_api_not_use": true })
    );
    let counts = sb.handle.call_count(MP1, "wxa/release");
    assert_eq!((counts.calls, counts.ok), (4, 1), "{counts:?}");
}

#[tokio::test]
async fn rejections_delays_lost_pushes_and_undo() {
    let sb = Sb::start().await;
    let (url, log) = message_receiver().await;
    sb.config(json!({ "message_callback_base": url, "audit_delay_secs": 60 }))
        .await;
    let ct = sb.component_token().await;
    let template = add_template(&sb, &ct, 2).await;
    let mps = bulk_mps(&sb, &ct, 1, 4).await;
    for (_, at) in &mps {
        assert_eq!(errcode(&commit(&sb, at, template, "1.1.0").await), 0);
    }
    let (rejected, delayed, lost, undone) = (&mps[0], &mps[1], &mps[2], &mps[3]);
    sb.post(
        &format!("/sandbox/code/programs/{}", rejected.0),
        json!({ "outcome": "reject", "reason": "bad<br>", "screenshot": "m1|m2" }),
    )
    .await;
    sb.post(
        &format!("/sandbox/code/programs/{}", delayed.0),
        json!({ "outcome": "delay", "reason": "queue" }),
    )
    .await;
    sb.post(
        "/sandbox/code/programs",
        json!({ "appids": [lost.0], "lose_push": true }),
    )
    .await;
    let mut ids = Vec::new();
    for (_, at) in &mps {
        ids.push(submit(&sb, at).await["auditid"].as_i64().unwrap());
    }
    // Undo the fourth: withdrawn; nothing left to undo.
    let undo = format!("/wxa/undocodeaudit?access_token={}", undone.1);
    assert_eq!(errcode(&sb.get(&undo).await), 0);
    assert_eq!(status(&sb, &undone.1, ids[3]).await["status"], 3);
    assert_eq!(errcode(&sb.get(&undo).await), 85012);

    sb.advance(60).await;
    let run = sb.post("/sandbox/code/audits/run", json!({})).await;
    let mut events: Vec<(String, String)> = run["pushed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["appid"].as_str().unwrap().to_string(),
                p["event"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    events.sort();
    assert_eq!(
        events,
        [
            (rejected.0.clone(), "weapp_audit_fail".to_string()),
            (delayed.0.clone(), "weapp_audit_delay".to_string()),
        ]
    );
    let fail = status(&sb, &rejected.1, ids[0]).await;
    assert_eq!(
        (
            fail["status"].as_i64(),
            fail["reason"].as_str(),
            fail["screenshot"].as_str()
        ),
        (Some(1), Some("bad<br>"), Some("m1|m2"))
    );
    let latest = sb
        .get(&format!(
            "/wxa/get_latest_auditstatus?access_token={}",
            rejected.1
        ))
        .await;
    assert_eq!(latest["ScreenShot"], "m1|m2", "{latest}");
    {
        let log = log.lock().unwrap();
        let fail = log
            .iter()
            .find(|c| field(&c.body, "Event").as_deref() == Some("weapp_audit_fail"))
            .unwrap();
        assert_eq!(field(&fail.body, "Reason").as_deref(), Some("bad<br>"));
        assert_eq!(field(&fail.body, "ScreenShot").as_deref(), Some("m1|m2"));
        assert!(field(&fail.body, "FailTime").is_some());
        let delay = log
            .iter()
            .find(|c| field(&c.body, "Event").as_deref() == Some("weapp_audit_delay"))
            .unwrap();
        assert_eq!(field(&delay.body, "Reason").as_deref(), Some("queue"));
        assert!(field(&delay.body, "DelayTime").is_some());
    }
    assert_eq!(status(&sb, &delayed.1, ids[1]).await["status"], 4);
    // The lost push: approved, but only polling tells.
    assert_eq!(status(&sb, &lost.1, ids[2]).await["status"], 0);
    let world = sb.get("/sandbox/code").await;
    assert_eq!(world["lost"][0]["appid"], json!(lost.0), "{world}");

    // The delayed audit ends approved after another delay; `all` finishes it now.
    assert_eq!(
        errcode(&submit(&sb, &delayed.1).await),
        85009,
        "still in review"
    );
    let run = sb
        .post("/sandbox/code/audits/run", json!({ "all": true }))
        .await;
    assert_eq!(run["pushed"][0]["event"], "weapp_audit_success", "{run}");
    assert_eq!(status(&sb, &delayed.1, ids[1]).await["status"], 0);

    // A rejected mini program may submit again.
    assert_eq!(errcode(&submit(&sb, &rejected.1).await), 0);
}

#[tokio::test]
async fn the_monthly_audit_quota_and_speed_ups() {
    let sb = Sb::start().await;
    sb.config(json!({ "audit_quota": 1, "speedup_quota": 1 }))
        .await;
    let ct = sb.component_token().await;
    let template = add_template(&sb, &ct, 1).await;
    let mps = bulk_mps(&sb, &ct, 10, 2).await;
    for (_, at) in &mps {
        commit(&sb, at, template, "1.0.0").await;
    }
    let first = submit(&sb, &mps[0].1).await;
    assert_eq!(errcode(&first), 0);
    assert_eq!(errcode(&submit(&sb, &mps[1].1).await), 85085);
    let q = sb
        .get(&format!("/wxa/queryquota?access_token={}", mps[1].1))
        .await;
    assert_eq!(
        (
            q["rest"].as_i64(),
            q["limit"].as_i64(),
            q["speedup_rest"].as_i64()
        ),
        (Some(0), Some(1), Some(1))
    );
    let speed = format!("/wxa/speedupaudit?access_token={}", mps[0].1);
    let id = first["auditid"].clone();
    assert_eq!(
        errcode(&sb.post(&speed, json!({ "auditid": 1 })).await),
        89402
    );
    assert_eq!(errcode(&sb.post(&speed, json!({ "auditid": id })).await), 0);
    assert_eq!(
        errcode(&sb.post(&speed, json!({ "auditid": id })).await),
        89404
    );
    // Sped up: half the hour is enough.
    sb.advance(1800).await;
    assert_eq!(
        status(&sb, &mps[0].1, id.as_i64().unwrap()).await["status"],
        0
    );
    // More quota: the second may submit.
    sb.config(json!({ "audit_quota": 2 })).await;
    assert_eq!(errcode(&submit(&sb, &mps[1].1).await), 0);
    // A new (30-day) month resets the count.
    assert_eq!(sb.get("/sandbox/code").await["quota"]["rest"], 0);
    sb.advance(30 * 86_400).await;
    let world = sb.get("/sandbox/code").await;
    assert_eq!(world["quota"]["rest"], 2, "{world}");
}

#[tokio::test]
async fn knobs_refuse_a_mini_program_and_faults_burst_with_counts_per_appid() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let template = add_template(&sb, &ct, 1).await;
    let mps = bulk_mps(&sb, &ct, 20, 3).await;
    sb.post(
        &format!("/sandbox/code/programs/{}", mps[0].0),
        json!({ "refuse": 61007 }),
    )
    .await;
    sb.post(
        &format!("/sandbox/code/programs/{}", mps[1].0),
        json!({ "refuse": 86000 }),
    )
    .await;
    assert_eq!(errcode(&commit(&sb, &mps[0].1, template, "1").await), 61007);
    assert_eq!(errcode(&commit(&sb, &mps[1].1, template, "1").await), 86000);
    let (s, v) = sb
        .post_status(
            &format!("/sandbox/code/programs/{}", mps[2].0),
            json!({ "refuse": 40001 }),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, _) = sb
        .post_status(&format!("/sandbox/code/programs/{OA1}"), json!({}))
        .await;
    assert_eq!(s, 400, "an official account has no code");
    sb.post(
        &format!("/sandbox/code/programs/{}", mps[0].0),
        json!({ "refuse": null }),
    )
    .await;
    assert_eq!(errcode(&commit(&sb, &mps[0].1, template, "1").await), 0);

    // A 45009 burst on commit: the next two calls, whoever makes them.
    sb.post(
        "/sandbox/faults",
        json!({ "api": "wxa/commit", "errcode": 45009, "count": 2 }),
    )
    .await;
    assert_eq!(errcode(&commit(&sb, &mps[2].1, template, "1").await), 45009);
    assert_eq!(errcode(&commit(&sb, &mps[2].1, template, "1").await), 45009);
    assert_eq!(errcode(&commit(&sb, &mps[2].1, template, "1").await), 0);

    let counts = sb.get("/sandbox/calls/counts").await;
    assert_eq!(
        counts[&mps[2].0]["wxa/commit"],
        json!({ "calls": 3, "ok": 1 })
    );
    assert_eq!(
        counts[&mps[0].0]["wxa/commit"],
        json!({ "calls": 2, "ok": 1 })
    );
    assert_eq!(counts[APPID]["wxa/addtotemplate"]["ok"], 1, "{counts}");
    sb.handle.clear_calls();
    assert_eq!(sb.handle.call_count(&mps[2].0, "wxa/commit").calls, 0);
}

#[tokio::test]
async fn gray_release_and_rollback() {
    let sb = Sb::start().await;
    sb.config(json!({ "audit_delay_secs": 0 })).await;
    let ct = sb.component_token().await;
    let template = add_template(&sb, &ct, 1).await;
    let (atm, _) = sb.authorizer(&ct, MP1, None).await;
    let at = atm.as_str();
    let gray = format!("/wxa/grayrelease?access_token={at}");
    let release = format!("/wxa/release?access_token={at}");
    let revert = format!("/wxa/revertcoderelease?access_token={at}");
    let plan = format!("/wxa/getgrayreleaseplan?access_token={at}");

    // Version 1 live (no gray possible before anything is live).
    commit(&sb, at, template, "1.0.0").await;
    submit(&sb, at).await;
    assert_eq!(
        errcode(&sb.post(&gray, json!({ "gray_percentage": 10 })).await),
        85079
    );
    assert_eq!(
        errcode(&sb.get(&revert).await),
        87012,
        "nothing to roll back to"
    );
    assert_eq!(errcode(&sb.post(&release, json!({})).await), 0);
    // Version 2 approved: gray to 10 %, then wider only.
    commit(&sb, at, template, "2.0.0").await;
    submit(&sb, at).await;
    assert_eq!(
        errcode(&sb.post(&gray, json!({ "gray_percentage": 101 })).await),
        85081
    );
    assert_eq!(
        errcode(&sb.post(&gray, json!({ "gray_percentage": 0 })).await),
        85081
    );
    assert_eq!(
        errcode(&sb.post(&gray, json!({ "gray_percentage": 10 })).await),
        0
    );
    assert_eq!(
        errcode(&sb.post(&gray, json!({ "gray_percentage": 5 })).await),
        85082
    );
    let p = sb.get(&plan).await;
    assert_eq!(
        (
            p["gray_release_plan"]["status"].as_i64(),
            p["gray_release_plan"]["gray_percentage"].as_i64()
        ),
        (Some(1), Some(10))
    );
    assert_eq!(errcode(&sb.get(&revert).await), 87011, "gray running");
    assert_eq!(
        errcode(
            &sb.get(&format!("/wxa/revertgrayrelease?access_token={at}"))
                .await
        ),
        0
    );
    assert_eq!(sb.get(&plan).await["gray_release_plan"]["status"], 4);
    assert_eq!(errcode(&sb.post(&release, json!({})).await), 0);

    let history = sb
        .get(&format!("{revert}&action=get_history_version"))
        .await;
    assert_eq!(
        history["version_list"][0]["user_version"], "1.0.0",
        "{history}"
    );
    assert_eq!(
        errcode(&sb.get(&format!("{revert}&app_version=99")).await),
        87012
    );
    assert_eq!(errcode(&sb.get(&revert).await), 0);
    let p = sb.get(&format!("/sandbox/code/programs/{MP1}")).await;
    assert_eq!(p["program"]["released"]["user_version"], "1.0.0", "{p}");
}
