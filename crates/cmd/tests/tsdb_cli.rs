//! The `cairn tsdb` commands as a user runs them, checked against promtool:
//! blocks from `cairn tsdb create-blocks-from openmetrics` satisfy
//! `promtool tsdb analyze` and `promtool tsdb dump`, and `cairn tsdb dump`
//! prints exactly what `promtool tsdb dump` prints for blocks promtool wrote.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::process::Command;

use support::{blocks, cairn, require_tool, run, sorted_lines};

fn openmetrics() -> String {
    let mut s = String::from("# HELP gpu_util GPU utilisation.\n# TYPE gpu_util gauge\n");
    for gpu in 0..4 {
        for i in 0..700i64 {
            // 15 s apart over ~3 hours: several 2h blocks, several chunks per series.
            let v = ((i * 37 + gpu * 11) % 100) as f64 + 0.25 * gpu as f64;
            s.push_str(&format!(
                "gpu_util{{gpu=\"{gpu}\",Hostname=\"n1\"}} {v} {}\n",
                1_700_000_000 + i * 15
            ));
        }
    }
    s.push_str("# HELP energy_joules_total Energy.\n# TYPE energy_joules_total counter\n");
    for i in 0..300i64 {
        s.push_str(&format!(
            "energy_joules_total{{gpu=\"0\"}} {} {}\n",
            1e9 + i as f64 * 6.75e6,
            1_700_000_000 + i * 15
        ));
    }
    s.push_str("# EOF\n");
    s
}

#[test]
fn cairn_blocks_satisfy_promtool_and_dumps_agree() {
    require_tool("/usr/bin/promtool");
    let tmp = tempfile::tempdir().unwrap();
    let om = tmp.path().join("in.om");
    std::fs::write(&om, openmetrics()).unwrap();

    let ours = tmp.path().join("ours");
    let theirs = tmp.path().join("theirs");
    run(cairn()
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&ours));
    run(Command::new("/usr/bin/promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&theirs));
    let ob = blocks(&ours);
    assert!(ob.len() >= 2, "expected several 2h blocks, got {ob:?}");
    assert_eq!(
        ob.len(),
        blocks(&theirs).len(),
        "same number of blocks as promtool"
    );

    // promtool accepts every block Cairn wrote.
    for b in &ob {
        let a = run(Command::new("/usr/bin/promtool")
            .args(["tsdb", "analyze"])
            .arg(&ours)
            .arg(b));
        assert!(
            a.contains(&format!("Block ID: {b}")) && a.contains("Series:"),
            "{a}"
        );
    }
    // promtool 2.42's dump wants a wal/ directory, as a Prometheus data dir has.
    std::fs::create_dir_all(ours.join("wal")).unwrap();
    std::fs::create_dir_all(theirs.join("wal")).unwrap();
    // promtool's dump of Cairn's blocks is exactly the input, and equals its dump of its own blocks.
    let dump_ours_by_promtool = run(Command::new("/usr/bin/promtool")
        .args(["tsdb", "dump"])
        .arg(&ours));
    let dump_theirs_by_promtool = run(Command::new("/usr/bin/promtool")
        .args(["tsdb", "dump"])
        .arg(&theirs));
    assert_eq!(
        sorted_lines(&dump_ours_by_promtool),
        sorted_lines(&dump_theirs_by_promtool)
    );
    assert_eq!(dump_ours_by_promtool.lines().count(), 4 * 700 + 300);
    // Cairn's dump of promtool's blocks prints what promtool prints.
    let dump_theirs_by_cairn = run(cairn().args(["tsdb", "dump"]).arg(&theirs));
    assert_eq!(
        sorted_lines(&dump_theirs_by_cairn),
        sorted_lines(&dump_theirs_by_promtool)
    );
    // Matchers and time bounds.
    let some = run(cairn()
        .args([
            "tsdb",
            "dump",
            "--match",
            "gpu_util{gpu=\"1\"}",
            "--min-time",
            "1700000000000",
            "--max-time",
            "1700000150000",
        ])
        .arg(&theirs));
    assert_eq!(some.lines().count(), 11, "{some}");
    assert!(
        some.lines()
            .all(|l| l.starts_with("{Hostname=\"n1\", __name__=\"gpu_util\", gpu=\"1\"}")),
        "{some}"
    );
    // analyze runs on a Cairn block.
    let a = run(cairn().args(["tsdb", "analyze"]).arg(&ours));
    assert!(!a.is_empty());
}
