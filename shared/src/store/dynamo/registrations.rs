//! Fast registrations, the keys a `notify_third_fasteregister` push is matched by (taskid,
//! credit code, company name), and the customer the registered mini program belongs to.

use super::*;

const REGISTRATION_SK: &str = "REGISTRATION";
const REGKEY_SK: &str = "REGKEY";
/// Registrations are kept this long past their expiry, then TTL removes them.
const REGISTRATION_RETENTION_SECS: i64 = 30 * 86_400;

fn registration_pk(id: &str) -> String {
    format!("REGISTRATION#{id}")
}
fn regkey_pk(key: &RegistrationKey<'_>) -> String {
    match key {
        RegistrationKey::Task(t) => format!("REGKEY#task#{t}"),
        RegistrationKey::Code(c) => format!("REGKEY#code#{c}"),
        RegistrationKey::Name(n) => format!("REGKEY#name#{}", crate::crypto::sha1_hex(n)),
    }
}

#[derive(Serialize, Deserialize)]
struct RegistrationItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    registration: Registration,
    ttl: i64,
}

#[derive(Deserialize)]
struct RegKeyItem {
    registration_id: String,
}

impl RegistrationStore for DynamoStore {
    async fn create_registration(&self, r: &Registration) -> Result<(), StoreError> {
        let ttl = r.expires_at + REGISTRATION_RETENTION_SECS;
        // The keys first: a push that beats the record write still resolves once it exists.
        // The newest registration of a subject wins its keys (WeChat runs one at a time).
        let mut keys = vec![
            RegistrationKey::Code(&r.code),
            RegistrationKey::Name(&r.name),
        ];
        if let Some(t) = &r.taskid {
            keys.push(RegistrationKey::Task(t));
        }
        for key in keys {
            self.client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(regkey_pk(&key)))
                .item("sk", s(REGKEY_SK))
                .item("registration_id", s(&r.id))
                .item("ttl", n(ttl))
                .send()
                .await?;
        }
        let item = to_item(RegistrationItem {
            pk: registration_pk(&r.id),
            sk: REGISTRATION_SK.into(),
            registration: r.clone(),
            ttl,
        })?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await?;
        Ok(())
    }

    async fn get_registration(&self, id: &str) -> Result<Option<Registration>, StoreError> {
        Ok(self
            .get_as::<RegistrationItem>(registration_pk(id), REGISTRATION_SK)
            .await?
            .map(|i| i.registration))
    }

    async fn registration_for(
        &self,
        key: &RegistrationKey<'_>,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .get_as::<RegKeyItem>(regkey_pk(key), REGKEY_SK)
            .await?
            .map(|i| i.registration_id))
    }

    async fn finish_registration(
        &self,
        r: &Registration,
        outcome: &RegistrationOutcome,
        now: i64,
    ) -> Result<bool, StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(registration_pk(&r.id)))
            .key("sk", s(REGISTRATION_SK))
            .condition_expression("#state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":now", n(now));
        let update = match outcome {
            RegistrationOutcome::Succeeded { appid } => {
                // The authorizer first (a same-value write changes nothing on a retry), then
                // the registration, once.
                let tied = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .key("pk", s(authorizer_pk(appid)))
                    .key("sk", s(AUTHORIZER_SK))
                    .update_expression("SET customer_ref = :c, registration_id = :r")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_values(":c", s(&r.customer_ref))
                    .expression_attribute_values(":r", s(&r.id))
                    .send()
                    .await;
                applied(tied)?;
                update
                    .update_expression("SET #state = :s, registered_appid = :a, updated_at = :now")
                    .expression_attribute_values(":s", s("succeeded"))
                    .expression_attribute_values(":a", s(appid))
            }
            RegistrationOutcome::Failed { status, meaning } => update
                .update_expression(
                    "SET #state = :s, wechat_status = :w, status_meaning = :m, updated_at = :now",
                )
                .expression_attribute_values(":s", s("failed"))
                .expression_attribute_values(":w", n(*status))
                .expression_attribute_values(":m", s(meaning)),
        };
        applied(update.send().await)
    }
}
