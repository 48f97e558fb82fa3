//! Authorization-code claims and pending authorizations.

use super::*;

fn code_pk(code_id: &str) -> String {
    format!("AUTHCODE#{code_id}")
}

#[derive(Deserialize)]
struct CodeItem {
    done_for: Option<String>,
}

impl AuthCodeStore for DynamoStore {
    async fn claim_code(
        &self,
        code_id: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> Result<CodeClaim, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(code_pk(code_id)))
            .key("sk", s(CODE_SK))
            .update_expression("SET lease_owner = :o, lease_until = :until, #ttl = :ttl")
            .condition_expression("attribute_not_exists(pk) OR (attribute_not_exists(done_for) AND lease_until < :now)")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":o", s(owner))
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":ttl", n(now + CODE_CLAIM_TTL_SECS))
            .send()
            .await;
        match result {
            Ok(_) => Ok(CodeClaim::Claimed),
            Err(e) if condition_failed(&e) => {
                let item = self.get(code_pk(code_id), CODE_SK).await?;
                let done = item
                    .map(from_item::<_, CodeItem>)
                    .transpose()?
                    .and_then(|c| c.done_for);
                Ok(match done {
                    Some(authorizer_appid) => CodeClaim::Done { authorizer_appid },
                    None => CodeClaim::Busy,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn finish_code(
        &self,
        code_id: &str,
        owner: &str,
        authorizer_appid: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(code_pk(code_id)))
            .key("sk", s(CODE_SK))
            .update_expression("SET done_for = :a, done_at = :now REMOVE lease_owner, lease_until")
            .condition_expression("lease_owner = :o")
            .expression_attribute_values(":a", s(authorizer_appid))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":o", s(owner))
            .send()
            .await;
        applied(result)?;
        Ok(())
    }

    async fn code_done_for(&self, code_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .get(code_pk(code_id), CODE_SK)
            .await?
            .map(from_item::<_, CodeItem>)
            .transpose()?
            .and_then(|c| c.done_for))
    }

    async fn release_code(&self, code_id: &str, owner: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(code_pk(code_id)))
            .key("sk", s(CODE_SK))
            .condition_expression("lease_owner = :o AND attribute_not_exists(done_for)")
            .expression_attribute_values(":o", s(owner))
            .send()
            .await;
        applied(result)?;
        Ok(())
    }

    async fn put_pending_authorization(
        &self,
        p: &PendingAuthorization,
    ) -> Result<EventApplied, StoreError> {
        let existing = self.pending_of(&p.authorizer_appid).await?;
        if existing.iter().any(|(_, ct)| *ct > p.create_time) {
            return Ok(EventApplied::Superseded);
        }
        let item = to_item(PendingItem {
            pk: PENDING_PK.into(),
            sk: pending_sk(p),
            authorizer_appid: p.authorizer_appid.clone(),
            kind: p.kind,
            authorization_code: p.authorization_code.expose_secret().to_string(),
            create_time: p.create_time,
            code_expires_at: p.code_expires_at,
            received_at: p.received_at,
            pre_auth_digest: p.pre_auth_digest.clone(),
        })?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await?;
        // Older ones of the same authorizer are superseded (same-second ones are kept).
        self.drop_pending(existing, p.create_time - 1).await?;
        Ok(EventApplied::Applied)
    }

    async fn list_pending_authorizations(&self) -> Result<Vec<PendingAuthorization>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(PENDING_PK))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await?;
            for item in page.items.unwrap_or_default() {
                out.push(from_item::<_, PendingItem>(item)?.into());
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    async fn remove_pending_authorization(
        &self,
        pending: &PendingAuthorization,
    ) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(PENDING_PK))
            .key("sk", s(pending_sk(pending)))
            .send()
            .await?;
        Ok(())
    }
}

impl DynamoStore {
    /// Deletes the pending items among `items` whose `create_time` is at most `up_to` (each
    /// conditional on it; one already gone is fine).
    pub(super) async fn drop_pending(
        &self,
        items: Vec<(String, i64)>,
        up_to: i64,
    ) -> Result<(), StoreError> {
        for (sk, _) in items.into_iter().filter(|(_, ct)| *ct <= up_to) {
            let dropped = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(PENDING_PK))
                .key("sk", s(sk))
                .condition_expression("create_time <= :t")
                .expression_attribute_values(":t", n(up_to))
                .send()
                .await;
            applied(dropped)?;
        }
        Ok(())
    }

    /// The sort keys and `create_time`s of one authorizer's pending items.
    pub(super) async fn pending_of(&self, appid: &str) -> Result<Vec<(String, i64)>, StoreError> {
        #[derive(Deserialize)]
        struct Key {
            sk: String,
            create_time: i64,
        }
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(PENDING_PK))
                .expression_attribute_values(":prefix", s(pending_prefix(appid)))
                .projection_expression("sk, create_time")
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await?;
            for item in page.items.unwrap_or_default() {
                let k: Key = from_item(item)?;
                out.push((k.sk, k.create_time));
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }
}
