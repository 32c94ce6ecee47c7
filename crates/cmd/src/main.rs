//! The `cairn` binary: parses flags, sets up logging and dispatches to the
//! subcommands. Library crates hold the logic; this crate only wires it.

mod cli;
mod engine;
mod logfmt;
mod serve;
mod tsdb_cmd;
mod units;

use clap::Parser;

// The system allocator (glibc's malloc), on purpose: the head's open
// chunks grow a few bytes at a time in a million series at once, and
// size-class allocators (mimalloc, jemalloc) kept the freed smaller buffers
// in pages shared with long-lived series records, which cost 650-800 bytes
// of resident memory per series more than glibc on the 1,000-node ingest
// benchmark; range queries took the same time (docs/head.md, "Memory").

fn init_logging(level: &str, format: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        "json" => b.json().init(),
        "logfmt" => b.event_format(logfmt::Logfmt).init(),
        other => anyhow::bail!("--log.format {other:?} is not one of logfmt, json"),
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    if let Err(e) = init_logging(&cli.log_level, &cli.log_format) {
        eprintln!("error: {e:#}");
        return std::process::ExitCode::FAILURE;
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<std::process::ExitCode> {
    use cli::{Command, CreateBlocksFrom, PromqlCommand, TsdbCommand};
    match cli.command {
        Command::Serve(a) => serve::run(a)?,
        Command::Tsdb(TsdbCommand::CreateBlocksFrom(CreateBlocksFrom::Openmetrics {
            input,
            output,
            max_block_duration,
        })) => tsdb_cmd::create_blocks(&input, &output, &max_block_duration)?,
        Command::Tsdb(TsdbCommand::Dump {
            db_path,
            min_time,
            max_time,
            matchers,
            resolution,
            aggregate,
        }) => tsdb_cmd::dump(
            &db_path,
            min_time,
            max_time,
            &matchers,
            resolution.as_deref(),
            &aggregate,
        )?,
        Command::Tsdb(TsdbCommand::Downsample { db_path }) => tsdb_cmd::downsample(&db_path)?,
        Command::Tsdb(TsdbCommand::Compact {
            chunk_encoding,
            max_block_duration,
            downsample,
            db_path,
        }) => tsdb_cmd::compact(
            &db_path,
            &chunk_encoding,
            max_block_duration.as_deref(),
            downsample,
        )?,
        Command::Tsdb(TsdbCommand::Export {
            chunk_encoding,
            src,
            dst,
        }) => tsdb_cmd::export(&src, &dst, &chunk_encoding)?,
        Command::Tsdb(TsdbCommand::Analyze {
            db_path,
            block_id,
            limit,
        }) => tsdb_cmd::analyze(&db_path, block_id.as_deref(), limit)?,
        Command::Promql(PromqlCommand::Test {
            verbose,
            server_defaults,
            paths,
        }) => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            let opts = if server_defaults {
                cairn_promql::EngineOptions::default()
            } else {
                cairn_promqltest::test_engine_options()
            };
            let summary = cairn_promqltest::run_paths_with(&paths, &opts, verbose, &mut out)?;
            if summary.failed > 0 {
                return Ok(std::process::ExitCode::FAILURE);
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
