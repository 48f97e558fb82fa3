//! The adapters against real parts: the store on DynamoDB (moto), the WeChat client over HTTP.

mod code_client;
mod code_store;
mod events_replies;
mod links_store;
mod releases_store;
mod store_contract;
mod wechat_client;
