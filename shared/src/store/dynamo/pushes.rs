//! Push dedupe records.

use super::*;

impl PushStore for DynamoStore {
    async fn claim_push(&self, key: &str, kind: &str, now: i64) -> Result<PushClaim, StoreError> {
        let item = to_item(PushItem {
            pk: push_pk(key),
            sk: PUSH_SK.into(),
            record: PushRecord {
                key: key.to_string(),
                kind: kind.to_string(),
                status: PushStatus::Received,
                received_at: now,
                ttl: now + PUSH_RECORD_TTL_SECS,
            },
        })?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        if applied(result)? {
            return Ok(PushClaim::New);
        }
        Ok(match self.get_push(key).await? {
            Some(r) if r.status == PushStatus::Done => PushClaim::Done,
            _ => PushClaim::Unfinished,
        })
    }

    async fn complete_push(&self, key: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(push_pk(key)))
            .key("sk", s(PUSH_SK))
            .update_expression("SET #status = :done")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":done", s("done"))
            .send()
            .await;
        applied(result)?;
        Ok(())
    }

    async fn get_push(&self, key: &str) -> Result<Option<PushRecord>, StoreError> {
        match self.get(push_pk(key), PUSH_SK).await? {
            Some(item) => Ok(Some(from_item::<_, PushItem>(item)?.record)),
            None => Ok(None),
        }
    }
}
