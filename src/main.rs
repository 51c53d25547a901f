//! The `smtp-fault` command: parses arguments, sets up logging and calls into the library.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use smtp_fault::scenario::{self, Scenario};
use smtp_fault::tls::{self, Catalogue};
use smtp_fault::{ControlConfig, Server, ServerConfig};
use tokio::signal::unix::{Signal, SignalKind, signal};

#[derive(Parser)]
#[command(
    name = "smtp-fault",
    version,
    about = "A fake destination SMTP server that fails on purpose, exactly as a scenario says",
    after_help = "Examples:\n  \
        smtp-fault serve --scenario connection-refused\n  \
        smtp-fault scenarios\n  \
        smtp-fault check my-scenario.toml\n  \
        smtp-fault certs --out /tmp/lab-certs"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Run the server with a scenario.
    #[command(after_help = "Examples:\n  \
        smtp-fault serve                              # healthy receiver on 127.0.0.1:2525\n  \
        smtp-fault serve --scenario mailbox-full\n  \
        smtp-fault serve --scenario ./my.toml --listen 127.0.0.1:0 --capture-dir /tmp/mail\n  \
        smtp-fault serve --scenario cert-expired --listen-tls 127.0.0.1:4650\n  \
        smtp-fault serve --listen 127.0.0.1:0 --control 127.0.0.1:0\n\n\
        Once ready it prints one line per listener on standard output, such as\n\
        `listening smtp 127.0.0.1:2525`, before anything else. Logs go to standard error.")]
    Serve(ServeArgs),
    /// List the built-in scenarios and the error each reproduces.
    #[command(after_help = "Examples:\n  smtp-fault scenarios\n  smtp-fault scenarios --markdown")]
    Scenarios {
        /// Print the README's Markdown table instead: name, error, what the destination does.
        #[arg(long)]
        markdown: bool,
    },
    /// Validate scenario files; stops at the first bad one with its file:line:column.
    #[command(after_help = "Example:\n  smtp-fault check scenarios/*.toml")]
    Check {
        /// The files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Play a sending connector against a destination and give the documented verdict.
    Probe(smtp_fault::probe::ProbeArgs),
    /// Write the lab CA, its key and every certificate variant as PEM files.
    #[command(after_help = "Examples:\n  \
        smtp-fault certs --out /tmp/lab-certs\n  \
        smtp-fault certs --out certs/ --new-ca          # make a brand-new lab CA")]
    Certs {
        /// The directory to write to; created if missing.
        #[arg(long)]
        out: PathBuf,
        /// The server name the leaf certificates are for (a name under .test).
        #[arg(long, default_value = "mx.lab.test")]
        hostname: String,
        /// Generate a new lab CA instead of using the built-in one.
        #[arg(long)]
        new_ca: bool,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// A built-in scenario name or the path of a scenario file.
    #[arg(long, default_value = "accept")]
    scenario: String,
    /// The SMTP listener's address; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:2525")]
    listen: SocketAddr,
    /// Also listen for implicit TLS (port 465 style) on this address.
    #[arg(long)]
    listen_tls: Option<SocketAddr>,
    /// The name the server gives itself; its certificates are for this name.
    #[arg(long, default_value = "mx.lab.test")]
    hostname: String,
    /// Also write each accepted message here, as ID.eml beside ID.json.
    #[arg(long)]
    capture_dir: Option<PathBuf>,
    /// Where the lab DNS server listens (UDP and TCP). It runs when this is given or when the
    /// scenario has a [dns] part [default: 127.0.0.1:5300, or port 0 when --listen has port 0]
    #[arg(long)]
    listen_dns: Option<SocketAddr>,
    /// Run the HTTP control API on this address (loopback unless a token is given).
    #[arg(long)]
    control: Option<SocketAddr>,
    /// Require `Authorization: Bearer TOKEN` on every control API request.
    #[arg(long, requires = "control")]
    control_token: Option<String>,
    /// The most sessions at once; past it a connection gets 421 4.7.0.
    #[arg(long, default_value_t = 16_384)]
    max_sessions: usize,
    /// How logs are written to standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Commands::Serve(args) => serve(args),
        Commands::Scenarios { markdown } => list_scenarios(markdown),
        Commands::Check { files } => check(&files),
        Commands::Probe(args) => Ok(smtp_fault::probe::run_cli_blocking(args)),
        Commands::Certs {
            out,
            hostname,
            new_ca,
        } => certs(&out, &hostname, new_ca),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("smtp-fault: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,hickory_server=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn serve(args: ServeArgs) -> Result<ExitCode> {
    init_logging(args.log_format);
    let scenario = Scenario::resolve(&args.scenario).map_err(anyhow::Error::msg)?;
    if let Some(dir) = &args.capture_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create capture directory {}", dir.display()))?;
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let dns = args
            .listen_dns
            .or_else(|| default_dns(&scenario, args.listen));
        let config = ServerConfig {
            scenario,
            smtp: args.listen,
            smtps: args.listen_tls,
            hostname: args.hostname,
            capture_dir: args.capture_dir,
            max_sessions: args.max_sessions,
            control: args.control.map(|addr| ControlConfig {
                addr,
                token: args.control_token,
            }),
            dns,
            ..ServerConfig::default()
        };
        let server = Server::start(config).await?;
        // The handlers are in place before the listening line, so that a SIGTERM sent as soon
        // as the line is read shuts down cleanly instead of killing the process.
        let signals = Signals::install()?;

        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening smtp {}", server.smtp_addr())?;
        if let Some(addr) = server.smtps_addr() {
            writeln!(stdout, "listening smtps {addr}")?;
        }
        if let Some(addr) = server.dns_addr() {
            writeln!(stdout, "listening dns {addr}")?;
        }
        if let Some(addr) = server.control_addr() {
            writeln!(stdout, "listening control {addr}")?;
        }
        stdout.flush()?;
        drop(stdout);
        tracing::info!(scenario = %server.scenario().name, "ready");

        signals.wait().await;
        tracing::info!("shutting down");
        server.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// SIGTERM and SIGINT, either of which shuts the server down.
struct Signals {
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    fn install() -> Result<Self> {
        Ok(Self {
            terminate: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

/// A scenario with a lab zone gets its DNS server on a fixed port that a lab can type into dig;
/// a harness that lets the SMTP port be picked gets a picked DNS port too.
fn default_dns(scenario: &Scenario, smtp: SocketAddr) -> Option<SocketAddr> {
    scenario.dns.as_ref()?;
    let port = if smtp.port() == 0 { 0 } else { 5300 };
    Some(SocketAddr::new(smtp.ip(), port))
}

fn list_scenarios(markdown: bool) -> Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    if markdown {
        write!(stdout, "{}", scenario::markdown_table())?;
        return Ok(ExitCode::SUCCESS);
    }
    for name in scenario::builtin_names() {
        let scenario = scenario::builtin(name).expect("listed names exist");
        writeln!(stdout, "{name:<28} {}", scenario.reproduces.label())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn check(files: &[PathBuf]) -> Result<ExitCode> {
    for file in files {
        match Scenario::from_file(file) {
            Ok(scenario) => println!(
                "{}: ok ({}, {})",
                file.display(),
                scenario.name,
                scenario.reproduces.label()
            ),
            Err(e) => {
                eprintln!("{e}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn certs(out: &PathBuf, hostname: &str, new_ca: bool) -> Result<ExitCode> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let catalogue = if new_ca {
        let (ca_pem, key_pem) = tls::generate_ca()?;
        std::sync::Arc::new(Catalogue::with_ca(hostname, &ca_pem, &key_pem)?)
    } else {
        tls::try_catalogue(hostname)?
    };
    let written = catalogue
        .write_pem_files(out)
        .with_context(|| format!("cannot write certificates to {}", out.display()))?;
    for path in written {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
