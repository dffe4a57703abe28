//! clap argument structs. They stay in `cli`: the library takes validated configs, never these.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const ABOUT: &str = "Make container images small without a Docker daemon";

const LONG_ABOUT: &str = "\
Make container images small without a Docker daemon.

oci-slim reads a `docker save` tarball or an OCI image-layout tarball, flattens its layers,
runs the image's entrypoint under a seccomp-filtered ptrace inside an unprivileged user
namespace, records every file the program touches, adds what it needs without touching it
during the run (ELF libraries and interpreter, glibc NSS modules and their config, symlink
chains, shebang interpreters, CA bundle, time zone), and writes a single-layer image that
`docker load`, `podman load` and `skopeo` accept. The image's config (entrypoint, cmd, env,
user, workdir, ports, volumes, labels) is kept unchanged.

No daemon and no root are needed. Users: when /etc/subuid gives you a range and newuidmap is
installed, the sandbox maps the image's users to it, so programs that switch users (nginx
workers, postgres) really do; otherwise uid changes and chown calls succeed without effect
(the report says which one happened). As root, a private high id range is used.";

const AFTER_HELP: &str = "\
Examples:
  oci-slim nginx.tar nginx-slim.tar                 trace until port 80 answers, then slim
  oci-slim app.tar slim.tar --http-probe 8000:/health --wait 2
  oci-slim redis.tar slim.tar --probe 'redis-cli -p 6379 ping'
  oci-slim tool.tar slim.tar --exec 'mytool --version' --keep-shell
  oci-slim arm64.tar slim.tar --no-run --include /usr/share/app
  oci-slim in.tar out.tar --report report.json --verify
  oci-slim inspect in.tar                           layers, config, largest files
  oci-slim flatten in.tar flat.tar                  squash all layers into one
  oci-slim trace in.tar --json                      what the program touches

Exit status: 0 on success, 1 on error, 2 on usage errors, 3 when --verify found a
difference between the original and the slim image.";

#[derive(Debug, Parser)]
#[command(name = "oci-slim", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub slim: SlimArgs,

    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Squash all layers of an image into one (no run, nothing removed)
    Flatten(FlattenArgs),
    /// Show an image's format, platform, layers, config and largest files
    Inspect(InspectArgs),
    /// Run the image's program in the sandbox and list the files it touches
    Trace(TraceArgs),
}

#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Do not show progress bars or the summary
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Input")]
pub struct InputArgs {
    /// Image to use when the archive holds several (e.g. `nginx:latest`)
    #[arg(long, value_name = "NAME:TAG")]
    pub image: Option<String>,
    /// Platform to select from a multi-platform index (default: this machine's)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
}

#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Name of the output image (default: the input's name, or `oci-slim:latest`)
    #[arg(short = 't', long = "tag", value_name = "NAME:TAG")]
    pub tag: Option<String>,
    /// Layer compression (zstd cannot be read by Docker 20.10 or umoci)
    #[arg(long, value_enum, default_value_t = CompressionArg::Gzip)]
    pub compression: CompressionArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum CompressionArg {
    None,
    #[default]
    Gzip,
    Zstd,
}

#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Run")]
pub struct RunArgs {
    /// Override the image's Entrypoint: a JSON array, or a command line split as a shell does
    /// (quotes and backslashes, no expansions), e.g. `--entrypoint '/bin/sh -c "run --fast"'`
    #[arg(long, value_name = "CMD", allow_hyphen_values = true)]
    pub entrypoint: Option<String>,
    /// Override the image's Cmd (a JSON array or a command line, split like `--entrypoint`)
    #[arg(long, value_name = "CMD", allow_hyphen_values = true)]
    pub cmd: Option<String>,
    /// Add or replace an environment variable for the run (repeatable)
    #[arg(long, value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Override the image's WorkingDir
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Override the image's User (`name`, `uid`, `uid:gid`)
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Probe `http://127.0.0.1:PORT/PATH` in the sandbox once the app listens (repeatable).
    /// Default: GET / on every exposed tcp port, falling back to a TCP connect
    #[arg(long = "http-probe", value_name = "PORT[:PATH]")]
    pub http_probe: Vec<String>,
    /// A host command run inside the sandbox's network namespace once the app is ready;
    /// it must exit 0 (repeatable), e.g. `redis-cli -p 6379 ping`
    #[arg(long, value_name = "CMD", allow_hyphen_values = true)]
    pub probe: Vec<String>,
    /// A command run inside the image's root (traced) once the app is ready (repeatable; a JSON
    /// array or a command line, split like `--entrypoint`)
    #[arg(long, value_name = "CMD", allow_hyphen_values = true)]
    pub exec: Vec<String>,
    /// Seconds to keep the app running after the probes
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub wait: f64,
    /// Seconds to wait for exposed ports to accept connections
    #[arg(long = "ready-timeout", value_name = "SECONDS", default_value_t = 30.0)]
    pub ready_timeout: f64,
    /// Hard limit on the whole run, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 120.0)]
    pub timeout: f64,
    /// Room for everything the run writes to its root (a tmpfs in memory, not the host disk);
    /// beyond it writes fail with ENOSPC. Suffixes K, M, G
    #[arg(long = "limit-disk", value_name = "SIZE", default_value = "2G", value_parser = parse_size)]
    pub limit_disk: u64,
    /// Data size limit (RLIMIT_DATA: heap and private writable memory) of each sandboxed
    /// process; beyond it allocations fail. Suffixes K, M, G
    #[arg(long = "limit-memory", value_name = "SIZE", default_value = "8G", value_parser = parse_size)]
    pub limit_memory: u64,
    /// Most processes and threads in the sandbox (RLIMIT_NPROC); a fork bomb stops there
    #[arg(long = "limit-procs", value_name = "N", default_value_t = 4096,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub limit_procs: u64,
}

/// A byte size: a number with an optional K, M, G or T suffix (powers of 1024; `B`, `iB`
/// allowed), e.g. `512M`, `2G`, `1.5GiB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, shift) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 10),
        Some('M') => (&t[..t.len() - 1], 20),
        Some('G') => (&t[..t.len() - 1], 30),
        Some('T') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let v: f64 = num
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v > 0.0)
        .ok_or_else(|| format!("`{s}` is not a size (examples: 512M, 2G, 1048576)"))?;
    let bytes = v * (1u64 << shift) as f64;
    if bytes >= u64::MAX as f64 {
        return Err(format!("`{s}` is too large"));
    }
    Ok(bytes as u64)
}

#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "What to keep")]
pub struct PolicyArgs {
    /// Keep a path or glob; a directory brings its whole tree (repeatable)
    #[arg(long, value_name = "PATH|GLOB")]
    pub include: Vec<String>,
    /// Read --include rules from a file, one per line (`#` comments)
    #[arg(long = "include-from", value_name = "FILE")]
    pub include_from: Vec<PathBuf>,
    /// Drop paths matching a glob, even when traced or needed (repeatable)
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Keep every file of a dpkg or apk package, with its closure (repeatable)
    #[arg(long = "include-pkg", value_name = "NAME")]
    pub include_pkg: Vec<String>,
    /// Keep an executable (path, or name looked up in the image's PATH) with its closure
    #[arg(long = "include-exe", value_name = "PATH")]
    pub include_exe: Vec<String>,
    /// Keep /bin/sh with its closure
    #[arg(long = "keep-shell")]
    pub keep_shell: bool,
    /// Do not run the image: keep the entrypoint closure, NSS and the includes (static mode)
    #[arg(long = "no-run")]
    pub no_run: bool,
}

#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Verify")]
pub struct VerifyArgs {
    /// Run the slim image with the same probes and compare; add back what it misses
    #[arg(long)]
    pub verify: bool,
    /// Most verify-and-repair rounds
    #[arg(long = "verify-rounds", value_name = "N", default_value_t = 3)]
    pub verify_rounds: usize,
    /// Do not compare the stdout of batch jobs
    #[arg(long = "verify-ignore-output")]
    pub verify_ignore_output: bool,
    /// Extra environment for verify runs only (repeatable)
    #[arg(long = "verify-env", value_name = "NAME=VALUE")]
    pub verify_env: Vec<String>,
    /// Write nothing unless verification succeeds
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct SlimArgs {
    /// Input image: a `docker save` tarball, or an OCI image layout (tarball or directory)
    #[arg(value_name = "IN", required = true)]
    pub input: Option<PathBuf>,
    /// Output image tarball (docker-save and OCI layout in one)
    #[arg(value_name = "OUT", required = true)]
    pub output: Option<PathBuf>,
    /// Write a JSON report: every kept path with its reasons, probes, timings
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub input_args: InputArgs,
    #[command(flatten)]
    pub output_args: OutputArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub verify: VerifyArgs,
}

#[derive(Debug, Args)]
pub struct FlattenArgs {
    /// Input image (docker-save or OCI layout, tarball or directory)
    pub input: PathBuf,
    /// Output image tarball
    pub output: PathBuf,
    #[command(flatten)]
    pub input_args: InputArgs,
    #[command(flatten)]
    pub output_args: OutputArgs,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Input image (docker-save or OCI layout, tarball or directory)
    pub input: PathBuf,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
    /// How many of the largest files to list
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    #[command(flatten)]
    pub input_args: InputArgs,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Input image (docker-save or OCI layout, tarball or directory)
    pub input: PathBuf,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub input_args: InputArgs,
    #[command(flatten)]
    pub run: RunArgs,
}
