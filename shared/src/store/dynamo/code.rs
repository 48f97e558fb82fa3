//! Mini program code records (`CODE#<appid>` / `CODE`): versioned conditional puts, and the
//! audit result of a push as one conditional update.

use std::collections::HashMap;

use super::*;

const CODE_SK: &str = "CODE";
/// How much earlier than our submission time WeChat's result time may be (clocks differ): an
/// older audit's result is older still (a new audit can only start once the old one ended).
const CLOCK_SKEW_SECS: i64 = 60;

fn code_pk(appid: &str) -> String {
    format!("CODE#{appid}")
}

#[derive(Serialize, Deserialize)]
struct CodeItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    record: CodeRecord,
}

impl CodeStore for DynamoStore {
    async fn get_code(&self, appid: &str) -> Result<Option<CodeRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(code_pk(appid)))
            .key("sk", s(CODE_SK))
            .consistent_read(true)
            .send()
            .await?;
        match out.item {
            Some(item) => Ok(Some(from_item::<_, CodeItem>(item)?.record)),
            None => Ok(None),
        }
    }

    async fn put_code(&self, record: &CodeRecord) -> Result<bool, StoreError> {
        let item = to_item(CodeItem {
            pk: code_pk(&record.appid),
            sk: CODE_SK.into(),
            record: record.clone(),
        })?;
        let req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let req = if record.version <= 1 {
            req.condition_expression("attribute_not_exists(pk)")
        } else {
            let previous = i64::try_from(record.version - 1).unwrap_or(i64::MAX);
            req.condition_expression("version = :v")
                .expression_attribute_values(":v", n(previous))
        };
        applied(req.send().await)
    }

    async fn apply_audit_result(
        &self,
        appid: &str,
        result: &AuditResult,
    ) -> Result<bool, StoreError> {
        let reason = match &result.reason {
            Some(r) => s(r.clone()),
            None => AttributeValue::Null(true),
        };
        let shots = AttributeValue::L(result.screenshots.iter().map(|x| s(x.clone())).collect());
        let names = HashMap::from([
            ("#a".to_string(), "audit".to_string()),
            ("#st".to_string(), "state".to_string()),
        ]);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(code_pk(appid)))
            .key("sk", s(CODE_SK))
            .update_expression(
                "SET #a.#st = :st, #a.reason = :r, #a.screenshots = :ss, #a.updated_at = :at, \
                 updated_at = :at, version = version + :one",
            )
            .condition_expression(
                "attribute_exists(pk) AND (#a.#st = :auditing OR #a.#st = :delayed) \
                 AND #a.submitted_at <= :late AND #a.#st <> :st",
            )
            .set_expression_attribute_names(Some(names))
            .expression_attribute_values(":st", s(result.state.as_str()))
            .expression_attribute_values(":r", reason)
            .expression_attribute_values(":ss", shots)
            .expression_attribute_values(":at", n(result.at))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":late", n(result.at.saturating_add(CLOCK_SKEW_SECS)))
            .expression_attribute_values(":auditing", s(CodeAuditState::Auditing.as_str()))
            .expression_attribute_values(":delayed", s(CodeAuditState::Delayed.as_str()))
            .send()
            .await;
        applied(result)
    }
}
