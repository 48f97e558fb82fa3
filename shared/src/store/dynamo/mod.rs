//! DynamoDB adapter: serde_dynamo for items, conditional writes for every "newest wins" and
//! "write once" rule.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_dynamo::{from_item, to_item};

use super::*;
use crate::model::*;

mod authorizers;
mod code;
mod codes;
mod identities;
mod links;
mod login;
mod login_codes;
mod pushes;
mod registrations;
mod releases;
mod tickets;
mod tokens;

const TICKET_PK: &str = "COMPONENT";
const TICKET_SK: &str = "TICKET";
const PUSH_SK: &str = "PUSH";
const PENDING_PK: &str = "PENDING";
/// The partition of authorizers whose profile is still to be read (sort key: the appid).
const PROFILE_MISSING_PK: &str = "PROFILE_MISSING";
const AUTHORIZER_SK: &str = "AUTHORIZER";
const TOKEN_SK: &str = "TOKEN";
/// The sparse index of refreshable tokens (and of authorizers awaiting refresh-token recovery).
pub const REFRESH_INDEX: &str = "refresh-index";
const DUE_PARTITION: &str = "TOKENS";
/// The index listing authorizers by appid (no secrets projected).
pub const AUTHORIZERS_INDEX: &str = "authorizers-index";
const AUTHORIZER_ENTITY: &str = "AUTHORIZER";
/// What the authorizers index carries besides its keys: never a token.
pub const AUTHORIZERS_INDEX_ATTRIBUTES: &[&str] = &[
    "pk",
    "sk",
    "state",
    "last_event_at",
    "updated_at",
    "func_info",
    "open_appid",
    "authorized_at",
    "profile",
];
const REAUTH_PARTITION: &str = "REAUTH";
/// What an [`AuthorizerRecord`] is read from (every read is projected to these): never a token.
/// The read-only authorizers function's IAM policy allows only these attributes (with the keys
/// and the index keys), so it cannot read a token even by mistake.
pub const AUTHORIZER_RECORD_ATTRIBUTES: &[&str] = &[
    "appid",
    "state",
    "last_event_at",
    "updated_at",
    "func_info",
    "open_appid",
    "authorized_at",
    "profile",
    "customer_ref",
    "link_id",
    "state_reason",
    "last_error",
    "failing_since",
];
/// Authorizers by the provider's customer (`GET /authorizers?customer_ref=`); sparse: only
/// authorizers that came through a link carry `customer_ref`. No token is projected.
pub const CUSTOMERS_INDEX: &str = "customers-index";
/// What the customers index carries besides its keys: never a token.
pub const CUSTOMERS_INDEX_ATTRIBUTES: &[&str] = &[
    "pk",
    "sk",
    "state",
    "last_event_at",
    "updated_at",
    "func_info",
    "open_appid",
    "authorized_at",
    "profile",
    "link_id",
];

fn push_pk(key: &str) -> String {
    format!("PUSH#{key}")
}
/// One pending item per authorization code: two authorizations of the same authorizer in the
/// same second (same `CreateTime`, different codes) are both kept.
fn pending_sk(p: &PendingAuthorization) -> String {
    let digest = crate::crypto::sha1_hex(p.authorization_code.expose_secret());
    format!(
        "{}#{:012}#{}",
        pending_prefix(&p.authorizer_appid),
        p.create_time,
        digest.get(..16).unwrap_or(&digest)
    )
}
/// Every pending item of one authorizer (appids have a fixed length, so no other authorizer's
/// items share the prefix; items written before the per-code key have exactly this key).
fn pending_prefix(appid: &str) -> String {
    format!("AUTH#{appid}")
}
fn authorizer_pk(appid: &str) -> String {
    format!("AUTHORIZER#{appid}")
}

/// A projection expression over `attributes` with a name placeholder each (`state` and other
/// reserved words need one).
fn projection(attributes: &[&str]) -> (String, std::collections::HashMap<String, String>) {
    let names: std::collections::HashMap<String, String> = attributes
        .iter()
        .enumerate()
        .map(|(i, a)| (format!("#p{i}"), (*a).to_string()))
        .collect();
    let expression = (0..attributes.len())
        .map(|i| format!("#p{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    (expression, names)
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// `true` when a conditional write happened, `false` when only its condition did not hold.
fn applied<O, E, R>(result: Result<O, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata,
    StoreError: From<SdkError<E, R>>,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if condition_failed(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
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
    #[serde(default)]
    pre_auth_digest: Option<String>,
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
            pre_auth_digest: i.pre_auth_digest,
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

    /// [`Self::get`] projected to `attributes`.
    pub(super) async fn get_projected(
        &self,
        pk: String,
        sk: &str,
        attributes: &[&str],
    ) -> Result<Option<std::collections::HashMap<String, AttributeValue>>, StoreError> {
        let (expression, names) = projection(attributes);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .projection_expression(expression)
            .set_expression_attribute_names(Some(names))
            .send()
            .await?;
        Ok(out.item)
    }

    /// [`Self::get`], mapped to `T`.
    async fn get_as<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        sk: &str,
    ) -> Result<Option<T>, StoreError> {
        Ok(self.get(pk, sk).await?.map(from_item).transpose()?)
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
    let attr = |name: &str, kind: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
    };
    let refresh_index = GlobalSecondaryIndex::builder()
        .index_name(REFRESH_INDEX)
        .key_schema(key("refresh_pk", KeyType::Hash)?)
        .key_schema(key("due_at", KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .non_key_attributes("version")
                .build(),
        )
        .build()?;
    // An index of authorizers by (`hash`, appid), projecting `attributes` (never a token).
    let authorizer_index = |name: &str, hash: &str, attributes: &[&str]| {
        let mut projection = Projection::builder().projection_type(ProjectionType::Include);
        for a in attributes.iter().filter(|a| !matches!(**a, "pk" | "sk")) {
            projection = projection.non_key_attributes(*a);
        }
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(hash, KeyType::Hash)?)
            .key_schema(key("appid", KeyType::Range)?)
            .projection(projection.build())
            .build()
    };
    let authorizers_index =
        authorizer_index(AUTHORIZERS_INDEX, "entity", AUTHORIZERS_INDEX_ATTRIBUTES)?;
    let customers_index =
        authorizer_index(CUSTOMERS_INDEX, "customer_ref", CUSTOMERS_INDEX_ATTRIBUTES)?;
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk", ScalarAttributeType::S)?)
        .attribute_definitions(attr("sk", ScalarAttributeType::S)?)
        .attribute_definitions(attr("refresh_pk", ScalarAttributeType::S)?)
        .attribute_definitions(attr("due_at", ScalarAttributeType::N)?)
        .attribute_definitions(attr("entity", ScalarAttributeType::S)?)
        .attribute_definitions(attr("appid", ScalarAttributeType::S)?)
        .global_secondary_indexes(authorizers_index)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(refresh_index)
        .attribute_definitions(attr("customer_ref", ScalarAttributeType::S)?)
        .global_secondary_indexes(customers_index)
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

const CODE_SK: &str = "CLAIM";
/// Code claims are kept a day (codes live an hour).
const CODE_CLAIM_TTL_SECS: i64 = 86_400;

const SESSION_SK: &str = "SESSION";
/// Sessions are kept a day past their expiry (for status reads), then TTL removes them.
const SESSION_RETENTION_SECS: i64 = 86_400;

impl DynamoStore {
    /// Bulk import of authorizers into a table that does not hold them yet (migrating from
    /// another platform implementation, seeding benchmarks): the same item `record_authorization`
    /// writes, 25 per BatchWriteItem, without conditions. Unprocessed items are retried.
    pub async fn import_authorizers(
        &self,
        grants: &[AuthorizationGrant],
    ) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        for chunk in grants.chunks(25) {
            let mut requests = Vec::with_capacity(chunk.len());
            for g in chunk {
                let mut item = std::collections::HashMap::from([
                    ("pk".to_string(), s(authorizer_pk(&g.appid))),
                    ("sk".to_string(), s(AUTHORIZER_SK)),
                    ("appid".to_string(), s(&g.appid)),
                    ("entity".to_string(), s(AUTHORIZER_ENTITY)),
                    ("state".to_string(), s("authorized")),
                    ("last_event_at".to_string(), n(g.event_time.unwrap_or(0))),
                    ("updated_at".to_string(), n(g.now)),
                    ("authorized_at".to_string(), n(g.now)),
                    (
                        "func_info".to_string(),
                        serde_dynamo::to_attribute_value(&g.func_info)?,
                    ),
                    (
                        "access_token".to_string(),
                        s(g.token.access_token.expose_secret()),
                    ),
                    ("expires_at".to_string(), n(g.token.expires_at)),
                    ("version".to_string(), n(1)),
                    ("refresh_pk".to_string(), s(DUE_PARTITION)),
                    ("due_at".to_string(), n(g.token.expires_at)),
                    ("refreshed_at".to_string(), n(g.now)),
                ]);
                if let Some(r) = &g.token.refresh_token {
                    item.insert("refresh_token".into(), s(r.expose_secret()));
                }
                if let Some(p) = &g.profile {
                    item.insert("profile".into(), serde_dynamo::to_attribute_value(p)?);
                }
                requests.push(
                    WriteRequest::builder()
                        .put_request(PutRequest::builder().set_item(Some(item)).build()?)
                        .build(),
                );
            }
            let mut pending = Some(std::collections::HashMap::from([(
                self.table.clone(),
                requests,
            )]));
            for _ in 0..8 {
                let Some(items) = pending.take().filter(|m| m.values().any(|v| !v.is_empty()))
                else {
                    break;
                };
                let out = self
                    .client
                    .batch_write_item()
                    .set_request_items(Some(items))
                    .send()
                    .await?;
                pending = out.unprocessed_items;
            }
        }
        Ok(())
    }
}
