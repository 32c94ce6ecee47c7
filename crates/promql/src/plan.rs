//! Planning: a parsed expression compiled once into a tree of nodes with
//! stable ids, before anything is read.
//!
//! The plan decides, for every node, the times it is evaluated at (the
//! query's steps, or a subquery's aligned grid) and how it is evaluated
//! ([`Mode`]); and for every selector, what is loaded ([`Selection`]):
//! the matchers, the inclusive sample range, the grid of reference times
//! that lets the loader drop samples no step can see, whether native
//! histograms are decoded to their statistics only, and who consumes the
//! samples ([`Consumer`]): a consumer whose values the loading threads can
//! compute while a series' samples are in cache gets them as rows, and the
//! samples themselves are not kept. This is where a selector's resolution
//! and aggregate will be chosen once downsampled blocks exist.
//!
//! Contracts:
//! - Every node is evaluated exactly once per query (the plan is a tree),
//!   and every selection is loaded exactly once; identical selections
//!   (`a / (a + b)`) are one selection with several readers.
//! - Node ids index [`Plan::nodes`]; a node's children have smaller ids.
//! - Modes are preferences: a columnar kernel may decline data it does
//!   not cover (native histogram cells, duplicate match keys), and then
//!   that node alone is evaluated step by step over the same, already
//!   evaluated inputs.

mod compile;
mod matchers;
pub(crate) mod node;

use cairn_model::Matcher;
use cairn_storage::SelectHints;
use promql_parser::parser::value::ValueType;

pub(crate) use compile::{compile, is_valid_label_name};
pub(crate) use matchers::selects_any;
pub(crate) use node::{
    AggOp, BinOp, Card, DateFn, Func, HistStat, LabelReplace, Matching, MathFn, Mode, NodeId,
    RangeFunc, Reach, SelId, Steps,
};

/// Switches for tests that compare evaluation strategies; production
/// queries use the defaults.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlanOptions {
    /// Prefer columnar kernels where a node has one.
    pub(crate) columnar: bool,
    /// Let loading threads compute consumers' rows.
    pub(crate) rows_at_load: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            columnar: true,
            rows_at_load: true,
        }
    }
}

/// A compiled query.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) nodes: Vec<Node>,
    pub(crate) root: NodeId,
    pub(crate) selections: Vec<Selection>,
}

impl Plan {
    /// The node `id` (ids come from this plan, so it exists).
    pub(crate) fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.index())
    }
}

/// One node of a plan.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) kind: Kind,
    /// The parser's type of the node's value.
    pub(crate) ty: ValueType,
    /// The times the node is evaluated at.
    pub(crate) steps: Steps,
    pub(crate) mode: Mode,
    /// Whether the parent reads this node's metric name. False under an
    /// aggregation that groups `by` labels other than `__name__`, or
    /// `without` (which drops the name itself): a pending name removal
    /// that cannot make two series collide is then left to the
    /// aggregation, which never copies the input's label sets.
    pub(crate) names_read: bool,
}

/// What a node computes.
#[derive(Debug)]
pub(crate) enum Kind {
    Number(f64),
    String(String),
    /// An instant vector selector; with `time`, its values are the
    /// samples' timestamps in seconds (the argument of `timestamp()`).
    Selector {
        sel: SelId,
        reach: Reach,
        time: bool,
    },
    /// A range vector selector: read by the range function above it, or
    /// the result of an instant query.
    Matrix {
        sel: SelId,
        reach: Reach,
        range: i64,
    },
    /// A subquery: `inner` evaluated over the subquery's grid, then read
    /// in windows of `range` like a range vector.
    Subquery {
        inner: NodeId,
        reach: Reach,
        range: i64,
    },
    /// Unary minus.
    Negate(NodeId),
    Binary {
        op: BinOp,
        lhs: NodeId,
        rhs: NodeId,
        return_bool: bool,
        /// Vector matching; the default one-to-one matching when either
        /// side is a scalar (unused then).
        matching: Matching,
    },
    Aggregate {
        op: AggOp,
        expr: NodeId,
        param: Option<NodeId>,
        /// `without` (true) or `by` (false) the listed labels.
        without: bool,
        names: Vec<String>,
    },
    /// A function call; `args` holds the evaluated arguments only (string
    /// literals that configure the function are resolved into `func`).
    Call {
        func: Func,
        args: Vec<NodeId>,
    },
    /// `info(base, selector)`: `base` with the data labels of the info
    /// series it shares its identifying labels with.
    Info(Box<InfoCall>),
}

/// The parts of an `info()` call (Prometheus's experimental function;
/// `eval/info.rs` has the rules).
#[derive(Debug)]
pub(crate) struct InfoCall {
    pub(crate) base: NodeId,
    /// The info series: the selector's matchers, with
    /// `__name__="target_info"` when none is on the name.
    pub(crate) sel: SelId,
    /// Where the info series are looked up: the base's first selector's
    /// `@` and offset.
    pub(crate) reach: Reach,
    /// Base series whose name all of these match are info series
    /// themselves and are left as they are; none are when the list is
    /// empty (a selector without a name matcher).
    pub(crate) info_names: Vec<Matcher>,
    /// The selector's matchers on labels other than the name: only the
    /// labels they name are added (all when there are none), and a base
    /// series without an info series is dropped when one of them does
    /// not match the empty value.
    pub(crate) data: Vec<Matcher>,
    /// The call has a selector argument: it then reads the evaluation
    /// time (for the step invariance of `@`).
    pub(crate) explicit: bool,
}

/// The reference times a selector is read at, for thinning: `first + k *
/// step` up to `last`; a single time when `step` is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Grid {
    pub(crate) first: i64,
    pub(crate) last: i64,
    pub(crate) step: i64,
}

impl Grid {
    pub(crate) fn new(lo: i64, hi: i64, step: i64) -> Self {
        let step = if lo == hi { 0 } else { step.max(0) };
        Self {
            first: lo,
            last: hi,
            step,
        }
    }

    /// The first grid time at or after `t`, if any.
    pub(crate) fn ceil(&self, t: i64) -> Option<i64> {
        if t <= self.first {
            return Some(self.first);
        }
        if self.step == 0 {
            return None;
        }
        let k = (t - self.first + self.step - 1) / self.step;
        let g = self.first.checked_add(k.checked_mul(self.step)?)?;
        (g <= self.last).then_some(g)
    }
}

/// What one selection reads from storage, and for whom.
#[derive(Debug)]
pub(crate) struct Selection {
    /// One matcher list, or one per `or` alternative of the selector.
    pub(crate) matchers: Vec<Vec<Matcher>>,
    /// Inclusive sample bounds; nothing is read when `mint > maxt`.
    pub(crate) mint: i64,
    pub(crate) maxt: i64,
    /// A range selector (stale markers dropped) or an instant one.
    pub(crate) matrix: bool,
    /// Window length: the range, or the lookback delta.
    pub(crate) reach: i64,
    /// The reference times the selection is read at.
    pub(crate) grid: Grid,
    /// Native histograms decoded to count, sum and reset hint only (the
    /// selector only feeds `histogram_count`/`_sum`/`_avg`).
    pub(crate) stats: bool,
    pub(crate) consumer: Consumer,
    pub(crate) hints: SelectHints,
    /// The selector's `anchored`/`smoothed` modifier: the samples read
    /// reach a lookback delta further back (and, smoothed, forward), and
    /// are kept as points for `eval/extended.rs`.
    pub(crate) extended: Extended,
}

/// Prometheus's experimental extended range selectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) enum Extended {
    #[default]
    None,
    Anchored,
    Smoothed,
}

impl Extended {
    pub(crate) fn of(vs: &promql_parser::parser::VectorSelector) -> Self {
        if vs.anchored {
            Extended::Anchored
        } else if vs.smoothed {
            Extended::Smoothed
        } else {
            Extended::None
        }
    }
}

/// Who reads a selection's samples.
#[derive(Debug, Clone)]
pub(crate) enum Consumer {
    /// Keep the samples (thinned to what some step can see).
    Points,
    /// The instant selector node itself: its value at each step.
    Instant {
        steps: Steps,
        reach: Reach,
        /// Values are the samples' timestamps (`timestamp()`).
        time: bool,
    },
    /// A range function over the selector: its value at each step.
    Range {
        steps: Steps,
        reach: Reach,
        range: i64,
        func: RangeFunc,
    },
}
