//! A deterministic model of what Prometheus scrapes from a Kubernetes GPU
//! cluster: NVIDIA DCGM exporter series for every GPU, node-exporter series
//! and a kubelet histogram for every node, with pods that churn.
//!
//! Everything is a pure function of the [`ClusterSpec`] and the scrape step,
//! so a test, a load generator and a benchmark can regenerate exactly the
//! same samples without storing them. Values move like the real thing:
//! utilisations and temperatures wander, counters only go up.

mod metrics;

use cairn_model::exposition::push_label_set;
use cairn_model::Labels;

pub use metrics::{Kind, MetricDef, DCGM_METRICS};

/// The shape of the simulated cluster.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Number of nodes; each runs a DCGM exporter and a node exporter.
    pub nodes: usize,
    /// GPUs per node (8 on a typical HGX box).
    pub gpus_per_node: usize,
    /// CPUs per node, which sets the node_cpu_seconds_total fan-out.
    pub cpus_per_node: usize,
    /// Scrape interval in ms.
    pub scrape_interval_ms: i64,
    /// Every GPU's pod is replaced after this many scrapes (0: never), with
    /// GPUs staggered so churn is spread out.
    pub pod_lifetime_scrapes: u64,
    /// Seed for every pseudo-random choice.
    pub seed: u64,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        Self {
            nodes: 100,
            gpus_per_node: 8,
            cpus_per_node: 32,
            scrape_interval_ms: 15_000,
            pod_lifetime_scrapes: 240,
            seed: 1,
        }
    }
}

/// One series of the cluster at a given scrape.
#[derive(Debug, Clone)]
pub struct SimSeries {
    pub labels: Labels,
    /// Stable identity across scrapes (pod churn changes labels, not this).
    pub slot: u64,
    pub kind: Kind,
}

/// SplitMix64: a small, good, reproducible mixer.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The label set a [`cairn_model::LabelsBuilder`] builds from `pairs` set in this
/// order (later duplicates win, empty values are dropped), without
/// allocating each name and value as the builder does: the simulator makes
/// a label set per series and scrape, and that was most of its time.
fn labels_from(pairs: &[(&str, &str)]) -> Labels {
    let mut sorted = [("", ""); 16];
    let Some(sorted) = sorted.get_mut(..pairs.len()) else {
        return Labels::from_pairs(pairs.iter().copied());
    };
    sorted.copy_from_slice(pairs);
    // Stable, so that duplicates keep their order for the fallback.
    if !pairs.is_sorted_by(|a, b| a.0 < b.0) {
        sorted.sort_by(|a, b| a.0.cmp(b.0));
    }
    // Fails only for duplicate or empty names, which the builder handles.
    Labels::try_from_sorted(sorted.iter().copied())
        .unwrap_or_else(|_| Labels::from_pairs(pairs.iter().copied()))
}

fn unit(x: u64) -> f64 {
    (mix(x) >> 11) as f64 / (1u64 << 53) as f64
}

impl ClusterSpec {
    /// The node's host name.
    pub fn hostname(&self, node: usize) -> String {
        format!("gpu-node-{node:04}")
    }

    /// The `instance` label Prometheus would attach to the node's DCGM exporter.
    pub fn dcgm_instance(&self, node: usize) -> String {
        format!(
            "10.{}.{}.{}:9400",
            20 + node / 65536,
            (node / 256) % 256,
            node % 256
        )
    }

    /// The `instance` label of the node's node-exporter.
    pub fn node_instance(&self, node: usize) -> String {
        format!(
            "10.{}.{}.{}:9100",
            20 + node / 65536,
            (node / 256) % 256,
            node % 256
        )
    }

    fn uuid(&self, node: usize, gpu: usize) -> String {
        let a = mix(self.seed ^ ((node as u64) << 8 | gpu as u64));
        let b = mix(a);
        format!(
            "GPU-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }

    /// How many scrapes a GPU's pod generations are shifted by, so that
    /// GPUs do not all churn at once (`< pod_lifetime_scrapes`).
    fn pod_stagger(&self, node: usize, gpu: usize) -> u64 {
        match self.pod_lifetime_scrapes {
            0 => 0,
            l => mix((node * 131 + gpu) as u64 ^ self.seed) % l,
        }
    }

    /// Which of a GPU's pods runs at a scrape: 0 for the first, one more at
    /// every replacement (always 0 without churn). Never decreases with `step`.
    pub fn pod_generation(&self, node: usize, gpu: usize, step: u64) -> u64 {
        match self.pod_lifetime_scrapes {
            0 => 0,
            l => step.saturating_add(self.pod_stagger(node, gpu)) / l,
        }
    }

    /// The scrapes the pod running on a GPU at `step` runs for, `step`
    /// included: a half-open range of steps (the whole run without churn).
    pub fn pod_steps(&self, node: usize, gpu: usize, step: u64) -> std::ops::Range<u64> {
        let l = self.pod_lifetime_scrapes;
        if l == 0 {
            return 0..u64::MAX;
        }
        let gen = self.pod_generation(node, gpu, step);
        let stagger = self.pod_stagger(node, gpu);
        let first = gen.saturating_mul(l).saturating_sub(stagger);
        let end = gen
            .saturating_add(1)
            .saturating_mul(l)
            .saturating_sub(stagger);
        first..end
    }

    /// The pod running on a GPU at a scrape; changes every `pod_lifetime_scrapes`.
    pub fn pod(&self, node: usize, gpu: usize, step: u64) -> (String, String, String) {
        let gen = self.pod_generation(node, gpu, step);
        let h = mix(self.seed
            ^ ((node as u64) << 20)
            ^ ((gpu as u64) << 12)
            ^ gen.wrapping_mul(0x1000_0001));
        let namespaces = ["ml-training", "ml-inference", "research", "batch"];
        #[allow(clippy::indexing_slicing)] // in bounds: `% len`
        let ns = namespaces[(h % namespaces.len() as u64) as usize];
        let job = format!("job-{:05}", (h >> 8) % 100_000);
        let pod = format!("{job}-worker-{}", gpu % 4);
        (ns.to_string(), pod, "trainer".to_string())
    }

    /// Every series scraped at `step`, DCGM first then node-exporter, node by node.
    pub fn series_at(&self, step: u64) -> Vec<SimSeries> {
        let mut out = Vec::new();
        for node in 0..self.nodes {
            self.node_series(node, step, &mut out);
        }
        out
    }

    /// The series of one node at `step`: [`Self::gpu_series`] of every GPU,
    /// then [`Self::host_series`].
    pub fn node_series(&self, node: usize, step: u64, out: &mut Vec<SimSeries>) {
        for gpu in 0..self.gpus_per_node {
            self.gpu_series(node, gpu, step, out);
        }
        self.host_series(node, out);
    }

    /// The DCGM series of one GPU at `step`, in [`DCGM_METRICS`] order. Only
    /// their `namespace`, `pod` and `container` labels change with the step,
    /// when the pod does (see [`Self::pod_steps`]).
    pub fn gpu_series(&self, node: usize, gpu: usize, step: u64, out: &mut Vec<SimSeries>) {
        let host = self.hostname(node);
        let first_slot = ((node as u64) << 20) + (gpu * DCGM_METRICS.len()) as u64;
        let uuid = self.uuid(node, gpu);
        let (ns, pod, container) = self.pod(node, gpu, step);
        let (gpu_s, device, instance) = (
            gpu.to_string(),
            format!("nvidia{gpu}"),
            self.dcgm_instance(node),
        );
        let mut pairs = [
            ("__name__", ""),
            ("gpu", gpu_s.as_str()),
            ("UUID", uuid.as_str()),
            ("device", device.as_str()),
            ("modelName", "NVIDIA H100 80GB HBM3"),
            ("Hostname", host.as_str()),
            ("DCGM_FI_DRIVER_VERSION", "580.159.04"),
            ("container", container.as_str()),
            ("namespace", ns.as_str()),
            ("pod", pod.as_str()),
            ("instance", instance.as_str()),
            ("job", "dcgm-exporter"),
        ];
        // Sorted once: only the name changes from metric to metric.
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        let name_at = pairs.iter().position(|p| p.0 == "__name__");
        for (slot, m) in (first_slot..).zip(DCGM_METRICS) {
            if let Some(p) = name_at.and_then(|i| pairs.get_mut(i)) {
                p.1 = m.name;
            }
            out.push(SimSeries {
                labels: labels_from(&pairs),
                slot,
                kind: m.kind,
            });
        }
    }

    /// The node-exporter and kubelet series of a node, which do not change
    /// from scrape to scrape.
    pub fn host_series(&self, node: usize, out: &mut Vec<SimSeries>) {
        let mut slot = ((node as u64) << 20) + (self.gpus_per_node * DCGM_METRICS.len()) as u64;
        metrics::node_exporter_series(self, node, &mut slot, out);
    }

    /// The value of a series at a scrape. Deterministic in (slot, kind, step).
    pub fn value(&self, s: &SimSeries, step: u64) -> f64 {
        self.sampler(s).at(step)
    }

    /// What [`Self::value`] computes once per series, for reading many
    /// steps of one series: `sampler(s).at(step) == value(s, step)`.
    pub fn sampler(&self, s: &SimSeries) -> Sampler {
        Sampler::new(self, s.slot, s.kind)
    }

    /// Renders a node's series at `step` in the Prometheus text exposition
    /// format, without the `instance`/`job` labels (Prometheus adds those).
    pub fn render_text(&self, node: usize, step: u64, which: Exporter) -> String {
        let mut v = Vec::new();
        self.node_series(node, step, &mut v);
        let mut out = String::new();
        let mut last = "";
        let job = match which {
            Exporter::Dcgm => "dcgm-exporter",
            Exporter::Node => "node-exporter",
        };
        let mut names = Vec::new();
        for s in &v {
            if s.labels.get("job") != Some(job) {
                continue;
            }
            let name = s.labels.metric_name().unwrap_or("");
            let family = metrics::family(name);
            if family != last {
                names.push(family.to_string());
                let t = match s.kind {
                    _ if family != name => "histogram",
                    Kind::Counter { .. } => "counter",
                    _ => "gauge",
                };
                out.push_str(&format!(
                    "# HELP {family} Simulated {family}.\n# TYPE {family} {t}\n"
                ));
                last = names.last().map(String::as_str).unwrap_or("");
            }
            out.push_str(name);
            let rest = s.labels.without(&["__name__", "instance", "job"]);
            push_label_set(&mut out, rest.iter().map(|l| (l.name, l.value)));
            out.push(' ');
            out.push_str(&format_value(self.value(s, step)));
            out.push('\n');
        }
        out
    }

    /// Active series per node.
    pub fn series_per_node(&self) -> usize {
        let mut v = Vec::new();
        self.node_series(0, 0, &mut v);
        v.len()
    }
}

/// The values of one series, with what does not depend on the step
/// worked out once (see [`ClusterSpec::sampler`]).
#[derive(Debug, Clone, Copy)]
pub struct Sampler {
    inner: SamplerKind,
    /// `mix(seed ^ slot)` of the series, or of the counter a histogram part follows.
    base: u64,
}

#[derive(Debug, Clone, Copy)]
enum SamplerKind {
    Gauge {
        lo: f64,
        hi: f64,
        phase: f64,
        period: f64,
        scale: f64,
    },
    Counter {
        per: f64,
        start: f64,
        scale: f64,
    },
    HistPart {
        per: f64,
        start: f64,
        frac: f64,
    },
    Constant(f64),
}

impl Sampler {
    fn new(spec: &ClusterSpec, slot: u64, kind: Kind) -> Self {
        let base = mix(spec.seed ^ slot);
        let counter = |base: u64, rate: f64| {
            (
                rate * spec.scrape_interval_ms as f64 / 1000.0,
                (base % 1_000_000) as f64,
            )
        };
        match kind {
            // lo + 0 * x is lo, unless lo is -0.0.
            Kind::Gauge { lo, hi, .. }
                if lo == hi && lo.is_finite() && lo.to_bits() != (-0.0f64).to_bits() =>
            {
                Self {
                    inner: SamplerKind::Constant(lo),
                    base,
                }
            }
            Kind::Gauge { lo, hi, decimals } => Self {
                inner: SamplerKind::Gauge {
                    lo,
                    hi,
                    phase: unit(base) * std::f64::consts::TAU,
                    period: 40.0 + (base % 200) as f64,
                    scale: decimal_scale(decimals),
                },
                base,
            },
            Kind::Counter { rate, decimals } => {
                let (per, start) = counter(base, rate);
                Self {
                    inner: SamplerKind::Counter {
                        per,
                        start,
                        scale: decimal_scale(decimals),
                    },
                    base,
                }
            }
            Kind::HistPart {
                frac,
                count_offset,
                rate,
            } => {
                let base = mix(spec.seed ^ (slot + count_offset));
                let (per, start) = counter(base, rate);
                Self {
                    inner: SamplerKind::HistPart { per, start, frac },
                    base,
                }
            }
            Kind::Constant(v) => Self {
                inner: SamplerKind::Constant(v),
                base,
            },
        }
    }

    /// Grows by `per` each scrape with jitter of up to half a step, so
    /// increments vary but never go negative.
    /// Truncated to `1 / scale`: a decimal as the exporter prints it,
    /// and the double that parsing that decimal gives (an integer divided
    /// by a power of ten is correctly rounded).
    fn counter(&self, per: f64, start: f64, step: u64, scale: f64) -> f64 {
        let jitter = 0.5 * unit(self.base ^ step.wrapping_mul(0x2545_F491_4F6C_DD1D));
        ((start + per * (step as f64 + jitter)) * scale).floor() / scale
    }

    /// The value at a scrape.
    pub fn at(&self, step: u64) -> f64 {
        match self.inner {
            SamplerKind::Gauge {
                lo,
                hi,
                phase,
                period,
                scale,
            } => {
                // A slow wave plus noise, kept within [lo, hi].
                let wave =
                    ((step as f64) / period * std::f64::consts::TAU + phase).sin() * 0.5 + 0.5;
                let noise = unit(self.base ^ step.wrapping_mul(0x2545_F491_4F6C_DD1D)) * 0.1;
                let x = (wave * 0.9 + noise).clamp(0.0, 1.0);
                let v = lo + (hi - lo) * x;
                (v * scale).round() / scale
            }
            SamplerKind::Counter { per, start, scale } => self.counter(per, start, step, scale),
            // A fixed fraction of its count, so buckets stay cumulative.
            SamplerKind::HistPart { per, start, frac } => {
                (self.counter(per, start, step, 1.0) * frac).floor()
            }
            SamplerKind::Constant(v) => v,
        }
    }
}

/// `10^decimals`, capped at 9 places.
fn decimal_scale(decimals: u8) -> f64 {
    10f64.powi(i32::from(decimals.min(9)))
}

/// Which exporter of a node to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exporter {
    Dcgm,
    Node,
}

/// Formats a value as the exposition format and Prometheus's JSON do.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_model::LabelsBuilder;

    #[test]
    fn labels_from_builds_what_the_builder_builds() {
        let cases: &[&[(&str, &str)]] = &[
            &[],
            &[("b", "1"), ("a", "2"), ("__name__", "m")],
            &[("a", "1"), ("b", ""), ("c", "3")],
            &[("a", "1"), ("b", "2"), ("a", "3")],
            &[("", "x"), ("a", "1")],
            &[("a", "1"); 20],
        ];
        for pairs in cases {
            let mut b = LabelsBuilder::new();
            for (n, v) in *pairs {
                b.set(n, v);
            }
            assert_eq!(labels_from(pairs), b.build(), "{pairs:?}");
        }
    }

    /// The DCGM series' labels as they were built before `labels_from`.
    #[test]
    fn gpu_series_labels_are_unchanged() {
        let spec = ClusterSpec::default();
        let (node, gpu, step) = (300, 5, 1234);
        let mut got = Vec::new();
        spec.gpu_series(node, gpu, step, &mut got);
        let (ns, pod, container) = spec.pod(node, gpu, step);
        assert_eq!(got.len(), DCGM_METRICS.len());
        for (s, m) in got.iter().zip(DCGM_METRICS) {
            let mut b = LabelsBuilder::new();
            b.set("__name__", m.name)
                .set("gpu", &gpu.to_string())
                .set("UUID", &spec.uuid(node, gpu))
                .set("device", &format!("nvidia{gpu}"))
                .set("modelName", "NVIDIA H100 80GB HBM3")
                .set("Hostname", &spec.hostname(node))
                .set("DCGM_FI_DRIVER_VERSION", "580.159.04")
                .set("container", &container)
                .set("namespace", &ns)
                .set("pod", &pod)
                .set("instance", &spec.dcgm_instance(node))
                .set("job", "dcgm-exporter");
            assert_eq!(s.labels, b.build());
        }
    }

    #[test]
    fn cluster_has_realistic_size_and_is_deterministic() {
        let spec = ClusterSpec {
            nodes: 2,
            ..Default::default()
        };
        let a = spec.series_at(3);
        let b = spec.series_at(3);
        assert_eq!(a.len(), b.len());
        let per_node = spec.series_per_node();
        assert!(
            (780..=840).contains(&per_node),
            "{per_node} series per node"
        );
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.labels, y.labels);
            assert_eq!(spec.value(x, 7).to_bits(), spec.value(y, 7).to_bits());
        }
        let mut set = std::collections::HashSet::new();
        for s in &a {
            assert!(set.insert(s.labels.clone()), "duplicate {}", s.labels);
        }
    }

    /// Values are what an exporter prints: the profiling fields carry at
    /// most 6 decimals, power 3, CPU seconds 2, and most gauges none.
    #[test]
    fn values_have_the_exporters_decimals() {
        let spec = ClusterSpec {
            nodes: 1,
            ..Default::default()
        };
        let decimals = |v: f64| format_value(v).split_once('.').map_or(0, |(_, f)| f.len());
        let mut seen_prof = 0;
        for x in spec.series_at(0) {
            let name = x.labels.get("__name__").unwrap_or_default().to_owned();
            let most = match name.as_str() {
                n if n.starts_with("DCGM_FI_PROF_") && !n.ends_with("_BYTES") => 6,
                "DCGM_FI_DEV_POWER_USAGE" => 3,
                "node_cpu_seconds_total" | "node_load1" | "node_load5" | "node_load15" => 2,
                n if n.starts_with("node_disk_") && n.contains("_seconds_") => 3,
                _ => 0,
            };
            let mut widest = 0;
            for step in 0..50 {
                let v = spec.value(&x, step);
                assert!(decimals(v) <= most, "{name} at {step}: {v}");
                widest = widest.max(decimals(v));
            }
            if most == 6 {
                seen_prof += 1;
                assert!(widest >= 4, "{name} should be a fraction, widest {widest}");
            }
        }
        assert!(seen_prof > 0);
    }

    #[test]
    fn counters_never_decrease_and_pods_churn() {
        let spec = ClusterSpec {
            nodes: 1,
            pod_lifetime_scrapes: 10,
            ..Default::default()
        };
        let s = spec.series_at(0);
        for x in s.iter().filter(|x| matches!(x.kind, Kind::Counter { .. })) {
            let mut last = f64::MIN;
            for step in 0..200 {
                let v = spec.value(x, step);
                assert!(v >= last, "{} went down at {step}", x.labels);
                last = v;
            }
        }
        let pods: std::collections::HashSet<_> = (0..50).map(|st| spec.pod(0, 0, st).1).collect();
        assert!(pods.len() >= 4, "pods should churn: {pods:?}");
    }

    #[test]
    fn pod_steps_cover_exactly_one_generation() {
        let spec = ClusterSpec {
            nodes: 2,
            pod_lifetime_scrapes: 7,
            ..Default::default()
        };
        for node in 0..spec.nodes {
            for gpu in 0..spec.gpus_per_node {
                for step in 0..40 {
                    let r = spec.pod_steps(node, gpu, step);
                    assert!(r.contains(&step), "{r:?} misses {step}");
                    let g = spec.pod_generation(node, gpu, step);
                    assert!(r.clone().all(|s| spec.pod_generation(node, gpu, s) == g));
                    assert!(r.start == 0 || spec.pod_generation(node, gpu, r.start - 1) < g);
                    assert!(spec.pod_generation(node, gpu, r.end) > g);
                    assert_eq!(spec.pod(node, gpu, step), spec.pod(node, gpu, r.start));
                }
            }
        }
        let still = ClusterSpec {
            pod_lifetime_scrapes: 0,
            ..spec.clone()
        };
        assert_eq!(still.pod_steps(1, 3, 12345), 0..u64::MAX);
        // Slots stay one per series, in order, node by node.
        let all = spec.series_at(9);
        for (i, s) in all.iter().enumerate() {
            let node = i / spec.series_per_node();
            let within = i % spec.series_per_node();
            assert_eq!(s.slot, ((node as u64) << 20) + within as u64);
        }
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let spec = ClusterSpec {
            nodes: 1,
            ..Default::default()
        };
        let s = spec.series_at(0);
        let b: Vec<_> = s
            .iter()
            .filter(|x| x.labels.metric_name() == Some("kubelet_pod_start_duration_seconds_bucket"))
            .collect();
        let count = s
            .iter()
            .find(|x| x.labels.metric_name() == Some("kubelet_pod_start_duration_seconds_count"))
            .unwrap();
        for step in [0, 5, 100, 1000] {
            let vals: Vec<f64> = b.iter().map(|x| spec.value(x, step)).collect();
            assert!(vals.windows(2).all(|w| w[0] <= w[1]), "{vals:?}");
            assert_eq!(vals.last().copied(), Some(spec.value(count, step)));
        }
    }

    #[test]
    fn text_exposition_has_types() {
        let spec = ClusterSpec {
            nodes: 1,
            ..Default::default()
        };
        let t = spec.render_text(0, 1, Exporter::Dcgm);
        assert!(t.contains("# TYPE DCGM_FI_DEV_GPU_UTIL gauge"));
        assert!(t.contains("DCGM_FI_DEV_GPU_UTIL{DCGM_FI_DRIVER_VERSION=\"580.159.04\""));
        let n = spec.render_text(0, 1, Exporter::Node);
        assert!(n.contains("# TYPE node_cpu_seconds_total counter"));
        assert!(n.contains("# TYPE kubelet_pod_start_duration_seconds histogram"));
    }
}
