//! Identities, their openid pointers and the user index, written together in transactions.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};

use super::*;

const IDENTITY_SK: &str = "IDENTITY";

fn identity_pk(id: &str) -> String {
    format!("IDENTITY#{id}")
}
fn openid_pk(appid: &str, openid: &str) -> String {
    format!("OPENID#{appid}#{openid}")
}
fn user_pk(user_id: &str) -> String {
    format!("USER#{user_id}")
}
fn user_sk(id: &str) -> String {
    format!("IDENTITY#{id}")
}

#[derive(Serialize, Deserialize)]
struct IdentityItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    identity: Identity,
}

#[derive(Serialize, Deserialize)]
struct PointerItem {
    pk: String,
    sk: String,
    identity_id: String,
}

/// True when a transaction was cancelled (a condition failed or another transaction won).
fn cancelled<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|c| c == "TransactionCanceledException" || c == "TransactionConflictException")
}

impl DynamoStore {
    fn pointer_put(
        &self,
        pk: String,
        sk: String,
        id: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let item = to_item(PointerItem {
            pk,
            sk,
            identity_id: id.to_string(),
        })?;
        Ok(TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .build()?,
            )
            .build())
    }
}

impl IdentityStore for DynamoStore {
    async fn get_identity(&self, id: &str) -> Result<Option<Identity>, StoreError> {
        match self.get(identity_pk(id), IDENTITY_SK).await? {
            Some(item) => Ok(Some(from_item::<_, IdentityItem>(item)?.identity)),
            None => Ok(None),
        }
    }

    async fn write_identities(&self, writes: &[IdentityWrite]) -> Result<bool, StoreError> {
        let mut items = Vec::new();
        for w in writes {
            let id = &w.identity.id;
            let item = to_item(IdentityItem {
                pk: identity_pk(id),
                sk: IDENTITY_SK.into(),
                identity: w.identity.clone(),
            })?;
            let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
            put = match w.expected_version {
                Some(v) => put
                    .condition_expression("version = :v")
                    .expression_attribute_values(":v", n(i64::try_from(v).unwrap_or(i64::MAX))),
                None => put.condition_expression("attribute_not_exists(pk)"),
            };
            items.push(TransactWriteItem::builder().put(put.build()?).build());
            if w.previous_user != w.identity.user_id {
                if let Some(old) = &w.previous_user {
                    items.push(
                        TransactWriteItem::builder()
                            .delete(
                                Delete::builder()
                                    .table_name(&self.table)
                                    .key("pk", s(user_pk(old)))
                                    .key("sk", s(user_sk(id)))
                                    .build()?,
                            )
                            .build(),
                    );
                }
                if let Some(new) = &w.identity.user_id {
                    items.push(self.pointer_put(user_pk(new), user_sk(id), id)?);
                }
            }
            for (appid, openid) in &w.pointers {
                items.push(self.pointer_put(openid_pk(appid, openid), IDENTITY_SK.into(), id)?);
            }
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if cancelled(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn touch_identity(
        &self,
        id: &str,
        appid: &str,
        openid: &str,
        flow: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(identity_pk(id)))
            .key("sk", s(IDENTITY_SK))
            .update_expression(
                "SET last_seen = :now, apps.#a.last_seen = :now, apps.#a.flows.#f = :now ADD version :one",
            )
            .condition_expression("apps.#a.openid = :o AND attribute_not_exists(merged_into)")
            .expression_attribute_names("#a", appid)
            .expression_attribute_names("#f", flow)
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":o", s(openid))
            .send()
            .await;
        applied(result)
    }

    async fn identity_for_openid(
        &self,
        appid: &str,
        openid: &str,
    ) -> Result<Option<String>, StoreError> {
        match self.get(openid_pk(appid, openid), IDENTITY_SK).await? {
            Some(item) => Ok(Some(from_item::<_, PointerItem>(item)?.identity_id)),
            None => Ok(None),
        }
    }

    async fn identities_of_user(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(user_pk(user_id)))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await?;
            for item in page.items.unwrap_or_default() {
                out.push(from_item::<_, PointerItem>(item)?.identity_id);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }
}
