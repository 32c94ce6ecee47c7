//! The metric catalogue: DCGM exporter fields per GPU, node-exporter
//! families per node and one kubelet histogram per node.

use cairn_model::Labels;

use crate::{labels_from, ClusterSpec, SimSeries};

/// How a series' value moves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Wanders within `[lo, hi]`, rounded to `decimals` decimal places as
    /// the exporter prints it (DCGM's profiling fields: 6, power: 3).
    Gauge { lo: f64, hi: f64, decimals: u8 },
    /// Grows by about `rate` per second, truncated to `decimals` decimal
    /// places (node-exporter's CPU seconds: 2).
    Counter { rate: f64, decimals: u8 },
    /// Never changes.
    Constant(f64),
    /// A fixed fraction of the counter at `slot + count_offset` (histogram
    /// buckets and sums), so buckets stay cumulative.
    HistPart {
        frac: f64,
        count_offset: u64,
        rate: f64,
    },
}

/// One DCGM exporter field.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub name: &'static str,
    pub kind: Kind,
}

/// A DCGM gauge: integers when its range is wide (clocks, temperatures,
/// utilisation in percent, MiB), six decimals when it is a fraction (the
/// profiling fields, which dcgm-exporter prints with `%f`).
const fn g(name: &'static str, lo: f64, hi: f64) -> MetricDef {
    let decimals = if hi - lo >= 10.0 { 0 } else { 6 };
    gd(name, lo, hi, decimals)
}
const fn gd(name: &'static str, lo: f64, hi: f64, decimals: u8) -> MetricDef {
    MetricDef {
        name,
        kind: Kind::Gauge { lo, hi, decimals },
    }
}
const fn c(name: &'static str, rate: f64) -> MetricDef {
    MetricDef {
        name,
        kind: Kind::Counter { rate, decimals: 0 },
    }
}

/// A node gauge printed as an integer.
const fn gi(lo: f64, hi: f64) -> Kind {
    Kind::Gauge {
        lo,
        hi,
        decimals: 0,
    }
}

/// The DCGM exporter's default field set (dcp-metrics-included), 26 series per GPU.
pub const DCGM_METRICS: &[MetricDef] = &[
    g("DCGM_FI_DEV_SM_CLOCK", 1000.0, 1980.0),
    g("DCGM_FI_DEV_MEM_CLOCK", 2619.0, 2619.0),
    g("DCGM_FI_DEV_MEMORY_TEMP", 30.0, 70.0),
    g("DCGM_FI_DEV_GPU_TEMP", 28.0, 84.0),
    gd("DCGM_FI_DEV_POWER_USAGE", 60.0, 700.0, 3),
    c("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", 450_000.0),
    c("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", 0.001),
    g("DCGM_FI_DEV_GPU_UTIL", 0.0, 100.0),
    g("DCGM_FI_DEV_MEM_COPY_UTIL", 0.0, 100.0),
    g("DCGM_FI_DEV_ENC_UTIL", 0.0, 0.0),
    g("DCGM_FI_DEV_DEC_UTIL", 0.0, 0.0),
    g("DCGM_FI_DEV_XID_ERRORS", 0.0, 0.0),
    g("DCGM_FI_DEV_FB_FREE", 1000.0, 80000.0),
    g("DCGM_FI_DEV_FB_USED", 500.0, 80000.0),
    g("DCGM_FI_DEV_FB_RESERVED", 531.0, 531.0),
    c("DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", 2.0e9),
    g("DCGM_FI_DEV_VGPU_LICENSE_STATUS", 0.0, 0.0),
    c("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", 0.0),
    c("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", 0.0),
    g("DCGM_FI_DEV_ROW_REMAP_FAILURE", 0.0, 0.0),
    g("DCGM_FI_PROF_GR_ENGINE_ACTIVE", 0.0, 1.0),
    g("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", 0.0, 1.0),
    g("DCGM_FI_PROF_DRAM_ACTIVE", 0.0, 1.0),
    c("DCGM_FI_PROF_PCIE_TX_BYTES", 3.0e8),
    c("DCGM_FI_PROF_PCIE_RX_BYTES", 9.0e8),
    g("DCGM_FI_PROF_SM_ACTIVE", 0.0, 1.0),
];

/// The family a sample's name belongs to (strips histogram suffixes).
pub(crate) fn family(name: &str) -> &str {
    for suf in ["_bucket", "_sum", "_count"] {
        if let Some(f) = name.strip_suffix(suf) {
            if f == HIST {
                return f;
            }
        }
    }
    name
}

const HIST: &str = "kubelet_pod_start_duration_seconds";
const HIST_LE: &[&str] = &["0.5", "1", "2", "3", "4", "5", "6", "8", "10", "20", "+Inf"];

/// Pushes the node-exporter and kubelet series of one node: about 600.
pub(crate) fn node_exporter_series(
    spec: &ClusterSpec,
    node: usize,
    slot: &mut u64,
    out: &mut Vec<SimSeries>,
) {
    let inst = spec.node_instance(node);
    let mut push = |name: &str, extra: &[(&str, &str)], kind: Kind| {
        let mut pairs = [("", ""); 6];
        let all = [
            ("__name__", name),
            ("instance", inst.as_str()),
            ("job", "node-exporter"),
        ];
        let mut n = 0;
        for (p, x) in pairs.iter_mut().zip(all.iter().chain(extra)) {
            *p = *x;
            n += 1;
        }
        let labels = match pairs.get(..n) {
            Some(p) if n == all.len() + extra.len() => labels_from(p),
            _ => Labels::from_pairs(all.iter().chain(extra).copied()),
        };
        out.push(SimSeries {
            labels,
            slot: *slot,
            kind,
        });
        *slot += 1;
    };
    let modes = [
        "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
    ];
    for cpu in 0..spec.cpus_per_node {
        let cpu = cpu.to_string();
        for m in modes {
            let rate = if m == "idle" {
                0.55
            } else if m == "user" {
                0.35
            } else {
                0.01
            };
            push(
                "node_cpu_seconds_total",
                &[("cpu", &cpu), ("mode", m)],
                Kind::Counter { rate, decimals: 2 },
            );
        }
    }
    for (i, m) in [
        "MemTotal",
        "MemFree",
        "MemAvailable",
        "Buffers",
        "Cached",
        "SwapCached",
        "Active",
        "Inactive",
        "Active_anon",
        "Inactive_anon",
        "Active_file",
        "Inactive_file",
        "Unevictable",
        "Mlocked",
        "SwapTotal",
        "SwapFree",
        "Dirty",
        "Writeback",
        "AnonPages",
        "Mapped",
        "Shmem",
        "KReclaimable",
        "Slab",
        "SReclaimable",
        "SUnreclaim",
        "KernelStack",
        "PageTables",
        "NFS_Unstable",
        "Bounce",
        "WritebackTmp",
        "CommitLimit",
        "Committed_AS",
        "VmallocTotal",
        "VmallocUsed",
        "VmallocChunk",
        "Percpu",
        "HardwareCorrupted",
        "AnonHugePages",
        "ShmemHugePages",
        "ShmemPmdMapped",
        "FileHugePages",
        "FilePmdMapped",
        "HugePages_Total",
        "HugePages_Free",
        "HugePages_Rsvd",
        "HugePages_Surp",
        "Hugepagesize",
        "Hugetlb",
        "DirectMap4k",
        "DirectMap2M",
        "DirectMap1G",
    ]
    .iter()
    .enumerate()
    {
        let name = format!("node_memory_{m}_bytes");
        let hi = 2.0e12 / (1 + i % 7) as f64;
        push(&name, &[], gi(hi * 0.2, hi));
    }
    let nets = [
        "eth0",
        "eth1",
        "ib0",
        "ib1",
        "ib2",
        "ib3",
        "lo",
        "docker0",
        "cni0",
        "flannel.1",
    ];
    for d in nets {
        for (m, rate) in [
            ("node_network_receive_bytes_total", 1.0e8),
            ("node_network_transmit_bytes_total", 8.0e7),
            ("node_network_receive_packets_total", 9.0e4),
            ("node_network_transmit_packets_total", 7.0e4),
            ("node_network_receive_errs_total", 0.0),
            ("node_network_transmit_errs_total", 0.0),
            ("node_network_receive_drop_total", 0.01),
            ("node_network_transmit_drop_total", 0.0),
        ] {
            push(m, &[("device", d)], Kind::Counter { rate, decimals: 0 });
        }
        push("node_network_up", &[("device", d)], Kind::Constant(1.0));
        push(
            "node_network_mtu_bytes",
            &[("device", d)],
            Kind::Constant(1500.0),
        );
    }
    let fss = [
        ("/dev/nvme0n1p2", "/", "ext4"),
        ("/dev/nvme0n1p1", "/boot/efi", "vfat"),
        ("/dev/md0", "/raid", "ext4"),
        ("tmpfs", "/run", "tmpfs"),
        ("tmpfs", "/dev/shm", "tmpfs"),
        ("overlay", "/var/lib/containerd", "overlay"),
        ("/dev/nvme1n1", "/scratch", "xfs"),
        ("nfs01:/home", "/home", "nfs4"),
    ];
    for (dev, mp, fs) in fss {
        for (m, kind) in [
            ("node_filesystem_size_bytes", Kind::Constant(3.8e12)),
            ("node_filesystem_free_bytes", gi(1.0e11, 3.0e12)),
            ("node_filesystem_avail_bytes", gi(1.0e11, 2.9e12)),
            ("node_filesystem_files", Kind::Constant(2.4e8)),
            ("node_filesystem_files_free", gi(1.0e8, 2.3e8)),
            ("node_filesystem_readonly", Kind::Constant(0.0)),
            ("node_filesystem_device_error", Kind::Constant(0.0)),
        ] {
            push(
                m,
                &[("device", dev), ("mountpoint", mp), ("fstype", fs)],
                kind,
            );
        }
    }
    for d in ["nvme0n1", "nvme1n1", "nvme2n1", "nvme3n1", "md0"] {
        for (m, rate) in [
            ("node_disk_reads_completed_total", 800.0),
            ("node_disk_writes_completed_total", 400.0),
            ("node_disk_read_bytes_total", 3.0e8),
            ("node_disk_written_bytes_total", 1.0e8),
            ("node_disk_io_time_seconds_total", 0.3),
            ("node_disk_io_time_weighted_seconds_total", 0.9),
            ("node_disk_read_time_seconds_total", 0.2),
            ("node_disk_write_time_seconds_total", 0.4),
            ("node_disk_reads_merged_total", 10.0),
            ("node_disk_writes_merged_total", 30.0),
            ("node_disk_discards_completed_total", 1.0),
            ("node_disk_discarded_sectors_total", 100.0),
        ] {
            let decimals = if m.contains("_seconds_") { 3 } else { 0 };
            push(m, &[("device", d)], Kind::Counter { rate, decimals });
        }
        push("node_disk_io_now", &[("device", d)], gi(0.0, 64.0));
    }
    for (i, m) in ["node_load1", "node_load5", "node_load15"]
        .iter()
        .enumerate()
    {
        push(
            m,
            &[],
            Kind::Gauge {
                lo: 1.0 + i as f64,
                hi: 40.0,
                decimals: 2,
            },
        );
    }
    for (m, rate) in [
        ("node_context_switches_total", 2.0e5),
        ("node_intr_total", 1.5e5),
        ("node_forks_total", 50.0),
        ("node_vmstat_pgfault", 3.0e5),
        ("node_vmstat_pgmajfault", 1.0),
        ("node_vmstat_pgpgin", 2.0e4),
        ("node_vmstat_pgpgout", 3.0e4),
        ("node_vmstat_pswpin", 0.0),
        ("node_vmstat_pswpout", 0.0),
        ("node_vmstat_oom_kill", 0.0),
    ] {
        push(m, &[], Kind::Counter { rate, decimals: 0 });
    }
    for (m, v) in [
        ("node_boot_time_seconds", 1.7e9),
        ("node_procs_running", 12.0),
        ("node_procs_blocked", 0.0),
        ("node_entropy_available_bits", 256.0),
        ("node_filefd_maximum", 9.2e18),
        ("node_nf_conntrack_entries_limit", 262_144.0),
        ("node_timex_sync_status", 1.0),
        ("node_exporter_build_info", 1.0),
    ] {
        push(m, &[], Kind::Constant(v));
    }
    push("node_filefd_allocated", &[], gi(3000.0, 30000.0));
    push("node_nf_conntrack_entries", &[], gi(100.0, 20000.0));
    push(
        "node_time_seconds",
        &[],
        Kind::Counter {
            rate: 1.0,
            decimals: 0,
        },
    );
    for zone in 0..8 {
        let z = zone.to_string();
        push(
            "node_hwmon_temp_celsius",
            &[
                ("chip", "platform_coretemp_0"),
                ("sensor", &format!("temp{z}")),
            ],
            gi(35.0, 90.0),
        );
        push(
            "node_thermal_zone_temp",
            &[("type", "x86_pkg_temp"), ("zone", &z)],
            gi(35.0, 90.0),
        );
    }
    // A classic histogram; buckets stay cumulative because every bucket of
    // a node shares one counter and takes a fixed fraction of it.
    let fracs = [
        0.05, 0.2, 0.45, 0.62, 0.74, 0.83, 0.89, 0.94, 0.97, 0.995, 1.0,
    ];
    let n = HIST_LE.len() as u64;
    for (i, (le, frac)) in HIST_LE.iter().zip(fracs).enumerate() {
        let count_offset = n + 1 - i as u64;
        push(
            &format!("{HIST}_bucket"),
            &[("le", le)],
            Kind::HistPart {
                frac,
                count_offset,
                rate: 0.2,
            },
        );
    }
    push(
        &format!("{HIST}_sum"),
        &[],
        Kind::HistPart {
            frac: 2.7,
            count_offset: 1,
            rate: 0.2,
        },
    );
    push(
        &format!("{HIST}_count"),
        &[],
        Kind::Counter {
            rate: 0.2,
            decimals: 0,
        },
    );
}
