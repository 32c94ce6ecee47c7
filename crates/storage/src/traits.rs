//! The traits themselves. See the crate docs for the shared contracts.

use std::sync::Arc;

use cairn_model::{Exemplar, FloatHistogram, Histogram, Labels, Matcher, Sample};

use crate::StorageError;

use crate::Result;

/// Identifies a series inside one appender's storage; 0 means "unknown".
pub type SeriesRef = u64;

/// What a query intends to do with a selection; storage may use it to skip
/// work but must stay correct when it ignores it.
#[derive(Debug, Clone, Default)]
pub struct SelectHints {
    /// Inclusive start of the data needed, in ms.
    pub start: i64,
    /// Inclusive end of the data needed, in ms.
    pub end: i64,
    /// Query step in ms (0 for instant queries).
    pub step: i64,
    /// Range of a range selector in ms (0 for instant selectors).
    pub range: i64,
    /// The function that consumes the selection, if any.
    pub func: Option<String>,
    /// The coarsest downsampled resolution (ms) the selection may read; 0
    /// reads raw data only. Storage without downsampled data ignores it.
    pub resolution: i64,
    /// Which aggregate of downsampled data stands in for the raw samples.
    /// Storage whose [`Queryable::downsampled`] is true answers
    /// [`Aggregate::Count`] with a resolution above 0 by counts: each
    /// downsampled window's count, and 1 for each raw sample it reads
    /// instead, so that summing them counts raw samples across levels.
    pub aggregate: Aggregate,
}

/// The 5-minute downsampled resolution, in ms.
pub const RES_5M: i64 = 5 * 60 * 1000;
/// The 1-hour downsampled resolution, in ms.
pub const RES_1H: i64 = 60 * 60 * 1000;

/// What downsampled data a selection reads in place of raw samples
/// (docs/format/downsample.md). Raw data is the same whatever is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Aggregate {
    /// Each window's average (sum ÷ count): plain selectors.
    #[default]
    Avg,
    /// Raw samples per window (`count_over_time`).
    Count,
    /// Each window's sum (`sum_over_time`).
    Sum,
    /// Each window's minimum (`min_over_time`).
    Min,
    /// Each window's maximum (`max_over_time`).
    Max,
    /// The counter, one point per window (its last sample), resets folded
    /// into the values so that increases survive: `rate`, `increase`,
    /// `irate`.
    Counter,
    /// The counter samples kept with both sides of every reset: `resets`.
    Resets,
}

impl Aggregate {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::Avg => "avg",
            Aggregate::Count => "count",
            Aggregate::Sum => "sum",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::Counter => "counter",
            Aggregate::Resets => "resets",
        }
    }
}

/// The kind of sample an iterator is positioned on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// Exhausted (or failed; see [`SampleIterator::err`]).
    None,
    Float,
    /// Reserved for native histograms with integer counts.
    Histogram,
    /// A native histogram with float counts; read it with
    /// [`SampleIterator::at_float_histogram`].
    FloatHistogram,
}

/// Iterates one series' samples in increasing time order.
pub trait SampleIterator {
    /// Advances to the next sample.
    fn next(&mut self) -> ValueType;
    /// Advances to the first sample with timestamp `>= t`. It never moves
    /// backwards: if the current sample is already at or after `t` it stays.
    fn seek(&mut self, t: i64) -> ValueType;
    /// The current float sample. Only valid after `next`/`seek` returned `Float`.
    fn at(&self) -> (i64, f64);
    /// The current timestamp, whatever the value type.
    fn at_t(&self) -> i64;
    /// The current native histogram. Only valid after `next`/`seek`
    /// returned `FloatHistogram` (or `Histogram`, converted); storages
    /// without histograms keep the default, which yields `None`.
    fn at_float_histogram(&self) -> Option<(i64, Arc<FloatHistogram>)> {
        None
    }
    /// The current native histogram in the integer form it was stored in
    /// (Prometheus's encoding 2), when it was; `None` for float-count
    /// histograms, floats, and storages that keep no integer form. The
    /// value type `next`/`seek` report stays `FloatHistogram` either way,
    /// so readers that want floats need not look here: remote read's
    /// `SAMPLES` answer does, to send integer histograms as integers as
    /// Prometheus does.
    fn at_histogram(&self) -> Option<(i64, Arc<cairn_model::Histogram>)> {
        None
    }
    /// The error that ended iteration, if any.
    fn err(&self) -> Option<&crate::StorageError> {
        None
    }
    /// Bulk read for queries: appends the current sample and the samples
    /// after it to `out`, up to and including timestamp `maxt`, as long as
    /// they are floats. Call it only when positioned on a float sample
    /// (`next`/`seek` returned `Float`). Returns what the iterator is
    /// positioned on afterwards, which was not appended: `Float` (the first
    /// sample after `maxt`), a histogram type, or `None` (exhausted or
    /// failed). Storages override it to decode whole chunks at a time; the
    /// result is always what stepping with `next` would give.
    fn read_floats(&mut self, maxt: i64, out: &mut Vec<Sample>) -> ValueType {
        read_floats_stepwise(self, maxt, out)
    }
}

/// [`SampleIterator::read_floats`] by stepping: the default, and the
/// fallback of overrides for the cases they do not speed up.
pub fn read_floats_stepwise<I: SampleIterator + ?Sized>(
    it: &mut I,
    maxt: i64,
    out: &mut Vec<Sample>,
) -> ValueType {
    loop {
        let (t, v) = it.at();
        if t > maxt {
            return ValueType::Float;
        }
        out.push(Sample::new(t, v));
        match it.next() {
            ValueType::Float => {}
            other => return other,
        }
    }
}

/// One encoded chunk, as stored: lets remote read stream chunks untouched.
#[derive(Debug, Clone)]
pub struct EncodedChunk {
    /// Inclusive bounds of the samples in the chunk.
    pub min_time: i64,
    pub max_time: i64,
    /// Prometheus's encoding byte (1 = XOR).
    pub encoding: u8,
    pub data: Vec<u8>,
}

/// Iterates encoded chunks in time order.
pub trait ChunkIterator {
    fn next_chunk(&mut self) -> Option<Result<EncodedChunk>>;
}

/// One series of a selection.
/// `Send`, so that a query may read the series of one selection on
/// several threads.
pub trait Series: Send {
    fn labels(&self) -> &Labels;
    /// A fresh iterator over the samples (within the querier's bounds).
    fn iter(&self) -> Box<dyn SampleIterator + '_>;
    /// The series' encoded chunks, for storages that hold chunks. Chunks may
    /// reach past the querier's bounds; readers must filter samples.
    fn chunks(&self) -> Option<Box<dyn ChunkIterator + '_>> {
        None
    }
    /// A hint that this series is about to be read: an implementation may
    /// start loading into cache what reading it touches first. It never
    /// blocks, fails or changes what a read returns. A reader going through
    /// a list calls it with [`Prefetch::Record`] a few series ahead, then
    /// with [`Prefetch::Contents`] on the next one.
    fn prefetch(&self, depth: Prefetch) {
        let _ = depth;
    }
}

/// How far [`Series::prefetch`] reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefetch {
    /// The series' own record (what locating its data reads first).
    Record,
    /// What the record points to (chunk lists, chunk bytes, labels);
    /// meant for a series whose record was prefetched a little earlier.
    Contents,
}

/// A lazily produced, label-sorted sequence of series.
pub type SeriesSet<'a> = Box<dyn Iterator<Item = Result<Box<dyn Series + 'a>>> + 'a>;

/// Reads series over a fixed time range. `Sync`, so that a querier over
/// several sources can read them on several threads.
pub trait Querier: Sync {
    /// Series that satisfy every matcher and have data in the querier's
    /// range, sorted by labels.
    fn select<'a>(&'a self, hints: &SelectHints, matchers: &[Matcher]) -> Result<SeriesSet<'a>>;
    /// What [`Self::select`] yields, collected: for callers that need the
    /// whole list anyway, such as the PromQL engine. A querier over several
    /// sources may select from them on up to `threads` threads at once
    /// (the lazy [`Self::select`] keeps memory flat for streaming readers).
    fn select_all<'a>(
        &'a self,
        hints: &SelectHints,
        matchers: &[Matcher],
        threads: usize,
    ) -> Result<Vec<Box<dyn Series + 'a>>> {
        let _ = threads;
        self.select(hints, matchers)?.collect()
    }
    /// Sorted, unique label names of the series that satisfy the matchers
    /// (all series when `matchers` is empty).
    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>>;
    /// Sorted, unique values of label `name` among matching series.
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>>;
}

/// Something that can be queried: a head, a block, a whole database.
pub trait Queryable: Send + Sync {
    /// A querier over the inclusive range `[mint, maxt]`.
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>>;
    /// Whether its queriers honour [`SelectHints::resolution`] and
    /// [`SelectHints::aggregate`] (see there). Queries against storage that
    /// does not read raw data only.
    fn downsampled(&self) -> bool {
        false
    }
    /// The exemplars of the series matching any of `selectors` (each a
    /// list of matchers that must all match) with timestamps in the
    /// inclusive range `[start, end]`: one entry per series that has any,
    /// sorted by series labels, each series' exemplars oldest first.
    /// Storage that keeps no exemplars (blocks) holds none.
    fn exemplars(
        &self,
        _start: i64,
        _end: i64,
        _selectors: &[Vec<Matcher>],
    ) -> Result<Vec<SeriesExemplars>> {
        Ok(Vec::new())
    }
}

/// A series' exemplars, as [`Queryable::exemplars`] answers them.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesExemplars {
    pub labels: Labels,
    pub exemplars: Vec<Exemplar>,
}

/// Prometheus's metric types, as remote write and the metadata API carry them.
///
/// [`MetricType::code`] / [`MetricType::from_code`] are the one mapping to
/// the numbers on the wire: the WAL metadata record's type byte
/// (`record.MetricType`) and the remote write 1.0 and 2.0 `MetricType`
/// enums use the same ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MetricType {
    #[default]
    Unknown,
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
}

impl MetricType {
    /// The wire number: 0 unknown, 1 counter, 2 gauge, 3 histogram,
    /// 4 gauge histogram, 5 summary, 6 info, 7 stateset.
    pub const fn code(self) -> u8 {
        match self {
            MetricType::Unknown => 0,
            MetricType::Counter => 1,
            MetricType::Gauge => 2,
            MetricType::Histogram => 3,
            MetricType::GaugeHistogram => 4,
            MetricType::Summary => 5,
            MetricType::Info => 6,
            MetricType::StateSet => 7,
        }
    }

    /// The type of a wire number (a WAL byte or a protobuf enum value);
    /// numbers no type has (remote write 2.0's 0 "unspecified" among them)
    /// read as [`MetricType::Unknown`].
    pub const fn from_code(code: i32) -> Self {
        match code {
            1 => MetricType::Counter,
            2 => MetricType::Gauge,
            3 => MetricType::Histogram,
            4 => MetricType::GaugeHistogram,
            5 => MetricType::Summary,
            6 => MetricType::Info,
            7 => MetricType::StateSet,
            _ => MetricType::Unknown,
        }
    }

    /// The name the metadata API prints.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Unknown => "unknown",
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
        }
    }
}

/// Metric metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Metadata {
    pub kind: MetricType,
    pub unit: String,
    pub help: String,
}

/// A batch of appends that becomes visible, all at once, on commit.
pub trait Appender {
    /// Appends a float sample. `r` is a reference returned earlier for the
    /// same labels, or 0. Returns the series' reference.
    fn append(&mut self, r: SeriesRef, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef>;
    /// Appends many float samples, of any series, in order: the same as
    /// calling [`Appender::append`] with each `(ref hint, labels, t, v)` of
    /// `batch`, and what `out` holds afterwards is each call's result, one
    /// per sample in batch order (`out` is cleared first). Implementations may
    /// override it to overlap work across samples (e.g. memory prefetching).
    fn append_batch(
        &mut self,
        batch: &[(SeriesRef, &Labels, i64, f64)],
        out: &mut Vec<Result<SeriesRef>>,
    ) {
        out.clear();
        out.reserve(batch.len());
        for &(r, labels, t, v) in batch {
            out.push(self.append(r, labels, t, v));
        }
    }
    /// Appends the zero sample that a start (created) timestamp `st` of a
    /// sample at `t` stands for, as Prometheus's created-timestamp zero
    /// ingestion does: only when `st` is before `t` and after the series'
    /// newest sample (never out of order, whatever the storage's
    /// out-of-order window); at an existing sample's timestamp it is a
    /// duplicate and skipped. Errors:
    /// [`StorageError::StartTimestampNotBefore`],
    /// [`StorageError::OutOfOrderStart`], or what an append would give.
    /// Storage that cannot tell answers
    /// [`StorageError::StartZeroUnsupported`].
    fn append_start_zero(
        &mut self,
        _r: SeriesRef,
        _labels: &Labels,
        _t: i64,
        _st: i64,
    ) -> Result<SeriesRef> {
        Err(StorageError::StartZeroUnsupported)
    }
    /// Appends a native histogram sample with integer counts (Prometheus's
    /// `AppendHistogram` with a `*Histogram`). `r` and the result mean what
    /// they mean for [`Appender::append`]; a series may hold floats and
    /// histograms at different timestamps, in one time line. A stale marker
    /// is a histogram whose `sum` is [`cairn_model::STALE_NAN`]. Errors:
    /// what [`Appender::append`] gives,
    /// [`StorageError::InvalidHistogram`] (spans that do not fit the
    /// buckets, negative counts, a count below the buckets' sum, …),
    /// [`StorageError::DuplicateHistogramForTimestamp`], and
    /// [`StorageError::HistogramsUnsupported`] from storage without them.
    fn append_histogram(
        &mut self,
        _r: SeriesRef,
        _labels: &Labels,
        _t: i64,
        _h: &Histogram,
    ) -> Result<SeriesRef> {
        Err(StorageError::HistogramsUnsupported)
    }
    /// Appends a native histogram sample with float counts; see
    /// [`Appender::append_histogram`].
    fn append_float_histogram(
        &mut self,
        _r: SeriesRef,
        _labels: &Labels,
        _t: i64,
        _h: &FloatHistogram,
    ) -> Result<SeriesRef> {
        Err(StorageError::HistogramsUnsupported)
    }
    /// Stages an exemplar of the series `r`/`labels`, logged and stored on
    /// commit as Prometheus's head does. An exemplar equal to the series'
    /// newest is skipped (`Ok`); one not newer than it is
    /// [`StorageError::OutOfOrderExemplar`]. Storage that keeps no
    /// exemplars answers [`StorageError::ExemplarStorageDisabled`].
    fn append_exemplar(
        &mut self,
        _r: SeriesRef,
        _labels: &Labels,
        _e: &Exemplar,
    ) -> Result<SeriesRef> {
        Err(StorageError::ExemplarStorageDisabled)
    }
    /// Records metadata for the series' metric.
    fn update_metadata(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        meta: &Metadata,
    ) -> Result<SeriesRef>;
    /// Makes the batch durable (as the implementation's WAL policy says) and visible.
    fn commit(self: Box<Self>) -> Result<()>;
    /// Drops the batch.
    fn rollback(self: Box<Self>) -> Result<()>;
}

/// Something that hands out appenders.
pub trait Appendable: Send + Sync {
    fn appender(&self) -> Box<dyn Appender + '_>;
}

#[cfg(test)]
mod tests {
    use super::MetricType;

    const ALL: [MetricType; 8] = [
        MetricType::Unknown,
        MetricType::Counter,
        MetricType::Gauge,
        MetricType::Histogram,
        MetricType::GaugeHistogram,
        MetricType::Summary,
        MetricType::Info,
        MetricType::StateSet,
    ];

    #[test]
    fn wire_codes_round_trip_in_prometheus_order() {
        for (i, t) in ALL.iter().enumerate() {
            assert_eq!(usize::from(t.code()), i, "{t:?}");
            assert_eq!(MetricType::from_code(i32::from(t.code())), *t);
        }
        for code in [-1, 8, 255, i32::MAX, i32::MIN] {
            assert_eq!(MetricType::from_code(code), MetricType::Unknown);
        }
    }
}
