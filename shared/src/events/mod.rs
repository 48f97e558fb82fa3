//! Events out: every verified push, and wxopen's own authorization changes, as one EventBridge
//! event each (`source: "wxopen"`), published at least once and never doubled by wxopen.
//!
//! * [`detail`]: the event model, the stable id, what never leaves (credentials).
//! * [`publish`]: the `EventPublisher` port and the EventBridge adapter (batches of 10, 256 KB).
//! * [`outbox`]: recall / deliver / sweep: the record written before WeChat is answered, the
//!   outbox for what EventBridge refused, the scheduled sweep.
//! * [`metrics`]: the embedded-metric lines.
//!
//! The store side lives in `store::outbox` (`EventRecordStore`).

pub mod detail;
pub mod metrics;
pub mod outbox;
pub mod publish;

pub use detail::{AuthorizationChange, Detail, DetailType, Event, EventError, Known, SOURCE};
pub use publish::{EventBridgePublisher, EventEntry, EventPublisher, EventSettings, PublishReport};
