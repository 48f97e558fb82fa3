//! The command line (clap derive): `--help` on every command.

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "wxopen",
    version,
    about = "Operate a wxopen stack: status, first-deploy checks, links, authorizers, releases, events",
    after_help = "Examples:\n  wxopen --stack wxopen status\n  wxopen --local doctor\n  \
                  wxopen --stack wxopen authorizers --state needs_reauth --json"
)]
pub struct Cli {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print JSON (for scripts) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// The deployed CloudFormation stack (its outputs give the API URL, secret, bus, alarms).
    #[arg(long, env = "WXOPEN_STACK", global = true)]
    pub stack: Option<String>,
    /// The local stack started by `make dev` (http://127.0.0.1:8787, or $PORT).
    #[arg(long, global = true, conflicts_with_all = ["stack", "endpoint"])]
    pub local: bool,
    /// Any wxopen API base URL (calls are still SigV4-signed when credentials are available).
    #[arg(long, env = "WXOPEN_ENDPOINT", global = true, conflicts_with = "stack")]
    pub endpoint: Option<String>,
    /// AWS region (default: the standard chain, AWS_REGION / the profile).
    #[arg(long, global = true)]
    pub region: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ticket age, component token expiry, authorizers by state, failing tokens, outbox age,
    /// release jobs: each with a verdict (ok / attention / broken).
    Status,
    /// The first-deploy checklist: secret filled, callback URLs to register, ticket received,
    /// egress IP to whitelist (and 61004), alarms in ALARM; what to do for each.
    Doctor,
    /// Authorization links for the provider's customers.
    #[command(subcommand)]
    Links(LinksCommand),
    /// The authorizers (merchants), optionally of one state or customer.
    Authorizers {
        /// authorized, unauthorized or needs_reauth.
        #[arg(long)]
        state: Option<String>,
        /// The provider's customer reference given when the link was created.
        #[arg(long)]
        customer: Option<String>,
    },
    /// One authorizer: profile, permission sets by name, token health, code state.
    Authorizer {
        /// The authorizer's appid.
        appid: String,
    },
    /// Fleet releases of mini program code.
    #[command(subcommand)]
    Releases(ReleasesCommand),
    /// Events from the stack's bus, as they are published (a queue with a rule on the bus).
    #[command(subcommand)]
    Events(EventsCommand),
}

#[derive(Debug, Subcommand)]
pub enum LinksCommand {
    /// Creates a link for one customer and prints its URLs.
    Create {
        /// The provider's reference for the customer.
        #[arg(long)]
        customer: String,
        /// 1 official accounts, 2 mini programs, 3 both (WeChat's auth_type).
        #[arg(long)]
        auth_type: Option<u8>,
        /// Where the merchant's browser goes afterwards (must be allowlisted).
        #[arg(long)]
        return_to: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReleasesCommand {
    /// Starts a fleet release (POST /releases) and prints its id.
    Create {
        /// The template library's template id to commit.
        #[arg(long)]
        template_id: u64,
        /// The version shown to users.
        #[arg(long)]
        version: String,
        /// The version description.
        #[arg(long, default_value = "")]
        description: String,
        /// Target mini programs (repeat); none: every authorized mini program.
        #[arg(long = "appid")]
        appids: Vec<String>,
        /// Only the mini programs of this customer.
        #[arg(long)]
        customer: Option<String>,
        /// Then watch it (as `releases watch`).
        #[arg(long)]
        watch: bool,
    },
    /// Follows a release with a progress bar per target state until it ends.
    Watch {
        /// The release job's id.
        id: String,
        /// Seconds between polls.
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
    },
    /// Cancels a release's remaining targets.
    Cancel {
        /// The release job's id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Prints every event published on the bus until Ctrl-C (or --max).
    Tail {
        /// The bus (default: the stack's output EventBusName).
        #[arg(long)]
        bus: Option<String>,
        /// Only these detail-types (repeat), e.g. authorizer.message.
        #[arg(long = "type")]
        types: Vec<String>,
        /// Stop after this many events.
        #[arg(long)]
        max: Option<usize>,
        /// Stop after this many seconds without events.
        #[arg(long)]
        idle: Option<u64>,
        /// Keep the queue and rule afterwards (default: removed on exit).
        #[arg(long)]
        keep: bool,
    },
}
