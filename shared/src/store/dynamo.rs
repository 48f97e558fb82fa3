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

const TICKET_PK: &str = "COMPONENT";
const TICKET_SK: &str = "TICKET";
const PUSH_SK: &str = "PUSH";
const PENDING_PK: &str = "PENDING";
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
    let mut projection = Projection::builder().projection_type(ProjectionType::Include);
    for a in AUTHORIZERS_INDEX_ATTRIBUTES
        .iter()
        .filter(|a| !matches!(**a, "pk" | "sk"))
    {
        projection = projection.non_key_attributes(*a);
    }
    let authorizers_index = GlobalSecondaryIndex::builder()
        .index_name(AUTHORIZERS_INDEX)
        .key_schema(key("entity", KeyType::Hash)?)
        .key_schema(key("appid", KeyType::Range)?)
        .projection(projection.build())
        .build()?;
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
        Ok(if applied(result)? {
            TicketWrite::Stored
        } else {
            TicketWrite::NotNewer
        })
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
        Ok(if applied(result)? {
            EventApplied::Applied
        } else {
            EventApplied::Superseded
        })
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
        // Nothing to drop (or a newer pending one) is fine.
        applied(dropped)?;
        Ok(EventApplied::Applied)
    }

    async fn get_authorizer(&self, appid: &str) -> Result<Option<AuthorizerRecord>, StoreError> {
        match self.get(authorizer_pk(appid), AUTHORIZER_SK).await? {
            Some(item) => Ok(Some(from_item(item)?)),
            None => Ok(None),
        }
    }
}

fn token_key(key: &TokenKey) -> (String, &'static str) {
    match key {
        TokenKey::Component => (TICKET_PK.to_string(), TOKEN_SK),
        TokenKey::Authorizer(appid) => (authorizer_pk(appid), AUTHORIZER_SK),
    }
}

fn key_from_pk(pk: &str) -> Option<TokenKey> {
    if pk == TICKET_PK {
        Some(TokenKey::Component)
    } else {
        pk.strip_prefix("AUTHORIZER#")
            .map(|a| TokenKey::Authorizer(a.to_string()))
    }
}

#[derive(Deserialize)]
struct TokenItem {
    access_token: Option<String>,
    expires_at: Option<i64>,
    version: Option<u64>,
    lease_owner: Option<String>,
    lease_until: Option<i64>,
    refresh_token: Option<String>,
    state: Option<AuthorizerState>,
}

#[derive(Deserialize)]
struct IndexItem {
    pk: String,
    due_at: i64,
    version: Option<u64>,
}

fn version_condition(expected: u64) -> &'static str {
    if expected == 0 {
        "attribute_not_exists(version)"
    } else {
        "version = :v"
    }
}

impl DynamoStore {
    async fn query_index(
        &self,
        partition: &str,
        before: i64,
        limit: usize,
    ) -> Result<Vec<IndexItem>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(REFRESH_INDEX)
                .key_condition_expression("refresh_pk = :p AND due_at <= :before")
                .expression_attribute_values(":p", s(partition))
                .expression_attribute_values(":before", n(before))
                .set_limit(i32::try_from(limit.saturating_sub(out.len()).clamp(1, 1000)).ok())
                .set_exclusive_start_key(start)
                .send()
                .await?;
            for item in page.items.unwrap_or_default() {
                out.push(from_item::<_, IndexItem>(item)?);
            }
            start = page.last_evaluated_key;
            if start.is_none() || out.len() >= limit {
                out.truncate(limit);
                return Ok(out);
            }
        }
    }
}

impl TokenStore for DynamoStore {
    async fn get_token(&self, key: &TokenKey) -> Result<Option<TokenRecord>, StoreError> {
        let (pk, sk) = token_key(key);
        let Some(item) = self.get(pk, sk).await? else {
            return Ok(None);
        };
        let t: TokenItem = from_item(item)?;
        Ok(Some(TokenRecord {
            access_token: t.access_token.map(Into::into),
            expires_at: t.expires_at.unwrap_or(0),
            version: t.version.unwrap_or(0),
            lease_owner: t.lease_owner,
            lease_until: t.lease_until.unwrap_or(0),
            refresh_token: t.refresh_token.map(Into::into),
            state: t.state,
        }))
    }

    async fn acquire_lease(
        &self,
        key: &TokenKey,
        expected_version: u64,
        owner: &str,
        now: i64,
        until: i64,
    ) -> Result<LeaseOutcome, StoreError> {
        let (pk, sk) = token_key(key);
        let mut condition = format!(
            "{} AND (attribute_not_exists(lease_until) OR lease_until < :now)",
            version_condition(expected_version)
        );
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression("SET lease_owner = :o, lease_until = :until")
            .expression_attribute_values(":o", s(owner))
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":now", n(now));
        if expected_version != 0 {
            req = req.expression_attribute_values(":v", n(expected_version as i64));
        }
        if let TokenKey::Authorizer(_) = key {
            condition.push_str(" AND #state = :authorized");
            req = req
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":authorized", s("authorized"));
        }
        Ok(
            if applied(req.condition_expression(condition).send().await)? {
                LeaseOutcome::Acquired
            } else {
                LeaseOutcome::Conflict
            },
        )
    }

    async fn commit_token(
        &self,
        key: &TokenKey,
        owner: &str,
        expected_version: u64,
        token: &NewToken,
    ) -> Result<CommitOutcome, StoreError> {
        let (pk, sk) = token_key(key);
        let new_version = expected_version + 1;
        let mut update = String::from(
            "SET access_token = :t, expires_at = :e, version = :nv, refresh_pk = :rp, due_at = :e",
        );
        let mut condition = format!(
            "lease_owner = :o AND {}",
            version_condition(expected_version)
        );
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .expression_attribute_values(":t", s(token.access_token.expose_secret()))
            .expression_attribute_values(":e", n(token.expires_at))
            .expression_attribute_values(":nv", n(new_version as i64))
            .expression_attribute_values(":rp", s(DUE_PARTITION))
            .expression_attribute_values(":o", s(owner));
        if expected_version != 0 {
            req = req.expression_attribute_values(":v", n(expected_version as i64));
        }
        if let Some(refresh) = &token.refresh_token {
            update.push_str(", refresh_token = :r");
            req = req.expression_attribute_values(":r", s(refresh.expose_secret()));
        }
        if let TokenKey::Authorizer(_) = key {
            condition.push_str(" AND #state = :authorized");
            req = req
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":authorized", s("authorized"));
        }
        update.push_str(" REMOVE lease_owner, lease_until");
        Ok(
            if applied(
                req.update_expression(update)
                    .condition_expression(condition)
                    .send()
                    .await,
            )? {
                CommitOutcome::Committed(new_version)
            } else {
                CommitOutcome::LostLease
            },
        )
    }

    async fn release_lease(&self, key: &TokenKey, owner: &str) -> Result<(), StoreError> {
        let (pk, sk) = token_key(key);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression("REMOVE lease_owner, lease_until")
            .condition_expression("lease_owner = :o")
            .expression_attribute_values(":o", s(owner))
            .send()
            .await;
        applied(result)?;
        Ok(())
    }

    async fn due_tokens(&self, before: i64, limit: usize) -> Result<Vec<DueToken>, StoreError> {
        Ok(self
            .query_index(DUE_PARTITION, before, limit)
            .await?
            .into_iter()
            .filter_map(|i| {
                Some(DueToken {
                    key: key_from_pk(&i.pk)?,
                    version: i.version.unwrap_or(0),
                    due_at: i.due_at,
                })
            })
            .collect())
    }

    async fn mark_needs_reauth(
        &self,
        appid: &str,
        owner: &str,
        now: i64,
    ) -> Result<CommitOutcome, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(authorizer_pk(appid)))
            .key("sk", s(AUTHORIZER_SK))
            .update_expression(
                "SET #state = :needs, refresh_pk = :rp, due_at = :now, updated_at = :now \
                 REMOVE access_token, lease_owner, lease_until",
            )
            .condition_expression("lease_owner = :o AND #state = :authorized")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":needs", s("needs_reauth"))
            .expression_attribute_values(":authorized", s("authorized"))
            .expression_attribute_values(":rp", s(REAUTH_PARTITION))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":o", s(owner))
            .send()
            .await;
        Ok(if applied(result)? {
            CommitOutcome::Committed(0)
        } else {
            CommitOutcome::LostLease
        })
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

    async fn record_authorization(
        &self,
        g: &AuthorizationGrant,
    ) -> Result<EventApplied, StoreError> {
        let mut update = String::from(
            "SET appid = :appid, entity = :entity, #state = :authorized, last_event_at = :t, updated_at = :now, \
             authorized_at = :now, func_info = :f, access_token = :at, expires_at = :e, \
             refresh_token = :r, version = if_not_exists(version, :zero) + :one, refresh_pk = :rp, due_at = :e",
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
            .expression_attribute_values(":t", n(g.event_time))
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
        update.push_str(" REMOVE lease_owner, lease_until");
        let result = req
            .update_expression(update)
            .condition_expression("attribute_not_exists(last_event_at) OR last_event_at <= :t")
            .send()
            .await;
        Ok(if applied(result)? {
            EventApplied::Applied
        } else {
            EventApplied::Superseded
        })
    }
}

const CODE_SK: &str = "CLAIM";
/// Code claims are kept a day (codes live an hour).
const CODE_CLAIM_TTL_SECS: i64 = 86_400;

fn code_pk(code_id: &str) -> String {
    format!("AUTHCODE#{code_id}")
}

#[derive(Deserialize)]
struct CodeItem {
    done_for: Option<String>,
}

impl AuthCodeStore for DynamoStore {
    async fn claim_code(
        &self,
        code_id: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> Result<CodeClaim, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(code_pk(code_id)))
            .key("sk", s(CODE_SK))
            .update_expression("SET lease_owner = :o, lease_until = :until, #ttl = :ttl")
            .condition_expression("attribute_not_exists(pk) OR (attribute_not_exists(done_for) AND lease_until < :now)")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":o", s(owner))
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":ttl", n(now + CODE_CLAIM_TTL_SECS))
            .send()
            .await;
        match result {
            Ok(_) => Ok(CodeClaim::Claimed),
            Err(e) if condition_failed(&e) => {
                let item = self.get(code_pk(code_id), CODE_SK).await?;
                let done = item
                    .map(from_item::<_, CodeItem>)
                    .transpose()?
                    .and_then(|c| c.done_for);
                Ok(match done {
                    Some(authorizer_appid) => CodeClaim::Done { authorizer_appid },
                    None => CodeClaim::Busy,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn finish_code(
        &self,
        code_id: &str,
        owner: &str,
        authorizer_appid: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(code_pk(code_id)))
            .key("sk", s(CODE_SK))
            .update_expression("SET done_for = :a, done_at = :now REMOVE lease_owner, lease_until")
            .condition_expression("lease_owner = :o")
            .expression_attribute_values(":a", s(authorizer_appid))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":o", s(owner))
            .send()
            .await;
        applied(result)?;
        Ok(())
    }

    async fn release_code(&self, code_id: &str, owner: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(code_pk(code_id)))
            .key("sk", s(CODE_SK))
            .condition_expression("lease_owner = :o AND attribute_not_exists(done_for)")
            .expression_attribute_values(":o", s(owner))
            .send()
            .await;
        applied(result)?;
        Ok(())
    }

    async fn remove_pending_authorization(
        &self,
        appid: &str,
        create_time: i64,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(PENDING_PK))
            .key("sk", s(pending_sk(appid)))
            .condition_expression("create_time = :t")
            .expression_attribute_values(":t", n(create_time))
            .send()
            .await;
        applied(result)?;
        Ok(())
    }
}

impl AuthorizerListStore for DynamoStore {
    async fn list_authorizers(
        &self,
        state: Option<AuthorizerState>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<(Vec<AuthorizerRecord>, Option<String>), StoreError> {
        let mut out = Vec::new();
        let mut start = after.map(|appid| {
            std::collections::HashMap::from([
                ("pk".to_string(), s(authorizer_pk(appid))),
                ("sk".to_string(), s(AUTHORIZER_SK)),
                ("entity".to_string(), s(AUTHORIZER_ENTITY)),
                ("appid".to_string(), s(appid)),
            ])
        });
        loop {
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(AUTHORIZERS_INDEX)
                .key_condition_expression("entity = :e")
                .expression_attribute_values(":e", s(AUTHORIZER_ENTITY))
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

const SESSION_SK: &str = "SESSION";
/// Sessions are kept a day past their expiry (for status reads), then TTL removes them.
const SESSION_RETENTION_SECS: i64 = 86_400;

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
                    ("last_event_at".to_string(), n(g.event_time)),
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
