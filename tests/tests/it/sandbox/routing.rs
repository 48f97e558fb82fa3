//! Routing by the API table: every API answers at WeChat's path with its method and token
//! rules, whatever its host prefix (`/cgi-bin/`, `/wxa/`, `/sns/`); paths WeChat does not serve
//! answer 40066 "invalid url" with HTTP 404.

use super::*;

fn wrong_method(spec: &sandbox::ApiSpec) -> (reqwest::Method, i64) {
    match spec.method {
        sandbox::Method::Get => (reqwest::Method::POST, 43001),
        sandbox::Method::Post | sandbox::Method::Upload => (reqwest::Method::GET, 43002),
    }
}

#[tokio::test]
async fn every_api_in_the_table_checks_its_method_and_token_over_http() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let (at, _) = sb.authorizer(&ct, OA1, None).await;
    assert!(sandbox::APIS.len() >= 18, "the table lists every API");
    for spec in sandbox::APIS {
        let url = sb.url(spec.path);
        let (method, code) = wrong_method(spec);
        let (s, v) = sb.send(sb.http.request(method, &url)).await;
        assert_eq!((s, errcode(&v)), (200, code), "{}: wrong method", spec.name);
        let right = match spec.method {
            sandbox::Method::Get => reqwest::Method::GET,
            sandbox::Method::Post | sandbox::Method::Upload => reqwest::Method::POST,
        };
        let with_body = |req: reqwest::RequestBuilder| match spec.method {
            sandbox::Method::Get | sandbox::Method::Upload => req,
            sandbox::Method::Post => req.json(&json!({ "component_appid": APPID })),
        };
        // (query parameter, whether it takes the component token); the template library's
        // parameter is the sandbox's default, `access_token`.
        let wants = match spec.token {
            sandbox::Token::None => None,
            sandbox::Token::Component(param) => Some((param, true)),
            sandbox::Token::Authorizer(param) => Some((param, false)),
            sandbox::Token::Template => Some(("access_token", true)),
        };
        match wants {
            None => {}
            Some((param, component)) => {
                // No token: 41001. Unknown token: 40001. The other kind's token: 40001.
                let (_, v) = sb
                    .send(with_body(sb.http.request(right.clone(), &url)))
                    .await;
                assert_eq!(errcode(&v), 41001, "{}: no token: {v}", spec.name);
                let (_, v) = sb
                    .send(with_body(
                        sb.http
                            .request(right.clone(), &url)
                            .query(&[(param, "not-a-token")]),
                    ))
                    .await;
                assert_eq!(errcode(&v), 40001, "{}: unknown token: {v}", spec.name);
                let other = if component { &at } else { &ct };
                let (_, v) = sb
                    .send(with_body(
                        sb.http
                            .request(right.clone(), &url)
                            .query(&[(param, other.as_str())]),
                    ))
                    .await;
                assert_eq!(errcode(&v), 40001, "{}: other token kind: {v}", spec.name);
            }
        }
    }
    // Every one of those calls is in the log under the API's name.
    let calls = sb.handle.calls();
    for spec in sandbox::APIS {
        let (_, code) = wrong_method(spec);
        assert!(
            calls
                .iter()
                .any(|c| c.api == spec.name && c.errcode == code),
            "{} logged",
            spec.name
        );
        assert_eq!(sandbox::Api::from_name(spec.name), Some(spec.api));
    }
}

#[tokio::test]
async fn unknown_paths_answer_40066_on_every_wechat_prefix() {
    let sb = Sb::start().await;
    for path in [
        "/cgi-bin/no/such/api",
        "/cgi-bin/component/no_such_api",
        "/wxa/no_such_api",
        "/wxaapi/newtmpl/no_such_api",
        "/sns/no/such/api",
        "/nothing",
        "/",
    ] {
        for method in [reqwest::Method::GET, reqwest::Method::POST] {
            let (s, v) = sb.send(sb.http.request(method.clone(), sb.url(path))).await;
            assert_eq!((s, errcode(&v)), (404, 40066), "{method} {path}: {v}");
            assert!(
                v["errmsg"].as_str().unwrap().starts_with("invalid url"),
                "{v}"
            );
        }
    }
    // A known API is found with a trailing slash too, and nothing unknown was logged.
    let (_, v) = sb.send(sb.http.get(sb.url("/wxa/get_category/"))).await;
    assert_eq!(errcode(&v), 41001, "{v}");
    let apis: Vec<String> = sb.handle.calls().into_iter().map(|c| c.api).collect();
    assert_eq!(apis, ["wxa/get_category"]);
}

#[tokio::test]
async fn faults_and_quotas_know_the_new_apis_by_name() {
    let sb = Sb::start().await;
    let ct = sb.component_token().await;
    let (atm, _) = sb.authorizer(&ct, MP1, None).await;
    sb.post(
        "/sandbox/faults",
        json!({ "api": "wxa/get_category", "errcode": -1 }),
    )
    .await;
    let get = format!("/wxa/get_category?access_token={atm}");
    assert_eq!(errcode(&sb.get(&get).await), -1);
    assert_eq!(errcode(&sb.get(&get).await), 0);
    sb.config(json!({ "daily_quota": { "wxa/get_category": 1 } }))
        .await;
    assert_eq!(errcode(&sb.get(&get).await), 45009);
    let (s, v) = sb
        .post_status("/sandbox/faults", json!({ "api": "wxa/no_such_api" }))
        .await;
    assert_eq!(s, 400);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("sns/component/jscode2session"),
        "the error lists the known APIs: {v}"
    );
}
