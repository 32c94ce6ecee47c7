//! The built-in web UI in a real browser (Debian's headless Chromium):
//! every page loads without a console error, a query draws a uPlot graph
//! and fills the table, metric names are offered for completion, the status
//! pages show the API's answers, and a bad query shows the API's error.
//! With `CAIRN_UI_SCREENSHOTS=DIR`, screenshots of the graph and status
//! pages are written there (docs/ui-*.png come from it).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::process::Command;

use cairn_model::Labels;
use support::*;

/// The page's DOM after its scripts ran, and the console messages.
fn load(url: &str) -> (String, Vec<String>) {
    require_tool("/usr/bin/chromium");
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("/usr/bin/chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            "--window-size=1280,800",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

fn screenshot(url: &str, file: &str) {
    let Some(dir) = std::env::var_os("CAIRN_UI_SCREENSHOTS") else {
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    run(Command::new("/usr/bin/chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--virtual-time-budget=10000",
            "--window-size=1280,800",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!(
            "--screenshot={}",
            std::path::Path::new(&dir).join(file).display()
        ))
        .arg(url));
}

#[test]
fn pages_load_and_a_query_draws_a_graph() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _c = start_cairn(
        &tmp.path().join("data"),
        port,
        &["--storage.tsdb.maintenance-interval=1s"],
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut batch = Vec::new();
    for gpu in 0..4 {
        let l = Labels::from_pairs([
            ("__name__", "DCGM_FI_DEV_GPU_UTIL"),
            ("Hostname", "gpu-node-1"),
            ("gpu", &gpu.to_string()),
        ]);
        // Five hours: the oldest are cut into a block.
        for i in 0..1200i64 {
            let v = ((i * 7 + gpu * 13) % 100) as f64;
            batch.push((l.clone(), now - 5 * 3_600_000 + i * 15_000, v));
        }
    }
    assert_eq!(
        remote_write(&format!("{base}/api/v1/write"), &batch)
            .unwrap()
            .status,
        204
    );

    // `/` leads to the graph page.
    let r = get(&format!("{base}/"));
    assert_eq!(r.status, 200, "redirected to /graph");

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let first_block = loop {
        let v = get(&format!("{base}/api/v1/status/blocks")).json();
        if let Some(u) = v["data"]["blocks"][0]["ulid"].as_str() {
            break u.to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "no block cut: {v}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let blocks_page = "/status/blocks";
    let pages = [
        (blocks_page, first_block.as_str()),
        ("/graph?expr=DCGM_FI_DEV_GPU_UTIL&range=1h", "canvas"),
        ("/graph?expr=DCGM_FI_DEV_GPU_UTIL&tab=table", "result-table"),
        ("/status/tsdb", "Series by metric"),
        ("/status/flags", "storage.tsdb.path"),
        ("/status/rules", "No rules loaded"),
        ("/status/alerts", "No active alerts"),
    ];
    for (path, want) in pages {
        let (dom, console) = load(&format!("{base}{path}"));
        assert!(console.is_empty(), "{path}: console: {console:?}");
        assert!(dom.contains(want), "{path}: no {want:?} in {dom}");
    }
    let (dom, _) = load(&format!("{base}/graph?expr=DCGM_FI_DEV_GPU_UTIL&range=1h"));
    assert!(dom.contains("class=\"uplot"), "uPlot drew: {dom}");
    assert!(
        dom.matches("gpu-node-1").count() >= 4,
        "four series in the legend"
    );
    assert!(
        dom.contains("<option value=\"DCGM_FI_DEV_GPU_UTIL\">"),
        "metric names offered for completion"
    );
    let (dom, _) = load(&format!("{base}/graph?expr=DCGM_FI_DEV_GPU_UTIL&tab=table"));
    assert_eq!(dom.matches("gpu-node-1").count(), 4, "four rows");
    // A bad query shows the API's error.
    let (dom, console) = load(&format!("{base}/graph?expr=sum(&range=1h"));
    assert!(console.is_empty(), "{console:?}");
    assert!(dom.contains("bad_data"), "{dom}");

    screenshot(
        &format!("{base}/graph?expr=DCGM_FI_DEV_GPU_UTIL&range=1h"),
        "ui-graph.png",
    );
    screenshot(&format!("{base}/status/tsdb"), "ui-tsdb.png");
    screenshot(&format!("{base}/status/blocks"), "ui-blocks.png");
}
