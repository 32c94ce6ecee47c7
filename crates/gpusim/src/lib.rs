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
use cairn_model::{Labels, LabelsBuilder};

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

    /// The pod running on a GPU at a scrape; changes every `pod_lifetime_scrapes`.
    pub fn pod(&self, node: usize, gpu: usize, step: u64) -> (String, String, String) {
        let gen = if self.pod_lifetime_scrapes == 0 {
            0
        } else {
            let stagger = mix((node * 131 + gpu) as u64 ^ self.seed) % self.pod_lifetime_scrapes;
            (step + stagger) / self.pod_lifetime_scrapes
        };
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

    /// The series of one node at `step`.
    pub fn node_series(&self, node: usize, step: u64, out: &mut Vec<SimSeries>) {
        let host = self.hostname(node);
        let mut slot = (node as u64) << 20;
        for gpu in 0..self.gpus_per_node {
            let uuid = self.uuid(node, gpu);
            let (ns, pod, container) = self.pod(node, gpu, step);
            for m in DCGM_METRICS {
                let mut b = LabelsBuilder::new();
                b.set("__name__", m.name)
                    .set("gpu", &gpu.to_string())
                    .set("UUID", &uuid)
                    .set("device", &format!("nvidia{gpu}"))
                    .set("modelName", "NVIDIA H100 80GB HBM3")
                    .set("Hostname", &host)
                    .set("DCGM_FI_DRIVER_VERSION", "580.159.04")
                    .set("container", &container)
                    .set("namespace", &ns)
                    .set("pod", &pod)
                    .set("instance", &self.dcgm_instance(node))
                    .set("job", "dcgm-exporter");
                out.push(SimSeries {
                    labels: b.build(),
                    slot,
                    kind: m.kind,
                });
                slot += 1;
            }
        }
        metrics::node_exporter_series(self, node, &mut slot, out);
    }

    /// The value of a series at a scrape. Deterministic in (slot, kind, step).
    pub fn value(&self, s: &SimSeries, step: u64) -> f64 {
        let base = mix(self.seed ^ s.slot);
        match s.kind {
            Kind::Gauge { lo, hi } => {
                // A slow wave plus noise, kept within [lo, hi].
                let phase = unit(base) * std::f64::consts::TAU;
                let period = 40.0 + (base % 200) as f64;
                let wave =
                    ((step as f64) / period * std::f64::consts::TAU + phase).sin() * 0.5 + 0.5;
                let noise = unit(base ^ step.wrapping_mul(0x2545_F491_4F6C_DD1D)) * 0.1;
                let x = (wave * 0.9 + noise).clamp(0.0, 1.0);
                let v = lo + (hi - lo) * x;
                if hi - lo >= 10.0 {
                    v.round()
                } else {
                    v
                }
            }
            Kind::Counter { rate } => {
                // Grows by `per` each scrape with jitter of up to half a step,
                // so increments vary but never go negative.
                let per = rate * self.scrape_interval_ms as f64 / 1000.0;
                let start = (base % 1_000_000) as f64;
                let jitter = 0.5 * unit(base ^ step.wrapping_mul(0x2545_F491_4F6C_DD1D));
                (start + per * (step as f64 + jitter)).floor()
            }
            Kind::HistPart {
                frac,
                count_offset,
                rate,
            } => {
                let count = SimSeries {
                    labels: Labels::empty(),
                    slot: s.slot + count_offset,
                    kind: Kind::Counter { rate },
                };
                (self.value(&count, step) * frac).floor()
            }
            Kind::Constant(v) => v,
        }
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
