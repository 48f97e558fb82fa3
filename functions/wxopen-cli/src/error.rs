//! What can stop a command, each with what to do.

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("no stack to talk to")]
    NoTarget,
    #[error("the CloudFormation stack {stack:?} could not be read: {cause}")]
    Stack { stack: String, cause: String },
    #[error("the stack {0:?} has no output ApiUrl")]
    NoApiUrl(String),
    #[error("{0} could not be reached: {1}")]
    Unreachable(String, String),
    #[error("{method} {path} answered {status}: {error}{message}")]
    Api {
        method: String,
        path: String,
        status: u16,
        error: String,
        message: String,
    },
    #[error("no AWS credentials: {0}")]
    Credentials(String),
    #[error("signing the request failed: {0}")]
    Signing(String),
    #[error("{0}")]
    Usage(String),
    #[error("AWS call failed: {0}")]
    Aws(String),
}

impl CliError {
    /// What the operator should do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            CliError::NoTarget => "pass --stack NAME (the name you gave `sam deploy`, or set WXOPEN_STACK), \
                 --local for `make dev`, or --endpoint URL"
                .into(),
            CliError::Stack { .. } => "check the stack name, AWS_REGION (or --region) and your credentials \
                 (`aws sts get-caller-identity`); the stack must be deployed with `make deploy`"
                .into(),
            CliError::NoApiUrl(_) => "the stack is not a wxopen stack, or was deployed from an older template".into(),
            CliError::Unreachable(..) => "for --local, start the local stack with `make dev` (PORT= to change \
                 the port, then --endpoint http://127.0.0.1:PORT); for a deployed stack, check the network"
                .into(),
            CliError::Api { status: 403, .. } => "the API refused the signature: your IAM identity needs \
                 execute-api:Invoke on the stack's HTTP API"
                .into(),
            CliError::Api { status: 404, .. } => "the route or the record does not exist (an older stack? \
                 redeploy with `make deploy`)"
                .into(),
            CliError::Api { status: 503, .. } => "the platform is not ready: run `wxopen doctor`".into(),
            CliError::Api { .. } => "run `wxopen doctor`; the function's CloudWatch logs say more".into(),
            CliError::Credentials(_) => "configure AWS credentials (AWS_PROFILE, `aws configure`, or \
                 AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
                .into(),
            CliError::Aws(_) => "check your credentials and region; the operator needs read access to \
                 CloudFormation, CloudWatch and the stack's secret"
                .into(),
            CliError::Signing(_) | CliError::Usage(_) => return None,
        })
    }
}
