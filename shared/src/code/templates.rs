//! The template library (component token): the development mini program's drafts, adding a
//! draft as a template, listing and deleting templates.

use crate::clock::Clock;
use crate::secrets::CredentialsProvider;
use crate::store::TokenServiceStore;
use crate::tokens::TokenService;
use crate::wechat::{Draft, Template};

use super::CodeError;

/// `template_type`: 0 a normal template, 1 a standard template.
pub const TEMPLATE_TYPES: [i64; 2] = [0, 1];

pub async fn drafts<S, C, K>(svc: &TokenService<'_, S, C, K>) -> Result<Vec<Draft>, CodeError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    Ok(svc
        .with_component_token(|t| async move { svc.wechat.get_template_draft_list(&t).await })
        .await?)
}

pub async fn list<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    template_type: Option<i64>,
) -> Result<Vec<Template>, CodeError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    Ok(svc
        .with_component_token(
            |t| async move { svc.wechat.get_template_list(&t, template_type).await },
        )
        .await?)
}

/// Adds a draft to the library; answers the library afterwards (WeChat answers no id).
pub async fn add<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    draft_id: i64,
    template_type: i64,
) -> Result<Vec<Template>, CodeError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    svc.with_component_token(|t| async move {
        svc.wechat
            .add_to_template(&t, draft_id, template_type)
            .await
    })
    .await?;
    list(svc, None).await
}

pub async fn delete<S, C, K>(
    svc: &TokenService<'_, S, C, K>,
    template_id: i64,
) -> Result<(), CodeError>
where
    S: TokenServiceStore,
    C: CredentialsProvider,
    K: Clock,
{
    Ok(svc
        .with_component_token(|t| async move { svc.wechat.delete_template(&t, template_id).await })
        .await?)
}
