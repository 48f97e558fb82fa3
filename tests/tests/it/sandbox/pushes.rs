//! Push delivery: retries after a slow attempt, giving up after the configured attempts.

use super::*;

#[tokio::test]
async fn push_is_retried_after_a_slow_first_attempt() {
    let hits = Arc::new(AtomicU32::new(0));
    let h = hits.clone();
    let log: Log = Arc::default();
    let l = log.clone();
    let url = receiver(move |c| {
        let h = h.clone();
        let l = l.clone();
        async move {
            l.lock().unwrap().push(c);
            if h.fetch_add(1, Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(2000)).await;
            }
            (200, "success".to_string())
        }
    })
    .await;
    let sb = Sb::with(SandboxConfig {
        component_callback_url: Some(url),
        push_deadline: Duration::from_millis(500),
        ..SandboxConfig::default()
    })
    .await;
    let v = sb.post("/sandbox/push/ticket", json!({})).await;
    assert_eq!(v["delivery"]["attempts"], 2, "{v}");
    assert_eq!(v["delivery"]["delivered"], true);
    let pushes = sb.get("/sandbox/pushes").await;
    let pushes = pushes.as_array().unwrap();
    assert_eq!(pushes.len(), 2);
    assert_eq!(pushes[0]["error"], "timeout");
    assert_eq!(pushes[0]["delivered"], false);
    assert_eq!(pushes[1]["delivered"], true);
    assert_eq!(pushes[0]["push_id"], pushes[1]["push_id"]);
    let second = log.lock().unwrap()[1].clone();
    let plain = open_push(&second);
    assert_eq!(
        field(&plain, "ComponentVerifyTicket"),
        v["ticket"].as_str().map(String::from)
    );
}

#[tokio::test]
async fn push_gives_up_after_the_configured_attempts() {
    let url = receiver(|_| async { (200, "not success".to_string()) }).await;
    let sb = Sb::start().await;
    sb.handle.set_callbacks(Some(url), None);
    let v = sb.post("/sandbox/push/ticket", json!({})).await;
    assert_eq!(v["delivery"]["attempts"], 3);
    assert_eq!(v["delivery"]["delivered"], false);
    assert_eq!(v["delivery"]["body"], "not success");
    assert_eq!(sb.handle.pushes().len(), 3);
}
