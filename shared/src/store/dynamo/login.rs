//! Login sessions and the UnionID index.

use super::*;

fn session_pk(id: &str) -> String {
    format!("LOGIN#{id}")
}

fn union_pk(unionid: &str) -> String {
    format!("UNION#{unionid}")
}

#[derive(Serialize, Deserialize)]
struct SessionItem {
    pk: String,
    sk: String,
    ttl: i64,
    #[serde(flatten)]
    session: LoginSession,
}

impl LoginStore for DynamoStore {
    async fn create_session(&self, session: &LoginSession) -> Result<(), StoreError> {
        let item = to_item(SessionItem {
            pk: session_pk(&session.id),
            sk: SESSION_SK.into(),
            ttl: session.expires_at + SESSION_RETENTION_SECS,
            session: session.clone(),
        })?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        applied(result)?;
        Ok(())
    }

    async fn get_session(&self, id: &str) -> Result<Option<LoginSession>, StoreError> {
        match self.get(session_pk(id), SESSION_SK).await? {
            Some(item) => Ok(Some(from_item::<_, SessionItem>(item)?.session)),
            None => Ok(None),
        }
    }

    async fn confirm_session(
        &self,
        id: &str,
        appid: &str,
        c: &LoginConfirmation,
    ) -> Result<bool, StoreError> {
        let mut update = String::from(
            "SET #status = :confirmed, openid = :o, known_user = :k, confirmed_at = :now",
        );
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(session_pk(id)))
            .key("sk", s(SESSION_SK))
            .condition_expression("#status = :pending AND appid = :appid AND expires_at > :now")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":confirmed", s("confirmed"))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":appid", s(appid))
            .expression_attribute_values(":o", s(&c.openid))
            .expression_attribute_values(":k", AttributeValue::Bool(c.known_user))
            .expression_attribute_values(":now", n(c.now));
        if let Some(u) = &c.unionid {
            update.push_str(", unionid = :u");
            req = req.expression_attribute_values(":u", s(u));
        }
        if let Some(r) = &c.unionid_missing_reason {
            update.push_str(", unionid_missing_reason = :r");
            req = req.expression_attribute_values(":r", s(r));
        }
        applied(req.update_expression(update).send().await)
    }

    async fn record_identity(
        &self,
        unionid: &str,
        appid: &str,
        openid: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let known = !self.linked_appids(unionid).await?.is_empty();
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(union_pk(unionid)))
            .key("sk", s(format!("APP#{appid}")))
            .update_expression("SET appid = :a, openid = :o, last_seen = :now, first_seen = if_not_exists(first_seen, :now)")
            .expression_attribute_values(":a", s(appid))
            .expression_attribute_values(":o", s(openid))
            .expression_attribute_values(":now", n(now))
            .send()
            .await?;
        Ok(known)
    }

    async fn linked_appids(&self, unionid: &str) -> Result<Vec<String>, StoreError> {
        #[derive(Deserialize)]
        struct Link {
            appid: String,
        }
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(union_pk(unionid)))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await?;
            for item in page.items.unwrap_or_default() {
                out.push(from_item::<_, Link>(item)?.appid);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }
}
