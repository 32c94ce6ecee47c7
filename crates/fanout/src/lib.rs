//! Query mode (issue 17's third part): one Cairn answering for several.
//!
//! - [`RemoteStore`]: another Cairn (or Prometheus) read over remote read
//!   (`STREAMED_XOR_CHUNKS`), for the recent data of ingesters that is not
//!   in the bucket yet (`--query.store URL`).
//! - [`Fanout`]: the local view (head, local and bucket blocks) and the
//!   remote stores as one [`cairn_storage::Queryable`], merged series by
//!   series (equal timestamps once). A store that cannot be reached is
//!   left out of the answer and counted, as Thanos's querier answers with
//!   a partial response by default.
//! - [`Dedup`]: replicas that differ only in replica labels
//!   (`--query.replica-label`) answered as one series: one replica's
//!   samples, gaps filled from another, never both (Thanos's penalty
//!   algorithm).
//!
//! Dependencies point down: storage traits, the remote-read protocol and
//! the chunk codecs; `cairn serve` wires these over its database.

mod dedup;
mod error;
mod fanout;
mod remote;
mod series;

pub use dedup::Dedup;
pub use error::{FanoutError, Result};
pub use fanout::{Fanout, StoreCounts};
pub use remote::{decode_read_response, RemoteStore};
pub use series::MaterializedSeries;
