//! Fleet releases (IAM): `POST /releases` creates a job, `GET /releases/{id}` shows its counts
//! and a page of targets (`?state=&cursor=&limit=`), `POST /releases/{id}/cancel`
//! (`{"undo_audits"?: bool}`) stops new steps. The work itself runs in `release-worker`.

use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};
use serde_json::{Value, json};
use wxopen::clock::{Clock, SystemClock};
use wxopen::http::views::{release_job_json, release_target_json};
use wxopen::http::{ApiError, json_object_within, json_response, path_param, query_param};
use wxopen::model::TargetState;
use wxopen::queue::{SqsQueue, WorkQueue};
use wxopen::releases::{self, NewRelease, ReleaseError};
use wxopen::runtime::{FromRuntime, Runtime};
use wxopen::store::{AuthorizerStore, DynamoStore, LinkStore, ReleaseStore};

pub struct App<S, Q, K> {
    pub store: S,
    pub queue: Q,
    pub clock: K,
}

impl<C> FromRuntime<C> for App<DynamoStore, SqsQueue, SystemClock> {
    fn from_runtime(rt: Runtime<C>) -> Self {
        Self {
            queue: SqsQueue::new(
                aws_sdk_sqs::Client::new(&rt.aws),
                rt.config.release_queue_url.clone().unwrap_or_default(),
            ),
            store: rt.store,
            clock: SystemClock,
        }
    }
}

/// A request body holds at most 10,000 appids (about 25 bytes each) and the audit fields.
pub const MAX_BODY_BYTES: usize = 512 * 1024;
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 100;

pub async fn handle<S, Q, K>(app: &App<S, Q, K>, req: Request) -> Result<Response<Body>, Error>
where
    S: ReleaseStore + AuthorizerStore + LinkStore,
    Q: WorkQueue,
    K: Clock,
{
    Ok(process(app, &req)
        .await
        .unwrap_or_else(ApiError::into_response))
}

fn release_error(e: &ReleaseError) -> ApiError {
    if matches!(e, ReleaseError::Store(_) | ReleaseError::Queue(_)) {
        tracing::error!(error = %e, "release request failed");
    }
    ApiError::from(e)
}

async fn process<S, Q, K>(app: &App<S, Q, K>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: ReleaseStore + AuthorizerStore + LinkStore,
    Q: WorkQueue,
    K: Clock,
{
    let Some(id) = path_param(req, "id") else {
        if req.method() != Method::POST {
            return Err(ApiError::method_not_allowed("POST"));
        }
        return create(app, req).await;
    };
    let cancel = req.uri().path().trim_end_matches('/').ends_with("/cancel");
    match (cancel, req.method()) {
        (true, &Method::POST) | (false, &Method::GET) => {}
        (true, _) => return Err(ApiError::method_not_allowed("POST")),
        (false, _) => return Err(ApiError::method_not_allowed("GET")),
    }
    if !releases::is_job_id(&id) {
        return Err(ApiError::new(
            404,
            "unknown_release",
            "no release job with this id",
        ));
    }
    if cancel {
        let body = json_object_within(req, 1024)?.unwrap_or_default();
        if let Some(k) = body.keys().find(|k| *k != "undo_audits") {
            return Err(ApiError::new(
                400,
                "invalid_parameter",
                format!("unknown field `{}`", k.chars().take(64).collect::<String>()),
            ));
        }
        let undo = match body.get("undo_audits") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(ApiError::new(
                    400,
                    "invalid_parameter",
                    "undo_audits must be true or false",
                ));
            }
        };
        let job = releases::cancel_job(&app.store, &app.queue, &id, undo, app.clock.now())
            .await
            .map_err(|e| release_error(&e))?;
        return Ok(json_response(200, &release_job_json(&job)));
    }
    show(app, req, &id).await
}

async fn create<S, Q, K>(app: &App<S, Q, K>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: ReleaseStore + AuthorizerStore + LinkStore,
    Q: WorkQueue,
    K: Clock,
{
    let body = json_object_within(req, MAX_BODY_BYTES)?.ok_or_else(|| {
        ApiError::new(
            400,
            "missing_parameter",
            "send the release as a JSON object",
        )
    })?;
    let new = NewRelease::parse(&Value::Object(body)).map_err(|e| release_error(&e))?;
    let (job, _) = releases::create_job(&app.store, &app.queue, new, app.clock.now())
        .await
        .map_err(|e| release_error(&e))?;
    Ok(json_response(
        201,
        &json!({"id": job.id, "state": job.state.as_str(), "targets": job.total}),
    ))
}

async fn show<S, Q, K>(
    app: &App<S, Q, K>,
    req: &Request,
    id: &str,
) -> Result<Response<Body>, ApiError>
where
    S: ReleaseStore,
{
    let state = match query_param(req, "state").as_deref() {
        None | Some("") => None,
        Some(s) => Some(TargetState::parse(s).ok_or_else(|| {
            ApiError::new(
                400,
                "invalid_parameter",
                "state must be one of queued, committed, submitted, approved, released, rejected, failed, skipped, cancelled",
            )
        })?),
    };
    let cursor = match query_param(req, "cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(c.parse::<u32>().map_err(|_| {
            ApiError::new(
                400,
                "invalid_parameter",
                "cursor must be a next_cursor from a previous page",
            )
        })?),
    };
    let limit = match query_param(req, "limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::new(
                    400,
                    "invalid_parameter",
                    format!("limit must be 1 to {MAX_LIMIT}"),
                )
            })?,
    };
    let job = app
        .store
        .get_job(id)
        .await
        .map_err(|e| ApiError::from(&e))?
        .ok_or_else(|| ApiError::new(404, "unknown_release", "no release job with this id"))?;
    let (targets, next) = app
        .store
        .list_targets(id, state, limit, cursor)
        .await
        .map_err(|e| ApiError::from(&e))?;
    let mut view = release_job_json(&job);
    if let Some(obj) = view.as_object_mut() {
        obj.insert(
            "targets".into(),
            targets.iter().map(release_target_json).collect(),
        );
        obj.insert("next_cursor".into(), json!(next.map(|n| n.to_string())));
    }
    Ok(json_response(200, &view))
}
