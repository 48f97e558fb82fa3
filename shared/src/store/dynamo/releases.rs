//! Fleet releases: the job item (counts per target state as `n_<state>` numbers, moved with
//! every transition in one transaction), its targets in the job's partition, the open jobs and
//! the audits in flight.

use std::collections::HashMap;
use std::ops::Range;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{PutRequest, ReturnValue, TransactWriteItem, Update, WriteRequest};

use super::*;
use crate::store::releases::{BeginStep, ReleaseStore};

const JOB_SK: &str = "JOB";
const OPEN_JOBS_PK: &str = "RELEASES";
const AUDITS_PK: &str = "RELEASE_AUDITS";
const TARGET_PREFIX: &str = "T#";

fn job_pk(id: &str) -> String {
    format!("RELEASE#{id}")
}
fn target_sk(seq: u32) -> String {
    format!("{TARGET_PREFIX}{seq:06}")
}
fn count_attr(state: TargetState) -> String {
    format!("n_{}", state.as_str())
}

type Item = HashMap<String, AttributeValue>;

fn job_item(job: &ReleaseJob) -> Result<Item, StoreError> {
    let mut item: Item = to_item(job)?;
    item.remove("counts");
    for (state, count) in &job.counts {
        item.insert(count_attr(*state), n(*count));
    }
    item.insert("pk".into(), s(job_pk(&job.id)));
    item.insert("sk".into(), s(JOB_SK));
    Ok(item)
}

fn job_from_item(mut item: Item) -> Result<ReleaseJob, StoreError> {
    let mut counts = std::collections::BTreeMap::new();
    for state in TargetState::ALL {
        if let Some(AttributeValue::N(v)) = item.remove(&count_attr(state)) {
            let v: i64 = v.parse().unwrap_or(0);
            if v != 0 {
                counts.insert(state, v);
            }
        }
    }
    item.remove("pk");
    item.remove("sk");
    let mut job: ReleaseJob = from_item(item)?;
    job.counts = counts;
    Ok(job)
}

fn target_item(t: &ReleaseTarget) -> Result<Item, StoreError> {
    let mut item: Item = to_item(t)?;
    item.insert("pk".into(), s(job_pk(&t.job_id)));
    item.insert("sk".into(), s(target_sk(t.seq)));
    Ok(item)
}

fn target_from_item(mut item: Item) -> Result<ReleaseTarget, StoreError> {
    item.remove("pk");
    item.remove("sk");
    item.remove("intent_until");
    Ok(from_item(item)?)
}

/// True when a transaction was cancelled only by a condition that did not hold.
fn transaction_condition_failed<R>(e: &SdkError<TransactWriteItemsError, R>) -> bool {
    matches!(
        e.as_service_error(),
        Some(TransactWriteItemsError::TransactionCanceledException(t))
            if t.cancellation_reasons().iter().any(|r| r.code() == Some("ConditionalCheckFailed"))
    )
}

impl DynamoStore {
    async fn batch_put(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let mut requests = Vec::with_capacity(25);
            for item in items.by_ref().take(25) {
                requests.push(
                    WriteRequest::builder()
                        .put_request(PutRequest::builder().set_item(Some(item)).build()?)
                        .build(),
                );
            }
            let mut pending = Some(HashMap::from([(self.table.clone(), requests)]));
            for _ in 0..8 {
                let Some(batch) = pending.take().filter(|m| m.values().any(|v| !v.is_empty()))
                else {
                    break;
                };
                let out = self
                    .client
                    .batch_write_item()
                    .set_request_items(Some(batch))
                    .send()
                    .await?;
                pending = out.unprocessed_items;
            }
        }
        Ok(())
    }
}

impl ReleaseStore for DynamoStore {
    async fn create_job(
        &self,
        job: &ReleaseJob,
        targets: &[ReleaseTarget],
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(job_item(job)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await?;
        let mut items = Vec::with_capacity(targets.len() + 1);
        items.push(HashMap::from([
            ("pk".to_string(), s(OPEN_JOBS_PK)),
            ("sk".to_string(), s(&job.id)),
            ("created_at".to_string(), n(job.created_at)),
        ]));
        for t in targets {
            items.push(target_item(t)?);
        }
        self.batch_put(items).await
    }

    async fn get_job(&self, id: &str) -> Result<Option<ReleaseJob>, StoreError> {
        self.get(job_pk(id), JOB_SK)
            .await?
            .map(job_from_item)
            .transpose()
    }

    async fn get_target(
        &self,
        job_id: &str,
        seq: u32,
    ) -> Result<Option<ReleaseTarget>, StoreError> {
        self.get(job_pk(job_id), &target_sk(seq))
            .await?
            .map(target_from_item)
            .transpose()
    }

    async fn list_targets(
        &self,
        job_id: &str,
        state: Option<TargetState>,
        limit: usize,
        after: Option<u32>,
    ) -> Result<(Vec<ReleaseTarget>, Option<u32>), StoreError> {
        let mut out = Vec::new();
        let mut start = after.map(|seq| {
            HashMap::from([
                ("pk".to_string(), s(job_pk(job_id))),
                ("sk".to_string(), s(target_sk(seq))),
            ])
        });
        loop {
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :t)")
                .expression_attribute_values(":pk", s(job_pk(job_id)))
                .expression_attribute_values(":t", s(TARGET_PREFIX))
                .consistent_read(true)
                .set_limit(i32::try_from((limit - out.len()).clamp(1, 1000)).ok())
                .set_exclusive_start_key(start.take());
            if let Some(state) = state {
                req = req
                    .filter_expression("#st = :s")
                    .expression_attribute_names("#st", "state")
                    .expression_attribute_values(":s", s(state.as_str()));
            }
            let page = req.send().await?;
            for item in page.items.unwrap_or_default() {
                out.push(target_from_item(item)?);
            }
            start = page.last_evaluated_key;
            if out.len() >= limit || start.is_none() {
                let next = if start.is_some() || out.len() > limit {
                    out.truncate(limit);
                    out.last().map(|t| t.seq)
                } else {
                    None
                };
                return Ok((out, next));
            }
        }
    }

    async fn dispatch(
        &self,
        job_id: &str,
        count: u32,
    ) -> Result<(Range<u32>, Option<ReleaseJob>), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(job_pk(job_id)))
            .key("sk", s(JOB_SK))
            .update_expression("ADD dispatched :n")
            .condition_expression("dispatched < #total")
            .expression_attribute_names("#total", "total")
            .expression_attribute_values(":n", n(i64::from(count)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => {
                let job = out.attributes.map(job_from_item).transpose()?;
                let range = job.as_ref().map_or(0..0, |j| {
                    j.dispatched.saturating_sub(count)..j.dispatched.min(j.total)
                });
                Ok((range, job))
            }
            Err(e) if condition_failed(&e) => Ok((0..0, self.get_job(job_id).await?)),
            Err(e) => Err(e.into()),
        }
    }

    async fn begin_step(
        &self,
        job_id: &str,
        seq: u32,
        state: TargetState,
        intent: Intent,
        now: i64,
    ) -> Result<BeginStep, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(job_pk(job_id)))
            .key("sk", s(target_sk(seq)))
            .update_expression(
                "SET intent = :i, intent_until = :u, updated_at = :now, attempts = if_not_exists(attempts, :zero) + :one",
            )
            .condition_expression(
                "#st = :s AND (attribute_not_exists(intent_until) OR intent_until < :now)",
            )
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":i", serde_dynamo::to_attribute_value(intent)?)
            .expression_attribute_values(":u", n(intent.until))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":s", s(state.as_str()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let old = out
                    .attributes
                    .and_then(|mut a| a.remove("intent"))
                    .filter(|v| !matches!(v, AttributeValue::Null(_)))
                    .map(serde_dynamo::from_attribute_value::<_, Intent>)
                    .transpose()?;
                Ok(old.map_or(BeginStep::Fresh, BeginStep::Reconcile))
            }
            Err(e) if condition_failed(&e) => match self.get_target(job_id, seq).await? {
                Some(t) if t.state == state => Ok(BeginStep::Busy),
                _ => Ok(BeginStep::Moved),
            },
            Err(e) => Err(e.into()),
        }
    }

    async fn transition(
        &self,
        job_id: &str,
        seq: u32,
        from: TargetState,
        to: TargetState,
        update: &TargetUpdate,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut set = vec!["#st = :to", "updated_at = :now"];
        let mut values: Item = HashMap::from([
            (":to".to_string(), s(to.as_str())),
            (":from".to_string(), s(from.as_str())),
            (":now".to_string(), n(now)),
        ]);
        if let Some(a) = update.auditid {
            set.push("auditid = :a");
            values.insert(":a".into(), n(a));
        }
        if let Some(r) = &update.reason {
            set.push("reason = :r");
            values.insert(":r".into(), s(r));
        }
        if let Some(e) = update.errcode {
            set.push("errcode = :e");
            values.insert(":e".into(), n(e));
        }
        if let Some(w) = update.waiting_quota {
            set.push("waiting_quota = :w");
            values.insert(":w".into(), AttributeValue::Bool(w));
        }
        match to {
            TargetState::Committed => set.push("committed_at = :now"),
            TargetState::Submitted => set.push("submitted_at = :now"),
            t if t.is_terminal() => set.push("finished_at = :now"),
            _ => {}
        }
        let target = Update::builder()
            .table_name(&self.table)
            .key("pk", s(job_pk(job_id)))
            .key("sk", s(target_sk(seq)))
            .update_expression(format!(
                "SET {} REMOVE intent, intent_until",
                set.join(", ")
            ))
            .condition_expression("#st = :from")
            .expression_attribute_names("#st", "state")
            .set_expression_attribute_values(Some(values))
            .build()?;
        let job = Update::builder()
            .table_name(&self.table)
            .key("pk", s(job_pk(job_id)))
            .key("sk", s(JOB_SK))
            .update_expression("ADD #from :minus, #to :one SET updated_at = :now")
            .expression_attribute_names("#from", count_attr(from))
            .expression_attribute_names("#to", count_attr(to))
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now))
            .build()?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(target).build())
            .transact_items(TransactWriteItem::builder().update(job).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if transaction_condition_failed(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn clear_intent(
        &self,
        job_id: &str,
        seq: u32,
        update: &TargetUpdate,
    ) -> Result<(), StoreError> {
        let mut set = Vec::new();
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(job_pk(job_id)))
            .key("sk", s(target_sk(seq)));
        if let Some(e) = update.errcode {
            set.push("errcode = :e");
            req = req.expression_attribute_values(":e", n(e));
        }
        if let Some(w) = update.waiting_quota {
            set.push("waiting_quota = :w");
            req = req.expression_attribute_values(":w", AttributeValue::Bool(w));
        }
        if let Some(r) = &update.reason {
            set.push("reason = :r");
            req = req.expression_attribute_values(":r", s(r));
        }
        let expr = if set.is_empty() {
            "REMOVE intent, intent_until".to_string()
        } else {
            format!("SET {} REMOVE intent, intent_until", set.join(", "))
        };
        req.update_expression(expr)
            .condition_expression("attribute_exists(pk)")
            .send()
            .await
            .map(|_| ())
            .or_else(|e| {
                if condition_failed(&e) {
                    Ok(())
                } else {
                    Err(e.into())
                }
            })
    }

    async fn set_job_state(
        &self,
        id: &str,
        from: &[JobState],
        to: JobState,
        undo_audits: Option<bool>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut names = Vec::new();
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(job_pk(id)))
            .key("sk", s(JOB_SK))
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":now", n(now));
        for (i, f) in from.iter().enumerate() {
            let name = format!(":f{i}");
            req = req.expression_attribute_values(&name, s(f.as_str()));
            names.push(name);
        }
        let mut update = "SET #st = :to, updated_at = :now".to_string();
        if let Some(u) = undo_audits {
            update.push_str(", undo_audits = :u");
            req = req.expression_attribute_values(":u", AttributeValue::Bool(u));
        }
        let applied = applied(
            req.update_expression(update)
                .condition_expression(format!("#st IN ({})", names.join(", ")))
                .send()
                .await,
        )?;
        if applied && matches!(to, JobState::Done | JobState::Cancelled) {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(OPEN_JOBS_PK))
                .key("sk", s(id))
                .send()
                .await?;
        }
        Ok(applied)
    }

    async fn set_quota_wait(
        &self,
        id: &str,
        reason: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(job_pk(id)))
            .key("sk", s(JOB_SK))
            .expression_attribute_values(":now", n(now));
        let req = match reason {
            Some(r) => req
                .update_expression("SET quota_wait = :r, updated_at = :now")
                .expression_attribute_values(":r", s(r)),
            None => req.update_expression("SET updated_at = :now REMOVE quota_wait"),
        };
        req.send().await?;
        Ok(())
    }

    async fn open_jobs(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(OPEN_JOBS_PK))
                .set_exclusive_start_key(start.take())
                .send()
                .await?;
            for item in page.items.unwrap_or_default() {
                if let Some(AttributeValue::S(id)) = item.get("sk") {
                    out.push(id.clone());
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    async fn put_active_audit(&self, audit: &ActiveAudit) -> Result<(), StoreError> {
        let mut item: Item = to_item(audit)?;
        item.insert("pk".into(), s(AUDITS_PK));
        item.insert("sk".into(), s(&audit.appid));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await?;
        Ok(())
    }

    async fn get_active_audit(&self, appid: &str) -> Result<Option<ActiveAudit>, StoreError> {
        let Some(mut item) = self.get(AUDITS_PK.to_string(), appid).await? else {
            return Ok(None);
        };
        item.remove("pk");
        item.remove("sk");
        Ok(Some(from_item(item)?))
    }

    async fn remove_active_audit(&self, appid: &str, auditid: i64) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(AUDITS_PK))
            .key("sk", s(appid))
            .condition_expression("auditid = :a")
            .expression_attribute_values(":a", n(auditid))
            .send()
            .await;
        applied(result).map(|_| ())
    }

    async fn remove_pending_audit(
        &self,
        appid: &str,
        job_id: &str,
        seq: u32,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(AUDITS_PK))
            .key("sk", s(appid))
            .condition_expression("attribute_not_exists(auditid) AND #j = :j AND #q = :q")
            .expression_attribute_names("#j", "job_id")
            .expression_attribute_names("#q", "seq")
            .expression_attribute_values(":j", s(job_id))
            .expression_attribute_values(":q", n(i64::from(seq)))
            .send()
            .await;
        applied(result).map(|_| ())
    }

    async fn overdue_audits(
        &self,
        before: i64,
        limit: usize,
    ) -> Result<Vec<ActiveAudit>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .filter_expression("submitted_at <= :b AND attribute_exists(auditid)")
                .expression_attribute_values(":pk", s(AUDITS_PK))
                .expression_attribute_values(":b", n(before))
                .set_exclusive_start_key(start.take())
                .send()
                .await?;
            for mut item in page.items.unwrap_or_default() {
                item.remove("pk");
                item.remove("sk");
                out.push(from_item(item)?);
                if out.len() >= limit {
                    return Ok(out);
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }
}
