//! The `cairn` binary: parses flags and dispatches to the subcommands.

fn main() {
    println!("cairn {}", env!("CARGO_PKG_VERSION"));
}
