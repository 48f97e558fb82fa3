//! Login sessions (the identities they record are in `identities.rs`).

use super::*;

fn session_pk(id: &str) -> String {
    format!("LOGIN#{id}")
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
        if let Some(i) = &c.identity_id {
            update.push_str(", identity_id = :i");
            req = req.expression_attribute_values(":i", s(i));
        }
        if let Some(conflict) = &c.conflict {
            update.push_str(", conflict = :c");
            req =
                req.expression_attribute_values(":c", serde_dynamo::to_attribute_value(conflict)?);
        }
        applied(req.update_expression(update).send().await)
    }

    async fn hand_off_session(&self, id: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(session_pk(id)))
            .key("sk", s(SESSION_SK))
            .update_expression("SET handed_off = :t")
            .condition_expression(
                "#status = :confirmed AND (attribute_not_exists(handed_off) OR handed_off = :f)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":confirmed", s("confirmed"))
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .send()
            .await;
        applied(result)
    }
}
