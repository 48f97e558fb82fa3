//! Access tokens: leases, compare-and-set commits, the refresh index.

use super::*;

pub(super) fn token_key(key: &TokenKey) -> (String, &'static str) {
    match key {
        TokenKey::Component => (TICKET_PK.to_string(), TOKEN_SK),
        TokenKey::Authorizer(appid) => (authorizer_pk(appid), AUTHORIZER_SK),
    }
}

pub(super) fn key_from_pk(pk: &str) -> Option<TokenKey> {
    if pk == TICKET_PK {
        Some(TokenKey::Component)
    } else {
        pk.strip_prefix("AUTHORIZER#")
            .map(|a| TokenKey::Authorizer(a.to_string()))
    }
}

#[derive(Deserialize)]
pub(super) struct TokenItem {
    pub(super) access_token: Option<String>,
    pub(super) expires_at: Option<i64>,
    pub(super) version: Option<u64>,
    pub(super) lease_owner: Option<String>,
    pub(super) lease_until: Option<i64>,
    pub(super) refresh_token: Option<String>,
    pub(super) state: Option<AuthorizerState>,
    #[serde(default)]
    pub(super) refreshed_at: Option<i64>,
    #[serde(default)]
    pub(super) failing_since: Option<i64>,
    #[serde(default)]
    pub(super) last_error: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct IndexItem {
    pub(super) pk: String,
    pub(super) due_at: i64,
    pub(super) version: Option<u64>,
}

pub(super) fn version_condition(expected: u64) -> &'static str {
    if expected == 0 {
        "attribute_not_exists(version)"
    } else {
        "version = :v"
    }
}

impl DynamoStore {
    pub(super) async fn query_index(
        &self,
        partition: &str,
        before: i64,
        limit: usize,
    ) -> Result<Vec<IndexItem>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(REFRESH_INDEX)
                .key_condition_expression("refresh_pk = :p AND due_at <= :before")
                .expression_attribute_values(":p", s(partition))
                .expression_attribute_values(":before", n(before))
                .set_limit(i32::try_from(limit.saturating_sub(out.len()).clamp(1, 1000)).ok())
                .set_exclusive_start_key(start)
                .send()
                .await?;
            for item in page.items.unwrap_or_default() {
                out.push(from_item::<_, IndexItem>(item)?);
            }
            start = page.last_evaluated_key;
            if start.is_none() || out.len() >= limit {
                out.truncate(limit);
                return Ok(out);
            }
        }
    }
}

impl TokenStore for DynamoStore {
    async fn get_token(&self, key: &TokenKey) -> Result<Option<TokenRecord>, StoreError> {
        let (pk, sk) = token_key(key);
        let Some(item) = self.get(pk, sk).await? else {
            return Ok(None);
        };
        let t: TokenItem = from_item(item)?;
        Ok(Some(TokenRecord {
            access_token: t.access_token.map(Into::into),
            expires_at: t.expires_at.unwrap_or(0),
            version: t.version.unwrap_or(0),
            lease_owner: t.lease_owner,
            lease_until: t.lease_until.unwrap_or(0),
            refresh_token: t.refresh_token.map(Into::into),
            state: t.state,
            refreshed_at: t.refreshed_at.unwrap_or(0),
            failing_since: t.failing_since,
            last_error: t.last_error,
        }))
    }

    async fn acquire_lease(
        &self,
        key: &TokenKey,
        expected_version: u64,
        owner: &str,
        now: i64,
        until: i64,
    ) -> Result<LeaseOutcome, StoreError> {
        let (pk, sk) = token_key(key);
        let mut condition = format!(
            "{} AND (attribute_not_exists(lease_until) OR lease_until < :now)",
            version_condition(expected_version)
        );
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression("SET lease_owner = :o, lease_until = :until, lease_started = :now")
            .expression_attribute_values(":o", s(owner))
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":now", n(now));
        if expected_version != 0 {
            req = req.expression_attribute_values(":v", n(expected_version as i64));
        }
        if let TokenKey::Authorizer(_) = key {
            condition.push_str(" AND #state = :authorized");
            req = req
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":authorized", s("authorized"));
        }
        Ok(
            if applied(req.condition_expression(condition).send().await)? {
                LeaseOutcome::Acquired
            } else {
                LeaseOutcome::Conflict
            },
        )
    }

    async fn commit_token(
        &self,
        key: &TokenKey,
        owner: &str,
        expected_version: u64,
        token: &NewToken,
    ) -> Result<CommitOutcome, StoreError> {
        let (pk, sk) = token_key(key);
        let new_version = expected_version + 1;
        let mut update = String::from(
            "SET access_token = :t, expires_at = :e, version = :nv, refresh_pk = :rp, due_at = :e, \
             refreshed_at = lease_started",
        );
        let mut condition = format!(
            "lease_owner = :o AND {}",
            version_condition(expected_version)
        );
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .expression_attribute_values(":t", s(token.access_token.expose_secret()))
            .expression_attribute_values(":e", n(token.expires_at))
            .expression_attribute_values(":nv", n(new_version as i64))
            .expression_attribute_values(":rp", s(DUE_PARTITION))
            .expression_attribute_values(":o", s(owner));
        if expected_version != 0 {
            req = req.expression_attribute_values(":v", n(expected_version as i64));
        }
        if let Some(refresh) = &token.refresh_token {
            update.push_str(", refresh_token = :r");
            req = req.expression_attribute_values(":r", s(refresh.expose_secret()));
        }
        if let TokenKey::Authorizer(_) = key {
            condition.push_str(" AND #state = :authorized");
            req = req
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":authorized", s("authorized"));
        }
        update.push_str(" REMOVE lease_owner, lease_until, last_error, failing_since");
        Ok(
            if applied(
                req.update_expression(update)
                    .condition_expression(condition)
                    .send()
                    .await,
            )? {
                CommitOutcome::Committed(new_version)
            } else {
                CommitOutcome::LostLease
            },
        )
    }

    async fn keep_refresh_token(
        &self,
        appid: &str,
        version: u64,
        refresh_token: &SecretString,
    ) -> Result<bool, StoreError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(authorizer_pk(appid)))
            .key("sk", s(AUTHORIZER_SK))
            .update_expression("SET refresh_token = :r")
            .condition_expression(format!(
                "{} AND #state = :authorized",
                version_condition(version)
            ))
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":authorized", s("authorized"))
            .expression_attribute_values(":r", s(refresh_token.expose_secret()));
        if version != 0 {
            req = req.expression_attribute_values(":v", n(version as i64));
        }
        applied(req.send().await)
    }

    async fn release_lease(&self, key: &TokenKey, owner: &str) -> Result<(), StoreError> {
        let (pk, sk) = token_key(key);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression("REMOVE lease_owner, lease_until")
            .condition_expression("lease_owner = :o")
            .expression_attribute_values(":o", s(owner))
            .send()
            .await;
        applied(result)?;
        Ok(())
    }

    async fn defer_refresh(
        &self,
        key: &TokenKey,
        version: u64,
        error: &str,
        now: i64,
        due_at: i64,
    ) -> Result<(), StoreError> {
        let (pk, sk) = token_key(key);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression(
                "SET last_error = :e, failing_since = if_not_exists(failing_since, :now), due_at = :d",
            )
            .condition_expression("version = :v AND refresh_pk = :rp")
            .expression_attribute_values(":e", s(error))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":d", n(due_at))
            .expression_attribute_values(":v", n(version as i64))
            .expression_attribute_values(":rp", s(DUE_PARTITION))
            .send()
            .await;
        applied(result)?;
        Ok(())
    }

    async fn due_tokens(&self, before: i64, limit: usize) -> Result<Vec<DueToken>, StoreError> {
        Ok(self
            .query_index(DUE_PARTITION, before, limit)
            .await?
            .into_iter()
            .filter_map(|i| {
                Some(DueToken {
                    key: key_from_pk(&i.pk)?,
                    version: i.version.unwrap_or(0),
                    due_at: i.due_at,
                })
            })
            .collect())
    }

    async fn mark_needs_reauth(
        &self,
        appid: &str,
        owner: &str,
        now: i64,
    ) -> Result<CommitOutcome, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(authorizer_pk(appid)))
            .key("sk", s(AUTHORIZER_SK))
            .update_expression(
                "SET #state = :needs, refresh_pk = :rp, due_at = :now, updated_at = :now \
                 REMOVE access_token, lease_owner, lease_until",
            )
            .condition_expression("lease_owner = :o AND #state = :authorized")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":needs", s("needs_reauth"))
            .expression_attribute_values(":authorized", s("authorized"))
            .expression_attribute_values(":rp", s(REAUTH_PARTITION))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":o", s(owner))
            .send()
            .await;
        Ok(if applied(result)? {
            CommitOutcome::Committed(0)
        } else {
            CommitOutcome::LostLease
        })
    }
}
