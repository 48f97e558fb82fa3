//! DynamoDB adapter: serde_dynamo for items, conditional writes for every "newest wins" and
//! "write once" rule.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_dynamo::{from_item, to_item};

use super::*;

const TICKET_PK: &str = "COMPONENT";
const TICKET_SK: &str = "TICKET";
const PUSH_SK: &str = "PUSH";
const PENDING_PK: &str = "PENDING";
const AUTHORIZER_SK: &str = "AUTHORIZER";

fn push_pk(key: &str) -> String {
    format!("PUSH#{key}")
}
fn pending_sk(appid: &str) -> String {
    format!("AUTH#{appid}")
}
fn authorizer_pk(appid: &str) -> String {
    format!("AUTHORIZER#{appid}")
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// True when a request failed only because its condition expression did not hold.
fn condition_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

#[derive(Serialize, Deserialize)]
struct TicketItem {
    pk: String,
    sk: String,
    ticket: String,
    create_time: i64,
    received_at: i64,
}

#[derive(Serialize, Deserialize)]
struct PushItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    record: PushRecord,
}

#[derive(Serialize, Deserialize)]
struct PendingItem {
    pk: String,
    sk: String,
    authorizer_appid: String,
    kind: AuthorizationKind,
    authorization_code: String,
    create_time: i64,
    code_expires_at: Option<i64>,
    received_at: i64,
}

impl From<PendingItem> for PendingAuthorization {
    fn from(i: PendingItem) -> Self {
        Self {
            authorizer_appid: i.authorizer_appid,
            kind: i.kind,
            authorization_code: i.authorization_code.into(),
            create_time: i.create_time,
            code_expires_at: i.code_expires_at,
            received_at: i.received_at,
        }
    }
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn get(
        &self,
        pk: String,
        sk: &str,
    ) -> Result<Option<std::collections::HashMap<String, AttributeValue>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await?;
        Ok(out.item)
    }
}

/// Creates the table as template.yaml declares it (tests and the local stack; CloudFormation
/// creates it in AWS).
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .send()
        .await?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("ttl")
                .enabled(true)
                .build()?,
        )
        .send()
        .await?;
    Ok(())
}

impl TicketStore for DynamoStore {
    async fn put_ticket(&self, ticket: &StoredTicket) -> Result<TicketWrite, StoreError> {
        let item = to_item(TicketItem {
            pk: TICKET_PK.into(),
            sk: TICKET_SK.into(),
            ticket: ticket.ticket.expose_secret().to_string(),
            create_time: ticket.create_time,
            received_at: ticket.received_at,
        })?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR create_time < :ct")
            .expression_attribute_values(":ct", n(ticket.create_time))
            .send()
            .await;
        match result {
            Ok(_) => Ok(TicketWrite::Stored),
            Err(e) if condition_failed(&e) => Ok(TicketWrite::NotNewer),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_ticket(&self) -> Result<Option<StoredTicket>, StoreError> {
        let Some(item) = self.get(TICKET_PK.into(), TICKET_SK).await? else {
            return Ok(None);
        };
        let t: TicketItem = from_item(item)?;
        Ok(Some(StoredTicket {
            ticket: t.ticket.into(),
            create_time: t.create_time,
            received_at: t.received_at,
        }))
    }
}

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
        match result {
            Ok(_) => Ok(PushClaim::New),
            Err(e) if condition_failed(&e) => Ok(match self.get_push(key).await? {
                Some(r) if r.status == PushStatus::Done => PushClaim::Done,
                _ => PushClaim::Unfinished,
            }),
            Err(e) => Err(e.into()),
        }
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
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_push(&self, key: &str) -> Result<Option<PushRecord>, StoreError> {
        match self.get(push_pk(key), PUSH_SK).await? {
            Some(item) => Ok(Some(from_item::<_, PushItem>(item)?.record)),
            None => Ok(None),
        }
    }
}

impl AuthorizerStore for DynamoStore {
    async fn put_pending_authorization(
        &self,
        p: &PendingAuthorization,
    ) -> Result<EventApplied, StoreError> {
        let item = to_item(PendingItem {
            pk: PENDING_PK.into(),
            sk: pending_sk(&p.authorizer_appid),
            authorizer_appid: p.authorizer_appid.clone(),
            kind: p.kind,
            authorization_code: p.authorization_code.expose_secret().to_string(),
            create_time: p.create_time,
            code_expires_at: p.code_expires_at,
            received_at: p.received_at,
        })?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR create_time < :ct")
            .expression_attribute_values(":ct", n(p.create_time))
            .send()
            .await;
        match result {
            Ok(_) => Ok(EventApplied::Applied),
            Err(e) if condition_failed(&e) => Ok(EventApplied::Superseded),
            Err(e) => Err(e.into()),
        }
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
                "SET appid = :appid, #state = :state, last_event_at = :t, updated_at = :now",
            )
            .condition_expression("attribute_not_exists(last_event_at) OR last_event_at <= :t")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":appid", s(appid))
            .expression_attribute_values(":state", s("unauthorized"))
            .expression_attribute_values(":t", n(event_time))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(e) if condition_failed(&e) => return Ok(EventApplied::Superseded),
            Err(e) => return Err(e.into()),
        }
        // A pending authorization older than the cancellation must not be completed later.
        let dropped = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(PENDING_PK))
            .key("sk", s(pending_sk(appid)))
            .condition_expression("create_time <= :t")
            .expression_attribute_values(":t", n(event_time))
            .send()
            .await;
        match dropped {
            Ok(_) => Ok(EventApplied::Applied),
            Err(e) if condition_failed(&e) => Ok(EventApplied::Applied),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_authorizer(&self, appid: &str) -> Result<Option<AuthorizerRecord>, StoreError> {
        match self.get(authorizer_pk(appid), AUTHORIZER_SK).await? {
            Some(item) => Ok(Some(from_item(item)?)),
            None => Ok(None),
        }
    }
}
