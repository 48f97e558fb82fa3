//! The adapters against real parts: the store on DynamoDB (moto), the WeChat client over HTTP.

mod store_contract;
mod wechat_client;
mod events_replies;
