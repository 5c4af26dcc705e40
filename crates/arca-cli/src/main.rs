//! `arca`: the server (`arca serve`) and the client commands, in one binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod client;
mod commands;
mod data;
#[cfg(test)]
mod doc_examples;
mod output;
mod profile;
mod serve;

use client::ServerError;
use client::{Settings, Token};
use commands::alias::AliasCommand;
use commands::approval::ApprovalCommand;
use commands::crypto::{self as crypto_cmd, DataKeyCommand, KemCommand, MacCommand};
use commands::envelope::EnvelopeCommand;
use commands::identity::{BindingCommand, CredentialsCommand, PrincipalCommand, TokenCommand};
use commands::key::KeyCommand;
use commands::policy::PolicyCommand;
use commands::tenant::TenantCommand;
use commands::{Ctx, NotValid};
use output::OutputFormat;

/// Arca: a key management system you run yourself.
#[derive(Debug, Parser)]
#[command(
    name = "arca",
    version,
    about,
    after_help = "Run `arca serve` once: it writes two CLI profiles, `default` (the default tenant's \
                  admin) and `operator` (the system operator: `--profile operator`), and the other \
                  commands use them. For a root key split among custodians (Shamir), run `arca init` \
                  before the first `arca serve` (see docs/custody.md).\n\n\
                  Exit status:\n  \
                  0  success\n  \
                  1  error\n  \
                  2  a signature or MAC did not verify\n  \
                  3  the operation waits for M-of-N approval: nothing was done yet; the approval \
                  request's id is on stdout (with --output json: {\"approval_request_id\": ...}), \
                  the next steps on stderr"
)]
struct Cli {
    /// Server URL, e.g. https://127.0.0.1:8443 [default: from the profile].
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "ARCA_SERVER",
        value_name = "URL"
    )]
    server: Option<String>,
    /// CA certificate (PEM) that signed the server's certificate [default: from the profile].
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "ARCA_CA_CERT",
        value_name = "FILE"
    )]
    ca_cert: Option<PathBuf>,
    /// API token [default: from the profile]. Prefer ARCA_TOKEN or the profile: other local
    /// users can see command-line flags.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "ARCA_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<Token>,
    /// Profile to use from the profile file.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "ARCA_PROFILE",
        default_value = "default",
        value_name = "NAME"
    )]
    profile: String,
    /// Profile file (default: ~/.config/arca/profile.toml).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "ARCA_PROFILE_FILE",
        value_name = "FILE"
    )]
    profile_file: Option<PathBuf>,
    /// Output format.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "ARCA_OUTPUT",
        value_enum,
        default_value_t = OutputFormat::Table
    )]
    output: OutputFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Arca server.
    Serve(serve::ServeArgs),
    /// Make a new data dir whose root key is split M-of-N among custodians (Shamir).
    Init(commands::custody::InitArgs),
    /// Submit one custodian's share to a sealed server (no token needed).
    Unseal(commands::custody::UnsealArgs),
    /// Seal the server now (system operators: `--profile operator`).
    Seal,
    /// Show whether the server is sealed and the unseal progress (no token needed).
    Status,
    /// Re-share the root key among new custodians, or rotate it: an operator starts, the
    /// current custodians' quorum of shares completes (`start`, `status`, `share`, `cancel`).
    Rekey {
        #[command(subcommand)]
        cmd: commands::custody::RekeyCommand,
    },
    /// Manage keys: create, list, describe, update, rotate, lifecycle, export.
    Key {
        #[command(subcommand)]
        cmd: KeyCommand,
    },
    /// Manage aliases: names that point at keys.
    Alias {
        #[command(subcommand)]
        cmd: AliasCommand,
    },
    /// Encrypt data (up to 64 KiB) under a key; writes the raw ciphertext.
    Encrypt(crypto_cmd::EncryptArgs),
    /// Decrypt a ciphertext made by `arca encrypt`.
    Decrypt(crypto_cmd::DecryptArgs),
    /// Re-encrypt a ciphertext under another key, without the plaintext leaving the server.
    ReEncrypt(crypto_cmd::ReEncryptArgs),
    /// Sign a message (or a digest with --digest); writes the raw signature.
    Sign(crypto_cmd::SignArgs),
    /// Verify a signature (exit 0 if valid, 2 if not).
    Verify(crypto_cmd::VerifyArgs),
    /// Generate or verify HMACs.
    Mac {
        #[command(subcommand)]
        cmd: MacCommand,
    },
    /// ML-KEM encapsulation and decapsulation.
    Kem {
        #[command(subcommand)]
        cmd: KemCommand,
    },
    /// Generate data keys and data key pairs for envelope encryption.
    DataKey {
        #[command(subcommand)]
        cmd: DataKeyCommand,
    },
    /// Random bytes from the server's CSPRNG.
    Random(crypto_cmd::RandomArgs),
    /// Encrypt or decrypt whole files of any size with envelope encryption.
    Envelope {
        #[command(subcommand)]
        cmd: EnvelopeCommand,
    },
    /// Manage a key's policy: who may do what with it, versioned and reversible.
    Policy {
        #[command(subcommand)]
        cmd: PolicyCommand,
    },
    /// M-of-N approvals: list, vote on, and execute operations that need a quorum.
    Approval {
        #[command(subcommand)]
        cmd: ApprovalCommand,
    },
    /// Manage principals (users and services) of your tenant, their roles and groups.
    Principal {
        #[command(subcommand)]
        cmd: PrincipalCommand,
    },
    /// Issue, list and revoke API tokens.
    Token {
        #[command(subcommand)]
        cmd: TokenCommand,
    },
    /// Issue, list and revoke AWS access key pairs (for the AWS-compatible API).
    Credentials {
        #[command(subcommand)]
        cmd: CredentialsCommand,
    },
    /// Let client certificates or JWT identities authenticate as principals.
    Binding {
        #[command(subcommand)]
        cmd: BindingCommand,
    },
    /// Google Workspace client-side encryption: set Arca up as the KACLS (tenant-admins).
    Cse {
        #[command(subcommand)]
        cmd: commands::door::CseCommand,
    },
    /// Microsoft Purview Double Key Encryption: set Arca up as the DKE key service
    /// (tenant-admins).
    Dke {
        #[command(subcommand)]
        cmd: commands::door::DkeCommand,
    },
    /// Manage tenants (system operators) and your tenant's settings (tenant-admins).
    Tenant {
        #[command(subcommand)]
        cmd: TenantCommand,
    },
    /// Start a short-lived session from your credential (or continue one with --refresh).
    Login(commands::session::LoginArgs),
    /// End the session whose access token is in use.
    Logout,
    /// Show who the token belongs to: principal, tenant and roles.
    Whoami,
    /// Write an encrypted backup of the whole store (system operators).
    Backup(commands::custody::BackupArgs),
    /// Check a backup and stage it in a new data directory (applied once unsealed).
    Restore(commands::custody::RestoreArgs),
    /// The audit trail: search, tail, export, verify, usage report, receipts.
    Audit {
        #[command(subcommand)]
        cmd: commands::audit::AuditCommand,
    },
    /// Print the server's OpenAPI document.
    Openapi,
    /// Check that the server is live and ready.
    Health,
    /// Print a shell completion script.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Ctx {
        settings: Settings {
            server: cli.server,
            ca_cert: cli.ca_cert,
            token: cli.token,
            profile: cli.profile,
            profile_file: cli.profile_file.clone(),
        },
        output: cli.output,
    };
    match cli.command {
        Command::Serve(a) => serve::run(a, cli.profile_file).await,
        Command::Init(a) => commands::custody::init(a, cli.profile_file).await,
        Command::Unseal(a) => commands::custody::unseal(&ctx, a).await,
        Command::Seal => commands::custody::seal(&ctx).await,
        Command::Status => commands::custody::status(&ctx).await,
        Command::Rekey { cmd } => commands::custody::rekey(&ctx, cmd).await,
        Command::Key { cmd } => commands::key::run(&ctx, cmd).await,
        Command::Alias { cmd } => commands::alias::run(&ctx, cmd).await,
        Command::Encrypt(a) => crypto_cmd::encrypt(&ctx, a).await,
        Command::Decrypt(a) => crypto_cmd::decrypt(&ctx, a).await,
        Command::ReEncrypt(a) => crypto_cmd::re_encrypt(&ctx, a).await,
        Command::Sign(a) => crypto_cmd::sign(&ctx, a).await,
        Command::Verify(a) => crypto_cmd::verify(&ctx, a).await,
        Command::Mac { cmd } => crypto_cmd::mac(&ctx, cmd).await,
        Command::Kem { cmd } => crypto_cmd::kem(&ctx, cmd).await,
        Command::DataKey { cmd } => crypto_cmd::data_key(&ctx, cmd).await,
        Command::Random(a) => crypto_cmd::random(&ctx, a).await,
        Command::Envelope { cmd } => commands::envelope::run(&ctx, cmd).await,
        Command::Policy { cmd } => commands::policy::run(&ctx, cmd).await,
        Command::Approval { cmd } => commands::approval::run(&ctx, cmd).await,
        Command::Principal { cmd } => commands::identity::principal(&ctx, cmd).await,
        Command::Token { cmd } => commands::identity::token(&ctx, cmd).await,
        Command::Binding { cmd } => commands::identity::binding(&ctx, cmd).await,
        Command::Credentials { cmd } => commands::identity::credentials(&ctx, cmd).await,
        Command::Cse { cmd } => commands::door::cse(&ctx, cmd).await,
        Command::Dke { cmd } => commands::door::dke(&ctx, cmd).await,
        Command::Tenant { cmd } => commands::tenant::run(&ctx, cmd).await,
        Command::Login(a) => commands::session::login(&ctx, a).await,
        Command::Logout => commands::session::logout(&ctx).await,
        Command::Whoami => commands::misc::whoami(&ctx).await,
        Command::Backup(a) => commands::custody::backup(&ctx, a).await,
        Command::Restore(a) => commands::custody::restore(&ctx, a).await,
        Command::Audit { cmd } => commands::audit::run(&ctx, cmd).await,
        Command::Openapi => commands::misc::openapi(&ctx).await,
        Command::Health => commands::misc::health(&ctx).await,
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "arca", &mut buf);
            output::write_stdout(&buf);
            Ok(())
        }
    }
}

/// Exit status of a command whose operation waits for M-of-N approval.
const EXIT_NEEDS_APPROVAL: u8 = 3;

/// The operation was not done: it waits for approval. The id goes to stdout (so that
/// `id=$(arca key schedule-destruction k)` captures it), what to do next to stderr.
fn waiting_for_approval(e: &ServerError, id: &str, json: bool) {
    eprintln!("approval needed: {}", e.message);
    eprintln!("  approvers vote:   arca approval approve {id}   (or deny)");
    eprintln!("  then you execute: arca approval execute {id}");
    eprintln!("  where it stands:  arca approval show {id}   (all: arca approval list)");
    if json {
        output::print_json(&serde_json::json!({
            "code": e.code,
            "message": e.message,
            "approval_request_id": id,
        }));
    } else {
        output::write_stdout(format!("{id}\n").as_bytes());
    }
}

/// mimalloc instead of the system allocator: a request allocates and frees many small
/// buffers on two runtime threads and hands some to others (the audit writer, the store's
/// threads), where glibc's malloc spent 13 % of the server's time under load. Measured with
/// `scripts/wrk-bench` (docs/benchmarks.md, issue 20): +30 % requests per second at 64
/// connections on every door. Secrets are unaffected: key material lives in buffers that
/// zero themselves before they are freed, whatever allocator frees them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // Usage errors exit 1 like every other error: 2 means "does not verify".
            return if e.exit_code() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.output == OutputFormat::Json;
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(nv) = e.downcast_ref::<NotValid>() {
                eprintln!("{nv}");
                return ExitCode::from(2);
            }
            if let Some(se) = e.downcast_ref::<ServerError>() {
                if let Some(id) = se.approval_request() {
                    waiting_for_approval(se, id, json);
                    return ExitCode::from(EXIT_NEEDS_APPROVAL);
                }
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_a_description() {
        fn walk(c: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for sub in c.get_subcommands() {
                let p = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() {
                    missing.push(p.clone());
                }
                walk(sub, &p, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "arca", &mut missing);
        assert!(missing.is_empty(), "no --help description: {missing:?}");
    }

    #[test]
    fn global_flags_parse_after_subcommands() {
        let cli = Cli::try_parse_from([
            "arca",
            "key",
            "list",
            "--output",
            "json",
            "--server",
            "https://x:1",
        ])
        .unwrap();
        assert_eq!(cli.output, OutputFormat::Json);
        assert_eq!(cli.server.as_deref(), Some("https://x:1"));
    }
}
