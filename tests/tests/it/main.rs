//! wxopen's integration tests: one test binary (`cargo test -p wxopen-tests --test it`), one
//! module per area. Everything runs against real parts: moto for DynamoDB and Secrets Manager
//! (`AWS_ENDPOINT_URL`; a test that needs it fails without it, never skips), the WeChat sandbox
//! over real HTTP, the local gateway in front of the functions, and wechatpy for interop.
//!
//! * `e2e`: whole flows through the gateway, the functions and the sandbox.
//! * `handlers`: one function's handler called directly (no gateway).
//! * `adapters`: the store contract on DynamoDB, the WeChat client over HTTP.
//! * `sandbox`: the WeChat sandbox's own rules, one file per topic.
//! * `tokens`, `bad_input`, `template`, `interop_wechatpy`, `no_secrets_in_logs`: cross-cutting
//!   properties of the whole stack.
//! * `cli`: the operator's command `wxopen` run as a process against the local stack (and
//!   `releases watch` in a pty).
//! * `deployed`: template.yaml translated by the SAM translator and created in moto's
//!   CloudFormation; the demo story on the resources that stack created.
//! * `iam`: each function role of that stack under moto's IAM enforcement (a moto of its own):
//!   what its policy names is allowed, the rest denied.
//!
//! Run one area with a filter: `cargo test -p wxopen-tests --test it -- sandbox::`.

mod adapters;
mod bad_input;
mod cli;
mod common;
mod deployed;
mod e2e;
mod handlers;
mod iam;
mod interop_wechatpy;
mod local_stack_aim;
mod no_secrets_in_logs;
mod sandbox;
mod soak;
mod template;
mod tokens;
