//! The plan's vocabulary: node and selection ids, evaluation grids, and
//! PromQL's operators and functions as types.
//!
//! A leaf of the crate: the kernels, the loader and the evaluator all speak
//! it, and it imports none of them. Operators and functions are resolved
//! once, when the plan is compiled, so evaluation never matches on token
//! numbers or function names.

use cairn_model::Labels;
use promql_parser::parser::token::{
    TokenId, T_ADD, T_ATAN2, T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_DIV, T_EQLC, T_GROUP,
    T_GTE, T_GTR, T_LAND, T_LIMITK, T_LIMIT_RATIO, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MAX, T_MIN,
    T_MOD, T_MUL, T_NEQ, T_POW, T_QUANTILE, T_STDDEV, T_STDVAR, T_SUB, T_SUM, T_TOPK,
};

/// A node of a plan: its index in [`super::Plan::nodes`]. Stable for the
/// life of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct NodeId(pub(crate) u32);

impl NodeId {
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// A selection of a plan: what one or more selector nodes load, its index
/// in [`super::Plan::selections`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SelId(pub(crate) u32);

impl SelId {
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// The times a node is evaluated at: `start + i * step` for `i < n`
/// (the query's steps, or a subquery's aligned grid). An instant query
/// has one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Steps {
    pub(crate) start: i64,
    pub(crate) step: i64,
    pub(crate) n: usize,
}

impl Steps {
    /// One evaluation at `t`.
    pub(crate) fn single(t: i64) -> Self {
        Self {
            start: t,
            step: 0,
            n: 1,
        }
    }

    /// The steps from `start` to `end` inclusive (none when `end < start`).
    pub(crate) fn span(start: i64, end: i64, step: i64) -> Self {
        let n = if end < start || step <= 0 {
            usize::from(end == start)
        } else {
            usize::try_from((end - start) / step)
                .unwrap_or(usize::MAX - 1)
                .saturating_add(1)
        };
        Self { start, step, n }
    }

    /// The time of step `i`.
    pub(crate) fn time(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    /// Every step's time, in order.
    pub(crate) fn times(self) -> impl Iterator<Item = i64> {
        (0..self.n).map(move |i| self.time(i))
    }

    /// The last step's time (the first's when there is none).
    pub(crate) fn last(&self) -> i64 {
        self.time(self.n.saturating_sub(1))
    }
}

/// Where a selector or subquery reads relative to the step it is
/// evaluated at: `@` pins the time, `offset` shifts it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Reach {
    /// The `@` time in ms (`start()`/`end()` resolved), if any.
    pub(crate) at: Option<i64>,
    /// The offset in ms (positive looks back).
    pub(crate) offset: i64,
}

impl Reach {
    /// The reference time for a step at `t`.
    pub(crate) fn ref_time(&self, t: i64) -> i64 {
        self.at.unwrap_or(t) - self.offset
    }
}

/// How a node is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Once over all of its steps, one column of values per series.
    Columnar,
    /// Once per step, over that step's instant vectors (Prometheus's
    /// `rangeEval` shape).
    StepWise,
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl BinOp {
    pub(crate) fn from_token(t: TokenId) -> Option<Self> {
        Some(match t {
            T_ADD => Self::Add,
            T_SUB => Self::Sub,
            T_MUL => Self::Mul,
            T_DIV => Self::Div,
            T_MOD => Self::Mod,
            T_POW => Self::Pow,
            T_ATAN2 => Self::Atan2,
            T_EQLC => Self::Eq,
            T_NEQ => Self::Ne,
            T_GTR => Self::Gt,
            T_LSS => Self::Lt,
            T_GTE => Self::Ge,
            T_LTE => Self::Le,
            T_LAND => Self::And,
            T_LOR => Self::Or,
            T_LUNLESS => Self::Unless,
            _ => return None,
        })
    }

    /// The operator as PromQL writes it (annotations quote it).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Add => "+",
            Self::Sub => "-",
            Self::Mul => "*",
            Self::Div => "/",
            Self::Mod => "%",
            Self::Pow => "^",
            Self::Atan2 => "atan2",
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Gt => ">",
            Self::Lt => "<",
            Self::Ge => ">=",
            Self::Le => "<=",
            Self::And => "and",
            Self::Or => "or",
            Self::Unless => "unless",
        }
    }

    pub(crate) fn is_comparison(self) -> bool {
        matches!(
            self,
            Self::Eq | Self::Ne | Self::Gt | Self::Lt | Self::Ge | Self::Le
        )
    }

    pub(crate) fn is_set(self) -> bool {
        matches!(self, Self::And | Self::Or | Self::Unless)
    }

    pub(crate) fn is_arith(self) -> bool {
        !self.is_comparison() && !self.is_set()
    }
}

/// Vector matching of a binary operator between two vectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Matching {
    /// `on(...)` (true) or `ignoring(...)` / none (false).
    pub(crate) on: bool,
    /// The labels listed in `on`/`ignoring`.
    pub(crate) names: Vec<String>,
    pub(crate) card: Card,
}

/// The cardinality of a vector match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Card {
    OneToOne,
    /// `group_left(...)`, with the labels copied from the "one" side.
    ManyToOne(Vec<String>),
    /// `group_right(...)`.
    OneToMany(Vec<String>),
    /// Set operators.
    ManyToMany,
}

/// An aggregation operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggOp {
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    CountValues,
    Quantile,
    Limitk,
    LimitRatio,
}

impl AggOp {
    pub(crate) fn from_token(t: TokenId) -> Option<Self> {
        Some(match t {
            T_SUM => Self::Sum,
            T_AVG => Self::Avg,
            T_COUNT => Self::Count,
            T_MIN => Self::Min,
            T_MAX => Self::Max,
            T_GROUP => Self::Group,
            T_STDDEV => Self::Stddev,
            T_STDVAR => Self::Stdvar,
            T_TOPK => Self::Topk,
            T_BOTTOMK => Self::Bottomk,
            T_COUNT_VALUES => Self::CountValues,
            T_QUANTILE => Self::Quantile,
            T_LIMITK => Self::Limitk,
            T_LIMIT_RATIO => Self::LimitRatio,
            _ => return None,
        })
    }

    /// The operator's name (annotations quote it).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Sum => "sum",
            Self::Avg => "avg",
            Self::Count => "count",
            Self::Min => "min",
            Self::Max => "max",
            Self::Group => "group",
            Self::Stddev => "stddev",
            Self::Stdvar => "stdvar",
            Self::Topk => "topk",
            Self::Bottomk => "bottomk",
            Self::CountValues => "count_values",
            Self::Quantile => "quantile",
            Self::Limitk => "limitk",
            Self::LimitRatio => "limit_ratio",
        }
    }

    /// Whether the running float state of `aggregate::FloatAgg` computes
    /// it (the operators the columnar fold takes).
    pub(crate) fn folds(self) -> bool {
        matches!(
            self,
            Self::Sum
                | Self::Avg
                | Self::Count
                | Self::Min
                | Self::Max
                | Self::Group
                | Self::Stddev
                | Self::Stdvar
        )
    }
}

/// A function of one range vector argument (and possibly scalar
/// parameters), evaluated over each series' window at each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RangeFunc {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Deriv,
    PredictLinear,
    DoubleExponentialSmoothing,
    Resets,
    Changes,
    AvgOverTime,
    SumOverTime,
    CountOverTime,
    MinOverTime,
    MaxOverTime,
    LastOverTime,
    FirstOverTime,
    StddevOverTime,
    StdvarOverTime,
    QuantileOverTime,
    MadOverTime,
    PresentOverTime,
    TsOfMaxOverTime,
    TsOfMinOverTime,
    TsOfLastOverTime,
    TsOfFirstOverTime,
}

impl RangeFunc {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "rate" => Self::Rate,
            "increase" => Self::Increase,
            "delta" => Self::Delta,
            "irate" => Self::Irate,
            "idelta" => Self::Idelta,
            "deriv" => Self::Deriv,
            "predict_linear" => Self::PredictLinear,
            "double_exponential_smoothing" | "holt_winters" => Self::DoubleExponentialSmoothing,
            "resets" => Self::Resets,
            "changes" => Self::Changes,
            "avg_over_time" => Self::AvgOverTime,
            "sum_over_time" => Self::SumOverTime,
            "count_over_time" => Self::CountOverTime,
            "min_over_time" => Self::MinOverTime,
            "max_over_time" => Self::MaxOverTime,
            "last_over_time" => Self::LastOverTime,
            "first_over_time" => Self::FirstOverTime,
            "stddev_over_time" => Self::StddevOverTime,
            "stdvar_over_time" => Self::StdvarOverTime,
            "quantile_over_time" => Self::QuantileOverTime,
            "mad_over_time" => Self::MadOverTime,
            "present_over_time" => Self::PresentOverTime,
            "ts_of_max_over_time" => Self::TsOfMaxOverTime,
            "ts_of_min_over_time" => Self::TsOfMinOverTime,
            "ts_of_last_over_time" => Self::TsOfLastOverTime,
            "ts_of_first_over_time" => Self::TsOfFirstOverTime,
            _ => return None,
        })
    }

    /// Whether the function keeps the metric name (Prometheus 3).
    pub(crate) fn keeps_name(self) -> bool {
        matches!(self, Self::LastOverTime | Self::FirstOverTime)
    }

    /// `rate` and `increase`: counter functions, which note series whose
    /// name does not look like a counter's.
    pub(crate) fn is_counter(self) -> bool {
        matches!(self, Self::Rate | Self::Increase)
    }

    /// The position of the range vector among the arguments.
    pub(crate) fn matrix_arg(self) -> usize {
        match self {
            Self::QuantileOverTime => 1,
            _ => 0,
        }
    }

    /// How many scalar parameters the function takes besides the range.
    pub(crate) fn params(self) -> usize {
        match self {
            Self::PredictLinear | Self::QuantileOverTime => 1,
            Self::DoubleExponentialSmoothing => 2,
            _ => 0,
        }
    }
}

/// A calendar function (`hour`, `month`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateFn {
    Hour,
    Minute,
    DayOfMonth,
    DayOfWeek,
    DayOfYear,
    DaysInMonth,
    Month,
    Year,
}

impl DateFn {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "hour" => Self::Hour,
            "minute" => Self::Minute,
            "day_of_month" => Self::DayOfMonth,
            "day_of_week" => Self::DayOfWeek,
            "day_of_year" => Self::DayOfYear,
            "days_in_month" => Self::DaysInMonth,
            "month" => Self::Month,
            "year" => Self::Year,
            _ => return None,
        })
    }
}

/// A statistic of native histograms (`histogram_count` and friends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HistStat {
    Count,
    Sum,
    Avg,
    Stddev,
    Stdvar,
}

/// An element-wise float function (`abs`, `ln`, `sin`, ...); the
/// arithmetic is `functions::math::apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MathFn {
    Abs,
    Ceil,
    Floor,
    Exp,
    Sqrt,
    Ln,
    Log2,
    Log10,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Asinh,
    Acosh,
    Atanh,
    Rad,
    Deg,
    Sgn,
}

impl MathFn {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "abs" => Self::Abs,
            "ceil" => Self::Ceil,
            "floor" => Self::Floor,
            "exp" => Self::Exp,
            "sqrt" => Self::Sqrt,
            "ln" => Self::Ln,
            "log2" => Self::Log2,
            "log10" => Self::Log10,
            "sin" => Self::Sin,
            "cos" => Self::Cos,
            "tan" => Self::Tan,
            "asin" => Self::Asin,
            "acos" => Self::Acos,
            "atan" => Self::Atan,
            "sinh" => Self::Sinh,
            "cosh" => Self::Cosh,
            "tanh" => Self::Tanh,
            "asinh" => Self::Asinh,
            "acosh" => Self::Acosh,
            "atanh" => Self::Atanh,
            "rad" => Self::Rad,
            "deg" => Self::Deg,
            "sgn" => Self::Sgn,
            _ => return None,
        })
    }
}

/// `label_replace`'s arguments, checked and compiled.
#[derive(Debug, Clone)]
pub(crate) struct LabelReplace {
    pub(crate) dst: String,
    pub(crate) repl: String,
    pub(crate) src: String,
    pub(crate) re: regex::Regex,
}

/// A function call, resolved.
#[derive(Debug, Clone)]
pub(crate) enum Func {
    /// A range function (the matrix argument and scalar parameters).
    Range(RangeFunc),
    /// `absent_over_time`, with the labels of its answer.
    AbsentOverTime(Labels),
    /// `absent`, with the labels of its answer.
    Absent(Labels),
    Math(MathFn),
    Clamp,
    ClampMin,
    ClampMax,
    Round,
    Date(DateFn),
    Vector,
    Scalar,
    Time,
    Pi,
    /// `timestamp()`; `selector` when its argument is a selector, whose
    /// values are then the samples' own timestamps.
    Timestamp {
        selector: bool,
    },
    LabelReplace(Box<LabelReplace>),
    LabelJoin {
        dst: String,
        sep: String,
        srcs: Vec<String>,
    },
    Sort {
        desc: bool,
    },
    SortByLabel {
        desc: bool,
        labels: Vec<String>,
    },
    HistogramQuantile,
    HistogramFraction,
    HistogramStat(HistStat),
}
