//! One-time login codes (stored under the hash of the code) and used OAuth state nonces.

use aws_sdk_dynamodb::types::ReturnValue;

use super::*;

const LOGIN_CODE_SK: &str = "CODE";
const NONCE_SK: &str = "NONCE";
/// Used codes and nonces stay a day past their expiry, then TTL removes them.
const RETENTION_SECS: i64 = 86_400;

fn code_pk(hash: &str) -> String {
    format!("LOGINCODE#{hash}")
}

#[derive(Serialize, Deserialize)]
struct CodeItem {
    pk: String,
    sk: String,
    ttl: i64,
    #[serde(default)]
    used: bool,
    #[serde(flatten)]
    record: LoginCodeRecord,
}

impl LoginCodeStore for DynamoStore {
    async fn put_login_code(&self, record: &LoginCodeRecord) -> Result<(), StoreError> {
        let item = to_item(CodeItem {
            pk: code_pk(&record.code_hash),
            sk: LOGIN_CODE_SK.into(),
            ttl: record.expires_at + RETENTION_SECS,
            used: false,
            record: record.clone(),
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

    async fn take_login_code(
        &self,
        code_hash: &str,
        now: i64,
    ) -> Result<Option<LoginCodeRecord>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(code_pk(code_hash)))
            .key("sk", s(LOGIN_CODE_SK))
            .update_expression("SET used = :t")
            .condition_expression("attribute_exists(pk) AND used = :f AND expires_at > :now")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => match out.attributes {
                Some(item) => Ok(Some(from_item::<_, CodeItem>(item)?.record)),
                None => Ok(None),
            },
            Err(e) if condition_failed(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn claim_oauth_nonce(&self, nonce: &str, expires_at: i64) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("OAUTHSTATE#{nonce}")))
            .item("sk", s(NONCE_SK))
            .item("ttl", n(expires_at + RETENTION_SECS))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        applied(result)
    }
}
