//! Authorization links, the pre-auth codes their pages offer, and the customer an authorizer
//! belongs to.

use super::*;

const LINK_SK: &str = "LINK";
const PREAUTH_SK: &str = "PREAUTH";
/// Links are kept this long past their expiry (for `GET /authorize/links/{id}`), then TTL
/// removes them.
const LINK_RETENTION_SECS: i64 = 30 * 86_400;
/// A pre-auth digest item outlives its code by a day (a late push still resolves).
const PREAUTH_RETENTION_SECS: i64 = 86_400;

fn link_pk(id: &str) -> String {
    format!("LINK#{id}")
}
fn preauth_pk(digest: &str) -> String {
    format!("PREAUTH#{digest}")
}

#[derive(Serialize, Deserialize)]
struct LinkItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    link: AuthorizationLink,
    #[serde(default)]
    pre_auth_code: Option<String>,
    #[serde(default)]
    pre_auth_expires_at: Option<i64>,
    ttl: i64,
}

#[derive(Deserialize)]
struct PreAuthItem {
    link_id: String,
}

impl DynamoStore {
    async fn put_pre_auth_digest(
        &self,
        id: &str,
        pre_auth: &PreAuth,
        digest: &str,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(preauth_pk(digest)))
            .item("sk", s(PREAUTH_SK))
            .item("link_id", s(id))
            .item("ttl", n(pre_auth.expires_at + PREAUTH_RETENTION_SECS))
            .send()
            .await?;
        Ok(())
    }
}

impl LinkStore for DynamoStore {
    async fn create_link(
        &self,
        link: &AuthorizationLink,
        pre_auth: &PreAuth,
        pre_auth_digest: &str,
    ) -> Result<(), StoreError> {
        // The digest first: a push that beats the link write still resolves once it exists.
        self.put_pre_auth_digest(&link.id, pre_auth, pre_auth_digest)
            .await?;
        let item = to_item(LinkItem {
            pk: link_pk(&link.id),
            sk: LINK_SK.into(),
            link: link.clone(),
            pre_auth_code: Some(pre_auth.code.expose_secret().to_string()),
            pre_auth_expires_at: Some(pre_auth.expires_at),
            ttl: link.expires_at + LINK_RETENTION_SECS,
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

    async fn get_link(
        &self,
        id: &str,
    ) -> Result<Option<(AuthorizationLink, Option<PreAuth>)>, StoreError> {
        let Some(item) = self.get(link_pk(id), LINK_SK).await? else {
            return Ok(None);
        };
        let i: LinkItem = from_item(item)?;
        let pre_auth = match (i.pre_auth_code, i.pre_auth_expires_at) {
            (Some(code), Some(expires_at)) => Some(PreAuth {
                code: code.into(),
                expires_at,
            }),
            _ => None,
        };
        Ok(Some((i.link, pre_auth)))
    }

    async fn claim_pre_auth_renewal(
        &self,
        id: &str,
        seen_expires_at: i64,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(link_pk(id)))
            .key("sk", s(LINK_SK))
            .update_expression("SET renew_until = :until")
            .condition_expression(
                "#status = :pending AND (attribute_not_exists(pre_auth_expires_at) OR pre_auth_expires_at = :seen) \
                 AND (attribute_not_exists(renew_until) OR renew_until < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":seen", n(seen_expires_at))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":until", n(until))
            .send()
            .await;
        applied(result)
    }

    async fn set_pre_auth(
        &self,
        id: &str,
        pre_auth: &PreAuth,
        pre_auth_digest: &str,
    ) -> Result<(), StoreError> {
        self.put_pre_auth_digest(id, pre_auth, pre_auth_digest)
            .await?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(link_pk(id)))
            .key("sk", s(LINK_SK))
            .update_expression(
                "SET pre_auth_code = :c, pre_auth_expires_at = :e REMOVE renew_until",
            )
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":c", s(pre_auth.code.expose_secret()))
            .expression_attribute_values(":e", n(pre_auth.expires_at))
            .send()
            .await;
        applied(result)?;
        Ok(())
    }

    async fn link_for_pre_auth(&self, pre_auth_digest: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .get_as::<PreAuthItem>(preauth_pk(pre_auth_digest), PREAUTH_SK)
            .await?
            .map(|i| i.link_id))
    }

    async fn bind_link(
        &self,
        link: &AuthorizationLink,
        appid: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(link_pk(&link.id)))
            .key("sk", s(LINK_SK))
            .update_expression(
                "SET #status = :authorized, authorizer_appid = :a, authorized_at = if_not_exists(authorized_at, :now) \
                 REMOVE pre_auth_code, renew_until",
            )
            .condition_expression("#status = :pending OR authorizer_appid = :a")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":authorized", s("authorized"))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":a", s(appid))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        if !applied(result)? {
            return Ok(false);
        }
        let tied = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(authorizer_pk(appid)))
            .key("sk", s(AUTHORIZER_SK))
            .update_expression("SET customer_ref = :c, link_id = :l")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":c", s(&link.customer_ref))
            .expression_attribute_values(":l", s(&link.id))
            .send()
            .await;
        applied(tied)
    }

    async fn customer_authorizers(
        &self,
        customer_ref: &str,
        state: Option<AuthorizerState>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<(Vec<AuthorizerRecord>, Option<String>), StoreError> {
        self.page_authorizers(
            CUSTOMERS_INDEX,
            ("customer_ref", customer_ref),
            state,
            limit,
            after,
        )
        .await
    }
}
