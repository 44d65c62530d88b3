//! The `vltava` command: `vltava server` runs a broker; `topic`, `produce`,
//! `consume`, `group`, `cluster` and `bench` are clients for any
//! Kafka-compatible cluster; `log verify` checks a stopped broker's data
//! directory; `completions` prints shell completions.
//!
//! Parsing lives here; each command's work is in `src/cli/`.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use vltava::cli::bench::BenchCommand;
use vltava::cli::cluster::ClusterCommand;
use vltava::cli::consume::ConsumeArgs;
use vltava::cli::group::GroupCommand;
use vltava::cli::log::LogCommand;
use vltava::cli::produce::ProduceArgs;
use vltava::cli::server::ServerArgs;
use vltava::cli::topic::TopicCommand;

#[global_allocator]
static GLOBAL: vltava::alloc::GuardedAlloc = vltava::alloc::GuardedAlloc;

#[derive(Parser)]
#[command(
    name = "vltava",
    version,
    about = "A Kafka-compatible event streaming broker, and a CLI for any Kafka cluster",
    after_help = "Examples:
  vltava server
  vltava topic create greetings -p 3
  printf 'k1:hello\\nk2:world\\n' | vltava produce greetings -K :
  vltava consume greetings -e -F key-value -K :
  vltava group describe my-group

Client commands reach localhost:9092 unless given -b/--brokers or VLTAVA_BROKERS;
when no broker answers within --timeout-ms they stop with one line. -v shows
librdkafka's own logs."
)]
struct Cli {
    /// Log format on stderr (the level comes from RUST_LOG, default info)
    #[arg(long, global = true, env = "VLTAVA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Client commands: also log librdkafka's messages and vltava's info
    /// lines (RUST_LOG, when set, decides instead)
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker.
    ///
    /// Examples:
    ///   vltava server
    ///   vltava server --listen 0.0.0.0:9092 --data-dir /var/lib/vltava
    ///   vltava server --config /etc/kafka/server.properties
    ///   vltava server --override num.partitions=3 --admin-listen 127.0.0.1:9644
    ///   vltava server --config vltava.toml --print-config
    #[command(verbatim_doc_comment)]
    Server(ServerArgs),
    /// Create, list, describe, delete and configure topics.
    #[command(subcommand)]
    Topic(TopicCommand),
    /// Produce lines from stdin or a file, one record each.
    ///
    /// Examples:
    ///   printf 'k1:hello\nk2:world\n' | vltava produce greetings -K :
    ///   vltava produce greetings -f lines.txt --acks 1 -z zstd -H source=import
    #[command(verbatim_doc_comment)]
    Produce(ProduceArgs),
    /// Print records from a topic.
    ///
    /// Examples:
    ///   vltava consume greetings -e                  # from the beginning to the end
    ///   vltava consume greetings -o end              # tail: only new records
    ///   vltava consume greetings -g my-group -F key-value -K :
    ///   vltava consume greetings -o @1735689600000 -n 10 -F json
    #[command(verbatim_doc_comment)]
    Consume(ConsumeArgs),
    /// List, describe, delete consumer groups and reset their offsets.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Cluster information.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Measure produce, consume and end-to-end throughput and latency.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Check a stopped broker's data on disk (offline; reads only).
    #[command(subcommand)]
    Log(LogCommand),
    /// Print shell completions.
    ///
    /// Examples:
    ///   vltava completions bash > /etc/bash_completion.d/vltava
    ///   vltava completions zsh > "${fpath[1]}/_vltava"
    ///   vltava completions fish > ~/.config/fish/completions/vltava.fish
    #[command(verbatim_doc_comment)]
    Completions { shell: clap_complete::Shell },
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches)?;
    init_logging(
        cli.log_format,
        matches!(cli.command, Command::Server(_)),
        cli.verbose,
    );
    match cli.command {
        Command::Server(args) => {
            let print = args.print_config;
            let server_matches = matches
                .subcommand_matches("server")
                .cloned()
                .unwrap_or_default();
            let settings = vltava::cli::server::settings(args, &server_matches)?;
            if print {
                print!("{}", vltava::cli::server::print_config(&settings.sources));
                for (key, reason) in &settings.ignored {
                    println!("# ignored: {key} ({reason})");
                }
                return Ok(());
            }
            for (key, reason) in &settings.ignored {
                tracing::warn!(key = %key, reason, "ignoring a server.properties key");
            }
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(vltava::server::run(
                    settings.config,
                    settings.admin,
                    settings.listen_name,
                    settings.more_listeners,
                ))
        }
        Command::Topic(cmd) => vltava::cli::topic::run(cmd),
        Command::Produce(args) => vltava::cli::produce::run(args),
        Command::Consume(args) => vltava::cli::consume::run(args),
        Command::Group(cmd) => vltava::cli::group::run(cmd),
        Command::Cluster(cmd) => vltava::cli::cluster::run(cmd),
        Command::Bench(cmd) => vltava::cli::bench::run(cmd),
        Command::Log(cmd) => vltava::cli::log::run(cmd),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "vltava", &mut std::io::stdout());
            Ok(())
        }
    }
}

/// `tracing` to stderr; the broker logs at info by default (openraft's own
/// steps only from warn), the client commands only their own warnings (their
/// output is on stdout; a failure is one `error:` line): librdkafka's logs
/// only with `-v` or `RUST_LOG`.
fn init_logging(format: LogFormat, server: bool, verbose: bool) {
    let default = match (server, verbose) {
        (true, _) => "info,openraft=warn",
        (false, true) => "info",
        (false, false) => "warn,librdkafka=off,rdkafka=off",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only on a terminal; everywhere else any control character a
    // client slipped into an event is escaped, so each event is one line.
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_ansi(ansi)
        .with_writer(move || vltava::logging::OneLine::new(std::io::stderr(), ansi))
        .with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
