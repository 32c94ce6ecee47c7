//! Shared helpers for the criterion benches (data generators).

use cairn_model::Labels;

/// The DCGM exporter fields the head benches use.
pub const METRICS: [&str; 20] = [
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_MEM_COPY_UTIL",
    "DCGM_FI_DEV_ENC_UTIL",
    "DCGM_FI_DEV_DEC_UTIL",
    "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_MEMORY_TEMP",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "DCGM_FI_DEV_SM_CLOCK",
    "DCGM_FI_DEV_MEM_CLOCK",
    "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
    "DCGM_FI_DEV_XID_ERRORS",
    "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    "DCGM_FI_PROF_DRAM_ACTIVE",
    "DCGM_FI_PROF_PCIE_TX_BYTES",
    "DCGM_FI_PROF_PCIE_RX_BYTES",
];

/// Series `i` of a cluster of 8-GPU hosts exporting 20 DCGM metrics.
pub fn dcgm_labels(i: usize) -> Labels {
    #[allow(clippy::indexing_slicing)] // in bounds: `% len`
    let metric = METRICS[i % METRICS.len()];
    let gpu = (i / METRICS.len()) % 8;
    let host = i / (METRICS.len() * 8);
    Labels::from_pairs([
        ("__name__", metric.to_owned()),
        ("gpu", gpu.to_string()),
        ("UUID", format!("GPU-{host:08x}-7c1e-4b2a-9d3f-{gpu:012x}")),
        ("device", format!("nvidia{gpu}")),
        ("modelName", "NVIDIA H100 80GB HBM3".to_owned()),
        ("Hostname", format!("gpu-node-{host:05}")),
        ("DCGM_FI_DRIVER_VERSION", "535.129.03".to_owned()),
        ("container", "trainer".to_owned()),
        ("namespace", format!("team-{}", host % 40)),
        (
            "pod",
            format!("train-job-{}-worker-{}", host / 16, host % 16),
        ),
        (
            "instance",
            format!(
                "10.{}.{}.{}:9400",
                host / 65536,
                (host / 256) % 256,
                host % 256
            ),
        ),
        ("job", "dcgm-exporter".to_owned()),
    ])
}
