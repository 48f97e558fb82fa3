//! The authorizer item's lifecycle: authorization, cancellation, recovery, the list index.

use super::tokens::*;
use super::*;

impl AuthorizerStore for DynamoStore {
    async fn get_authorizer(&self, appid: &str) -> Result<Option<AuthorizerRecord>, StoreError> {
        match self
            .get_projected(
                authorizer_pk(appid),
                AUTHORIZER_SK,
                AUTHORIZER_RECORD_ATTRIBUTES,
            )
            .await?
        {
            Some(item) => Ok(Some(from_item(item)?)),
            None => Ok(None),
        }
    }

    async fn list_authorizers(
        &self,
        state: Option<AuthorizerState>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<(Vec<AuthorizerRecord>, Option<String>), StoreError> {
        let (mut page, next) = self
            .page_authorizers(
                AUTHORIZERS_INDEX,
                ("entity", AUTHORIZER_ENTITY),
                state,
                limit,
                after,
            )
            .await?;
        self.fill_unprojected(&mut page).await?;
        Ok((page, next))
    }

    async fn record_authorization(
        &self,
        g: &AuthorizationGrant,
    ) -> Result<EventApplied, StoreError> {
        let mut update = String::from(
            "SET appid = :appid, entity = :entity, #state = :authorized, last_event_at = {t}, updated_at = :now, \
             authorized_at = :now, func_info = :f, access_token = :at, expires_at = :e, \
             refresh_token = :r, version = if_not_exists(version, :zero) + :one, refresh_pk = :rp, due_at = :e, \
             refreshed_at = :now",
        );
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(authorizer_pk(&g.appid)))
            .key("sk", s(AUTHORIZER_SK))
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":appid", s(&g.appid))
            .expression_attribute_values(":entity", s(AUTHORIZER_ENTITY))
            .expression_attribute_values(":authorized", s("authorized"))
            .expression_attribute_values(":now", n(g.now))
            .expression_attribute_values(":f", serde_dynamo::to_attribute_value(&g.func_info)?)
            .expression_attribute_values(":at", s(g.token.access_token.expose_secret()))
            .expression_attribute_values(":e", n(g.token.expires_at))
            .expression_attribute_values(
                ":r",
                s(g.token
                    .refresh_token
                    .as_ref()
                    .map(|r| r.expose_secret())
                    .unwrap_or_default()),
            )
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":rp", s(DUE_PARTITION));
        if let Some(profile) = &g.profile {
            update.push_str(", profile = :profile");
            req = req.expression_attribute_values(
                ":profile",
                serde_dynamo::to_attribute_value(profile)?,
            );
        }
        update.push_str(" REMOVE lease_owner, lease_until, state_reason");
        // One clock per comparison: WeChat's CreateTime against WeChat's CreateTime only.
        let (update, req) = match g.event_time {
            Some(t) => (
                update.replace("{t}", ":t"),
                req.expression_attribute_values(":t", n(t))
                    .condition_expression(
                        "attribute_not_exists(last_event_at) OR last_event_at <= :t",
                    ),
            ),
            None => (
                update.replace("{t}", "if_not_exists(last_event_at, :zero)"),
                req,
            ),
        };
        let result = req.update_expression(update).send().await;
        Ok(if applied(result)? {
            EventApplied::Applied
        } else {
            EventApplied::Superseded
        })
    }

    async fn mark_unauthorized(
        &self,
        appid: &str,
        event_time: i64,
        now: i64,
    ) -> Result<EventApplied, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(authorizer_pk(appid)))
            .key("sk", s(AUTHORIZER_SK))
            .update_expression(
                "SET appid = :appid, entity = :entity, #state = :state, last_event_at = :t, updated_at = :now \
                 REMOVE access_token, refresh_token, refresh_pk, due_at, lease_owner, lease_until",
            )
            .expression_attribute_values(":entity", s(AUTHORIZER_ENTITY))
            .condition_expression("attribute_not_exists(last_event_at) OR last_event_at <= :t")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":appid", s(appid))
            .expression_attribute_values(":state", s("unauthorized"))
            .expression_attribute_values(":t", n(event_time))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        if !applied(result)? {
            return Ok(EventApplied::Superseded);
        }
        // A pending authorization older than the cancellation must not be completed later.
        self.drop_pending(self.pending_of(appid).await?, event_time)
            .await?;
        Ok(EventApplied::Applied)
    }

    async fn restore_refresh_token(
        &self,
        appid: &str,
        refresh_token: &SecretString,
        now: i64,
    ) -> Result<EventApplied, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(authorizer_pk(appid)))
            .key("sk", s(AUTHORIZER_SK))
            .update_expression(
                "SET #state = :authorized, refresh_token = :r, refresh_pk = :rp, due_at = :now, updated_at = :now",
            )
            .condition_expression("#state = :needs")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":needs", s("needs_reauth"))
            .expression_attribute_values(":authorized", s("authorized"))
            .expression_attribute_values(":r", s(refresh_token.expose_secret()))
            .expression_attribute_values(":rp", s(DUE_PARTITION))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        Ok(if applied(result)? {
            EventApplied::Applied
        } else {
            EventApplied::Superseded
        })
    }

    async fn mark_revoked(
        &self,
        appid: &str,
        reason: &str,
        now: i64,
    ) -> Result<EventApplied, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(authorizer_pk(appid)))
            .key("sk", s(AUTHORIZER_SK))
            .update_expression(
                "SET #state = :unauthorized, state_reason = :r, updated_at = :now \
                 REMOVE access_token, refresh_token, refresh_pk, due_at, lease_owner, lease_until",
            )
            .condition_expression("#state = :needs")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":needs", s("needs_reauth"))
            .expression_attribute_values(":unauthorized", s("unauthorized"))
            .expression_attribute_values(":r", s(reason))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        Ok(if applied(result)? {
            EventApplied::Applied
        } else {
            EventApplied::Superseded
        })
    }

    async fn needs_reauth(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .query_index(REAUTH_PARTITION, i64::MAX, 10_000)
            .await?
            .into_iter()
            .filter_map(|i| match key_from_pk(&i.pk) {
                Some(TokenKey::Authorizer(appid)) => Some(appid),
                _ => None,
            })
            .collect())
    }

    async fn mark_profile_missing(&self, appid: &str, now: i64) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(PROFILE_MISSING_PK))
            .item("sk", s(appid))
            .item("appid", s(appid))
            .item("created_at", n(now))
            .send()
            .await?;
        Ok(())
    }

    async fn profiles_missing(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(PROFILE_MISSING_PK))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .send()
            .await?;
        Ok(page
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|mut item| match item.remove("sk") {
                Some(AttributeValue::S(appid)) => Some(appid),
                _ => None,
            })
            .collect())
    }

    async fn set_profile(
        &self,
        appid: &str,
        profile: &AuthorizerProfileRecord,
        now: i64,
    ) -> Result<(), StoreError> {
        applied(
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(authorizer_pk(appid)))
                .key("sk", s(AUTHORIZER_SK))
                .condition_expression("attribute_exists(pk)")
                .update_expression("SET profile = :p, updated_at = :now")
                .expression_attribute_values(":p", serde_dynamo::to_attribute_value(profile)?)
                .expression_attribute_values(":now", n(now))
                .send()
                .await,
        )?;
        self.clear_profile_missing(appid).await
    }

    async fn clear_profile_missing(&self, appid: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(PROFILE_MISSING_PK))
            .key("sk", s(appid))
            .send()
            .await?;
        Ok(())
    }

    async fn set_open_appid(
        &self,
        appid: &str,
        open_appid: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(authorizer_pk(appid)))
            .key("sk", s(AUTHORIZER_SK))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", n(now));
        req = match open_appid {
            Some(o) => req
                .update_expression("SET open_appid = :o, updated_at = :now")
                .expression_attribute_values(":o", s(o)),
            None => req.update_expression("SET updated_at = :now REMOVE open_appid"),
        };
        applied(req.send().await)?;
        Ok(())
    }
}

/// What the authorizers index does not carry (an index's projection cannot change in place on
/// a deployed table) and a listing still shows: read from the items, never a token.
const UNPROJECTED_ATTRIBUTES: &[&str] = &[
    "customer_ref",
    "link_id",
    "state_reason",
    "last_error",
    "failing_since",
];

impl DynamoStore {
    /// Fills the [`UNPROJECTED_ATTRIBUTES`] of a page read from the authorizers index: one
    /// `BatchGetItem` per 100 authorizers, projected to those attributes and the appid.
    async fn fill_unprojected(&self, page: &mut [AuthorizerRecord]) -> Result<(), StoreError> {
        #[derive(Deserialize)]
        struct Extra {
            appid: String,
            customer_ref: Option<String>,
            link_id: Option<String>,
            state_reason: Option<String>,
            last_error: Option<String>,
            failing_since: Option<i64>,
        }
        let projection = std::iter::once("appid")
            .chain(UNPROJECTED_ATTRIBUTES.iter().copied())
            .collect::<Vec<_>>()
            .join(", ");
        let mut extras = std::collections::HashMap::new();
        for chunk in page.chunks(100) {
            let mut keys: Vec<_> = chunk
                .iter()
                .map(|r| {
                    std::collections::HashMap::from([
                        ("pk".to_string(), s(authorizer_pk(&r.appid))),
                        ("sk".to_string(), s(AUTHORIZER_SK)),
                    ])
                })
                .collect();
            // Unprocessed keys (throttling) are asked again, a bounded number of times.
            for _ in 0..5 {
                if keys.is_empty() {
                    break;
                }
                let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut keys)))
                    .projection_expression(&projection)
                    .build()?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await?;
                for item in out
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    let extra: Extra = from_item(item)?;
                    extras.insert(extra.appid.clone(), extra);
                }
                keys = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
            }
        }
        for record in page.iter_mut() {
            if let Some(e) = extras.remove(&record.appid) {
                record.customer_ref = e.customer_ref;
                record.link_id = e.link_id;
                record.state_reason = e.state_reason;
                record.last_error = e.last_error;
                record.failing_since = e.failing_since;
            }
        }
        Ok(())
    }

    /// One page of authorizers from an index keyed (`hash`, `appid`), optionally in one state.
    pub(super) async fn page_authorizers(
        &self,
        index: &str,
        hash: (&str, &str),
        state: Option<AuthorizerState>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<(Vec<AuthorizerRecord>, Option<String>), StoreError> {
        let (hash_name, hash_value) = hash;
        let mut out = Vec::new();
        let mut start = after.map(|appid| {
            std::collections::HashMap::from([
                ("pk".to_string(), s(authorizer_pk(appid))),
                ("sk".to_string(), s(AUTHORIZER_SK)),
                (hash_name.to_string(), s(hash_value)),
                ("appid".to_string(), s(appid)),
            ])
        });
        // Only what the index carries (a GSI cannot fetch from the table): the record's own
        // attributes among them.
        let (expression, names) = projection(
            &AUTHORIZER_RECORD_ATTRIBUTES
                .iter()
                .copied()
                .filter(|a| {
                    *a == "appid"
                        || *a == hash_name
                        || AUTHORIZERS_INDEX_ATTRIBUTES.contains(a) && index == AUTHORIZERS_INDEX
                        || CUSTOMERS_INDEX_ATTRIBUTES.contains(a) && index == CUSTOMERS_INDEX
                })
                .collect::<Vec<_>>(),
        );
        loop {
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .projection_expression(&expression)
                .set_expression_attribute_names(Some(names.clone()))
                .key_condition_expression("#h = :h")
                .expression_attribute_names("#h", hash_name)
                .expression_attribute_values(":h", s(hash_value))
                .set_limit(i32::try_from((limit - out.len()).clamp(1, 1000)).ok())
                .set_exclusive_start_key(start.take());
            if let Some(state) = state {
                req = req
                    .filter_expression("#state = :s")
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_values(":s", serde_dynamo::to_attribute_value(state)?);
            }
            let page = req.send().await?;
            for item in page.items.unwrap_or_default() {
                out.push(from_item::<_, AuthorizerRecord>(item)?);
            }
            start = page.last_evaluated_key;
            if out.len() >= limit || start.is_none() {
                let next = if start.is_some() || out.len() > limit {
                    out.truncate(limit);
                    out.last().map(|r| r.appid.clone())
                } else {
                    None
                };
                return Ok((out, next));
            }
        }
    }
}
