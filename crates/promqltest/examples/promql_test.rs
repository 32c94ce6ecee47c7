//! Runs PromQL test scripts: `cargo run -p cairn-promqltest --example promql_test -- [-v] PATH...`.
use std::path::PathBuf;

fn main() {
    let mut verbose = false;
    let mut paths = Vec::new();
    for a in std::env::args().skip(1) {
        if a == "-v" {
            verbose = true;
        } else {
            paths.push(PathBuf::from(a));
        }
    }
    let mut out = std::io::stdout();
    match cairn_promqltest::run_paths(&paths, verbose, &mut out) {
        Ok(s) => std::process::exit(if s.failed == 0 { 0 } else { 1 }),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
