//! JSON views of records, as the internal routes show them (never a token).

use crate::authorization::link_status;
use crate::identity;
use crate::login_codes::Redeemed;
use crate::model::{
    AccountKind, AuthorizationLink, AuthorizerRecord, AuthorizerState, Identity, LoginSession,
    LoginStatus,
};
use crate::permissions;
use crate::store::{IdentityStore, StoreError};

/// A mini program's code record (`GET /authorizers/{appid}/code` and every code route).
pub fn code_json(r: &crate::model::CodeRecord) -> serde_json::Value {
    serde_json::json!({
        "appid": r.appid,
        "committed": r.template_id.map(|template_id| serde_json::json!({
            "template_id": template_id,
            "user_version": r.user_version,
            "user_desc": r.user_desc,
            "committed_at": r.committed_at,
        })),
        "audit": r.audit.as_ref().map(|a| serde_json::json!({
            "auditid": a.auditid,
            "state": a.state.as_str(),
            "reason": a.reason,
            "screenshots": a.screenshots,
            "template_id": a.template_id,
            "user_version": a.user_version,
            "submitted_at": a.submitted_at,
            "updated_at": a.updated_at,
        })),
        "released": r.released,
        "gray": r.gray,
        "reverted_at": r.reverted_at,
        "reverted_to": r.reverted_to,
        "updated_at": r.updated_at,
    })
}

/// The public view of an authorizer (never a token).
pub fn authorizer_json(r: &AuthorizerRecord) -> serde_json::Value {
    let kind = r.profile.as_ref().map(|p| p.kind);
    let state = match r.state {
        AuthorizerState::Authorized => "authorized",
        AuthorizerState::Unauthorized => "unauthorized",
        AuthorizerState::NeedsReauth => "needs_reauth",
    };
    serde_json::json!({
        "appid": r.appid,
        "customer_ref": r.customer_ref,
        "link_id": r.link_id,
        "type": kind.map(|k| match k {
            AccountKind::OfficialAccount => "official_account",
            AccountKind::MiniProgram => "mini_program",
        }),
        "nick_name": r.profile.as_ref().map(|p| p.nick_name.clone()),
        "user_name": r.profile.as_ref().map(|p| p.user_name.clone()),
        "principal_name": r.profile.as_ref().and_then(|p| p.principal_name.clone()),
        "service_type": r.profile.as_ref().map(|p| p.service_type),
        "verify_type": r.profile.as_ref().map(|p| p.verify_type),
        "state": state,
        "state_reason": r.state_reason,
        "last_error": r.last_error,
        "failing_since": r.failing_since,
        "permission_sets": permission_sets(kind, &r.func_info),
        "authorized_at": r.authorized_at,
        "updated_at": r.updated_at,
        "open_appid": r.open_appid,
    })
}

fn permission_sets(kind: Option<AccountKind>, func_info: &[u32]) -> Vec<serde_json::Value> {
    func_info
        .iter()
        .map(|id| {
            serde_json::json!({
                "id": id,
                "name": permissions::name(kind, *id),
            })
        })
        .collect()
}

/// `GET /authorize/links/{id}`: the link's outcome, with the authorizer's permission sets once
/// it is authorized (never the pre-auth code).
pub fn link_json(
    link: &AuthorizationLink,
    authorizer: Option<&AuthorizerRecord>,
    now: i64,
) -> serde_json::Value {
    let mut body = serde_json::json!({
        "id": link.id,
        "customer_ref": link.customer_ref,
        "status": link_status(link, now),
        "created_at": link.created_at,
        "expires_at": link.expires_at,
        "return_to": link.return_to,
    });
    if let (Some(appid), Some(obj)) = (&link.authorizer_appid, body.as_object_mut()) {
        obj.insert("authorizer_appid".into(), appid.clone().into());
        obj.insert("authorized_at".into(), link.authorized_at.into());
        if let Some(r) = authorizer {
            let kind = r.profile.as_ref().map(|p| p.kind);
            obj.insert(
                "permission_sets".into(),
                permission_sets(kind, &r.func_info).into(),
            );
        }
    }
    body
}

/// The status body of `GET /login/sessions/{id}`.
pub async fn login_session_json<S: IdentityStore>(
    store: &S,
    session: &LoginSession,
    now: i64,
) -> Result<serde_json::Value, StoreError> {
    Ok(match session.status {
        LoginStatus::Pending if session.expires_at <= now => serde_json::json!({
            "id": session.id, "status": "expired", "appid": session.appid, "expires_at": session.expires_at,
        }),
        LoginStatus::Pending => serde_json::json!({
            "id": session.id, "status": "pending", "appid": session.appid, "qr_url": session.qr_url,
            "expires_at": session.expires_at,
        }),
        LoginStatus::Confirmed => {
            // The apps of the person's UnionID identity (none without a UnionID).
            let linked: Vec<String> = match (&session.unionid, &session.identity_id) {
                (Some(_), Some(id)) => identity::resolve(store, id)
                    .await?
                    .map(|i| i.apps.into_keys().collect())
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            serde_json::json!({
                "id": session.id,
                "status": "confirmed",
                "appid": session.appid,
                "openid": session.openid,
                "unionid": session.unionid,
                "unionid_missing_reason": session.unionid_missing_reason,
                "known_user": session.known_user,
                "linked_appids": linked,
                "confirmed_at": session.confirmed_at,
                "identity_id": session.identity_id,
                "conflict": session.conflict,
            })
        }
    })
}

/// An identity as `GET /identities/{id}` shows it.
pub fn identity_json(i: &Identity) -> serde_json::Value {
    let mut flows: Vec<&str> = i
        .apps
        .values()
        .flat_map(|a| a.flows.keys().map(String::as_str))
        .collect();
    flows.sort_unstable();
    flows.dedup();
    serde_json::json!({
        "id": i.id,
        "unionid": i.unionid,
        "user_id": i.user_id,
        "apps": i.apps.iter().map(|(appid, a)| serde_json::json!({
            "appid": appid,
            "openid": a.openid,
            "first_seen": a.first_seen,
            "last_seen": a.last_seen,
            "flows": a.flows.keys().collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "flows": flows,
        "first_seen": i.first_seen,
        "last_seen": i.last_seen,
        "conflict": i.conflict,
    })
}

/// A redeemed login code (`POST /login/codes/{code}`); `conflict` only when there is one.
pub fn redeemed_json(r: &Redeemed) -> serde_json::Value {
    let mut v = serde_json::json!({
        "flow": r.flow.as_str(),
        "appid": r.appid,
        "openid": r.openid,
        "unionid": r.unionid,
        "identity_id": r.identity_id,
        "user_id": r.user_id,
        "known_user": r.known_user,
    });
    if let (Some(c), Some(obj)) = (&r.conflict, v.as_object_mut()) {
        obj.insert("conflict".into(), serde_json::json!(c));
    }
    v
}

/// `GET /fast-registrations/{id}` (and the 201 of `POST`, with `qr_code` added): never the
/// phone in full, never a code or ticket.
pub fn registration_json(r: &crate::model::Registration, now: i64) -> serde_json::Value {
    let masked_phone = match r.component_phone.get(..3).zip(r.component_phone.get(7..)) {
        Some((head, tail)) => format!("{head}****{tail}"),
        None => "****".to_string(),
    };
    serde_json::json!({
        "id": r.id,
        "kind": match r.kind {
            crate::model::RegistrationKind::Enterprise => "enterprise",
            crate::model::RegistrationKind::OfficialAccount => "official_account",
        },
        "state": crate::registration::state_name(r, now),
        "customer_ref": r.customer_ref,
        "name": r.name,
        "code": r.code,
        "component_phone": masked_phone,
        "oa_appid": r.oa_appid,
        "taskid": r.taskid,
        "authorize_url": r.authorize_url,
        "appid": r.appid,
        "wechat_status": r.wechat_status,
        "status_meaning": r.status_meaning,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "expires_at": r.expires_at,
    })
}

/// `GET /status`: the platform at a glance (times in Unix seconds; no token, no ticket).
pub fn status_json(s: &crate::status::PlatformStatus) -> serde_json::Value {
    serde_json::json!({
        "now": s.now,
        "ticket": s.ticket.as_ref().map(|t| serde_json::json!({
            "received_at": t.received_at,
            "age_seconds": t.age_secs,
        })),
        "component_token": s.component_token.as_ref().map(|t| serde_json::json!({
            "expires_at": t.expires_at,
            "expires_in_seconds": t.expires_in_secs,
            "failing_since": t.failing_since,
            "last_error": t.last_error,
        })),
        "authorizers": {
            "authorized": s.authorizers.authorized,
            "unauthorized": s.authorizers.unauthorized,
            "needs_reauth": s.authorizers.needs_reauth,
            "truncated": s.authorizers.truncated,
        },
        "tokens_failing": {
            "count": s.failing_count,
            "authorizers": s.failing.iter().map(|f| serde_json::json!({
                "appid": f.appid,
                "failing_since": f.failing_since,
                "last_error": f.last_error,
            })).collect::<Vec<_>>(),
        },
        "outbox": {
            "count": s.outbox.count,
            "oldest_age_seconds": s.outbox.oldest_age_secs,
            "truncated": s.outbox.truncated,
        },
        "releases": {
            "running": s.releases.running,
            "cancelling": s.releases.cancelling,
            "waiting_quota": s.releases.waiting_quota,
            "stalled": s.releases.stalled,
            "stall_after_seconds": s.releases.stall_after_secs,
            "truncated": s.releases.truncated,
            "jobs": s.releases.jobs.iter().map(|j| serde_json::json!({
                "id": j.id,
                "state": j.state.as_str(),
                "created_at": j.created_at,
                "total": j.total,
                "open_targets": j.open_targets,
                "counts": j.counts.iter().map(|(k, v)| (k.as_str().to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
                "quota_wait": j.quota_wait,
                "idle_seconds": j.idle_secs,
                "stalled": j.stalled,
            })).collect::<Vec<_>>(),
        },
    })
}

/// A release target as `GET /releases/{id}` shows it.
pub fn release_target_json(t: &crate::model::ReleaseTarget) -> serde_json::Value {
    serde_json::json!({
        "seq": t.seq,
        "appid": t.appid,
        "state": t.state.as_str(),
        "auditid": t.auditid,
        "reason": t.reason,
        "errcode": t.errcode,
        "attempts": t.attempts,
        "step_in_progress": t.intent.map(|i| i.step.as_str()),
        "waiting_quota": t.waiting_quota,
        "updated_at": t.updated_at,
        "committed_at": t.committed_at,
        "submitted_at": t.submitted_at,
        "finished_at": t.finished_at,
    })
}

/// A release job: its settings, counts per target state (every state, zeros included).
pub fn release_job_json(j: &crate::model::ReleaseJob) -> serde_json::Value {
    let counts: serde_json::Map<String, serde_json::Value> = crate::model::TargetState::ALL
        .iter()
        .map(|s| {
            (
                s.as_str().to_string(),
                j.counts.get(s).copied().unwrap_or(0).into(),
            )
        })
        .collect();
    serde_json::json!({
        "id": j.id,
        "state": j.state.as_str(),
        "template_id": j.template_id,
        "user_version": j.user_version,
        "user_desc": j.user_desc,
        "auto_release": j.auto_release,
        "concurrency": j.concurrency,
        "total": j.total,
        "counts": counts,
        "quota_wait": j.quota_wait,
        "undo_audits": j.undo_audits,
        "created_at": j.created_at,
        "updated_at": j.updated_at,
    })
}
