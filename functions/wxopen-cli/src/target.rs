//! Which stack the command talks to: a deployed one (CloudFormation outputs and resources) or
//! the local one (`make dev`).

use std::collections::BTreeMap;

use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::api::Api;
use crate::cli::TargetArgs;
use crate::error::CliError;

/// The local stack's default port (`make dev`, `PORT=`).
pub const LOCAL_PORT: u16 = 8787;

/// A deployed stack: its outputs and the physical ids of its alarms.
#[derive(Debug, Clone, Default)]
pub struct StackInfo {
    pub name: String,
    pub outputs: BTreeMap<String, String>,
    /// Physical ids (= alarm names) of the stack's `AWS::CloudWatch::Alarm` resources, by
    /// logical id.
    pub alarms: BTreeMap<String, String>,
}

impl StackInfo {
    pub fn output(&self, key: &str) -> Option<&str> {
        self.outputs
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

pub struct Target {
    pub api: Api,
    pub aws: SdkConfig,
    /// None for `--local` / `--endpoint`.
    pub stack: Option<StackInfo>,
    pub local: bool,
}

impl Target {
    pub async fn resolve(args: &TargetArgs) -> Result<Self, CliError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(r) = &args.region {
            loader = loader.region(Region::new(r.clone()));
        }
        let aws = loader.load().await;
        if let Some(name) = &args.stack {
            let stack = describe(&aws, name).await?;
            let url = stack
                .output("ApiUrl")
                .ok_or_else(|| CliError::NoApiUrl(name.clone()))?
                .to_string();
            return Ok(Self {
                api: Api::new(&url, &aws).await?,
                aws,
                stack: Some(stack),
                local: false,
            });
        }
        let (url, local) = match (&args.endpoint, args.local) {
            (Some(u), _) => (u.clone(), false),
            (None, true) => {
                let port = std::env::var("PORT")
                    .ok()
                    .and_then(|p| p.parse::<u16>().ok())
                    .unwrap_or(LOCAL_PORT);
                (format!("http://127.0.0.1:{port}"), true)
            }
            (None, false) => return Err(CliError::NoTarget),
        };
        Ok(Self {
            api: Api::new(&url, &aws).await?,
            aws,
            stack: None,
            local,
        })
    }

    /// The stack's name, or the endpoint for a local one.
    pub fn label(&self) -> String {
        match &self.stack {
            Some(s) => format!("stack {}", s.name),
            None => self.api.base().to_string(),
        }
    }
}

async fn describe(aws: &SdkConfig, name: &str) -> Result<StackInfo, CliError> {
    let cfn = aws_sdk_cloudformation::Client::new(aws);
    let err = |e: String| CliError::Stack {
        stack: name.to_string(),
        cause: e,
    };
    let out = cfn
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| err(aws_message(&e)))?;
    let stack = out
        .stacks()
        .first()
        .ok_or_else(|| err("not found".into()))?;
    let outputs = stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
        .collect();
    let resources = cfn
        .describe_stack_resources()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| err(aws_message(&e)))?;
    let alarms = resources
        .stack_resources()
        .iter()
        .filter(|r| r.resource_type() == Some("AWS::CloudWatch::Alarm"))
        .filter_map(|r| {
            Some((
                r.logical_resource_id()?.to_string(),
                r.physical_resource_id()?.to_string(),
            ))
        })
        .collect();
    Ok(StackInfo {
        name: name.to_string(),
        outputs,
        alarms,
    })
}

/// An SDK error's service message (never a credential: the SDK's errors carry none).
pub fn aws_message<E: std::error::Error + 'static>(e: &E) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    msg
}
