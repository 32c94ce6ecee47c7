//! Recording and alerting rules over Cairn's own data, as Prometheus runs
//! them: rule files in Prometheus's format (`file`), label and annotation
//! templates (`template`), one group's evaluation (`eval`), the scheduler,
//! reloads and the API's answers (`manager`), and alerts sent to
//! Alertmanager's v2 API (`notifier`).
//!
//! Time bounds: evaluation times are milliseconds since the epoch; every
//! result of an evaluation is stamped with its evaluation time.

mod error;
pub mod eval;
pub mod file;
mod manager;
pub mod notifier;
pub mod template;
mod time;

pub use error::{Result, RulesError};
pub use manager::{RuleManager, RulesEvent, RulesOptions};
pub use time::rfc3339;
