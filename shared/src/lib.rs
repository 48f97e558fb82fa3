//! `wxopen`: the domain of a serverless WeChat Open Platform third-party platform (第三方平台),
//! shared by the Lambda functions in `functions/`.
//!
//! A function's `lib.rs` is glue: it parses the request with [`http`], calls a feature, and maps
//! the outcome to a response; its `main.rs` only wires ([`runtime::FromRuntime`]). Everything
//! else lives here.
//!
//! # Layout
//!
//! Modules sit in layers; a module uses only modules of lower layers (and, below the features,
//! of its own layer). `tests/layout.rs` enforces this, so a new module must be placed there.
//!
//! | layer | module | owns |
//! |---|---|---|
//! | 0 foundation | [`appid`] | the `Appid` newtype, parsed once at the edge |
//! | | [`clock`] | time as a port (`SystemClock`, `FixedClock`) |
//! | | [`config`] | environment → typed `Config`, validated at start |
//! | | [`html`] | the shared page shell of every HTML page (style, escaping, security headers' values) |
//! | | [`crypto`] | signature check, AES-CBC, PKCS#7 (32-byte block), receive-id check |
//! | | [`xml`] | typed pushes and messages (canonical scanner held equal to quick-xml), replies |
//! | | [`push`] | opening a push: query, timestamp window, signature, decryption |
//! | | [`secrets`] | the component's credentials from Secrets Manager, cached |
//! | | [`qr`] | a text as a QR code PNG (and the PNG writer) |
//! | | [`model`] | the records the store keeps (authorizer, tokens, pending authorizations, sessions) |
//! | 1 ports | [`store`] | one port trait per aggregate + the DynamoDB adapter (`store::dynamo`) |
//! | | [`wechat`] | the WeChat HTTP client: the API table, one file of methods per area, errcodes |
//! | | [`queue`] | the work queue port (`WorkQueue`) and its SQS adapter |
//! | 2 core | [`tokens`] | the token lifecycle: lease, refresh, compare-and-set, recovery, and the one stale-token retry (`with_component_token` / `with_authorizer_token`) |
//! | | [`permissions`] | the permission-set catalogue and `require(record, sets)` |
//! | | [`identity`] | one identity per person (UnionID or appid+openid), merges, conflicts, account binding |
//! | | [`login_codes`] | one-time sign-in results, the `return_to` allowlist |
//! | 3 features | [`authorization`] | links, the merchant's pages, the code exchange (exactly once) |
//! | | [`open_account`] | create / bind / unbind / get an open account |
//! | | [`login`] | follow-to-log-in sessions and scans, the hosted page |
//! | | [`oauth`] | web OAuth on behalf of an official account (signed single-use state) |
//! | | [`miniprogram_login`] | mini program login on behalf (`jscode2session`) |
//! | | [`registration`] | fast registration of mini programs: validation, the enterprise API or the official account's page, the record and its state |
//! | | [`code`] | mini program code: the template library, one code record per mini program (commit, audit, release, gray), audit pushes applied |
//! | | [`status`] | the platform at a glance for the operator (`GET /status`): ticket age, component token expiry, authorizers by state, failing tokens, outbox age |
//! | 4 composition | [`callbacks`] | what each push URL does, in priority order, across features; the full-network release test (`callbacks::release_test`: it exchanges codes and sends messages); a fast registration's outcome (`callbacks::fast_registration`: it exchanges the code) |
//! | | [`refresher`] | the scheduled run: due tokens, pending authorizations, recovery |
//! | | [`releases`] | fleet release jobs: the request, the engine (one idempotent step per queue message), audit results, quota waits |
//! | 5 edge | [`http`] | responses, request helpers, the one error shape (`http::errors`), JSON views (`http::views`) |
//! | | [`app`], [`runtime`] | the per-invocation dependencies, the production wiring |
//! | | [`logging`] | the tracing subscriber (dependencies capped at WARN) |
//!
//! Rules that go with it:
//! * Features never call each other; what needs two features is composed in layer 4.
//! * The domain (layers 0–4) never sees `lambda_http` or `ApiError`; [`http::errors`] maps every
//!   domain error to the error shape.
//! * Settings are built from [`config::Config`] by the module that owns them
//!   (`LoginSettings::from_config`, `LinkHosts::from_config`, `RefreshSettings::from_config`).
//! * Every WeChat call that takes a token goes through `tokens::TokenService::with_*_token`, so
//!   a stale token is refreshed once, by version, for every caller.
//!
//! See CONTRIBUTING.md for the checklists "add a route" and "add a WeChat API".

pub mod app;
pub mod appid;
pub mod authorization;
pub mod callbacks;
pub mod clock;
pub mod code;
pub mod config;
pub mod crypto;
pub mod events;
pub mod gateway;
pub mod html;
pub mod http;
pub mod identity;
pub mod logging;
pub mod login;
pub mod login_codes;
pub mod miniprogram_login;
pub mod model;
pub mod oauth;
pub mod open_account;
pub mod permissions;
pub mod push;
pub mod qr;
pub mod queue;
pub mod refresher;
pub mod registration;
pub mod releases;
pub mod reply;
pub mod runtime;
pub mod secrets;
pub mod status;
pub mod store;
pub mod tokens;
pub mod wechat;
pub mod xml;
