//! The commands: turn parsed arguments into library configs, run, print.

use super::args::{
    CompressionArg, FlattenArgs, GlobalArgs, InputArgs, InspectArgs, OutputArgs, RunArgs, SlimArgs,
    TraceArgs,
};
use super::progress::Bars;
use crate::archive::compress::Compression;
use crate::limits::Limits;
use crate::output::WriteOptions;
use crate::report::{human_bytes, sanitize, summary};
use crate::rootfs::{self, Kind};
use crate::sandbox::HttpProbe;
use crate::select::{self, Policy};
use crate::slim::{self, Progress, RunOptions, SlimConfig, Source, VerifyOptions};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Exit status when `--verify` found a difference.
pub const EXIT_UNVERIFIED: u8 = 3;

fn source(input: &Path, a: &InputArgs) -> Result<Source> {
    Ok(Source {
        path: input.to_path_buf(),
        image: a.image.clone(),
        platform: a
            .platform
            .as_deref()
            .map(slim::parse_platform)
            .transpose()?,
        limits: Limits::default(),
    })
}

fn write_options(a: &OutputArgs, comment: String) -> WriteOptions {
    let compression = match a.compression {
        CompressionArg::None => Compression::None,
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::Zstd => {
            eprintln!("warning: zstd layers cannot be read by Docker 20.10 or umoci; use `--compression gzip` for them");
            Compression::Zstd
        }
    };
    WriteOptions {
        compression,
        tag: a.tag.clone(),
        history_comment: comment,
        created_by: format!("oci-slim {}", env!("CARGO_PKG_VERSION")),
    }
}

/// Where temporary files go (staging, overlay scratch): `$TMPDIR` when set; otherwise
/// `/dev/shm` when it is a writable tmpfs with room for four times the input archive (unpacking
/// to memory is several times faster than to disk, and removing thousands of files from a disk
/// mounted with `discard` can take longer than the whole rest of the run); else `/tmp`.
fn tmp_dir(input: &Path) -> PathBuf {
    if let Some(t) = std::env::var_os("TMPDIR").filter(|t| !t.is_empty()) {
        return PathBuf::from(t);
    }
    let need = std::fs::metadata(input)
        .map(|m| m.len())
        .unwrap_or(0)
        .saturating_mul(4)
        .max(1 << 30);
    let shm = Path::new("/dev/shm");
    let roomy = nix::sys::statvfs::statvfs(shm)
        .map(|v| v.blocks_available().saturating_mul(v.fragment_size()) >= need)
        .unwrap_or(false);
    if roomy
        && nix::unistd::access(
            shm,
            nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
        )
        .is_ok()
    {
        return shm.to_path_buf();
    }
    std::env::temp_dir()
}

/// Parse a command given as a JSON array (`["a","b"]`) or as whitespace-separated words.
pub fn parse_command(s: &str) -> Result<Vec<String>> {
    let t = s.trim();
    if t.starts_with('[') {
        return serde_json::from_str(t).with_context(|| format!("invalid JSON command `{s}`"));
    }
    split_words(t).with_context(|| format!("invalid command `{s}`"))
}

/// Split a command line into words as a POSIX shell does, without expansions: whitespace
/// separates words, '...' keeps everything literally, "..." keeps everything but `\"`, `\\`,
/// and a backslash outside quotes escapes the next character.
fn split_words(s: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => bail!("unterminated single quote"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => bail!("unterminated double quote"),
                        },
                        Some(c) => cur.push(c),
                        None => bail!("unterminated double quote"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => cur.push(c),
                    None => bail!("a trailing backslash escapes nothing"),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

fn parse_http_probe(s: &str) -> Result<HttpProbe> {
    let (port, path) = match s.split_once(':') {
        Some((p, path)) => (p, path.to_owned()),
        None => (s, "/".to_owned()),
    };
    let port: u16 = port.parse().with_context(|| {
        format!("invalid `--http-probe {s}`: expected PORT or PORT:PATH, e.g. `8080:/health`")
    })?;
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    Ok(HttpProbe { port, path })
}

fn secs(v: f64, what: &str) -> Result<Duration> {
    if !(v.is_finite() && v >= 0.0) {
        bail!("invalid `--{what} {v}`: expected a number of seconds");
    }
    Ok(Duration::from_secs_f64(v))
}

fn run_options(a: &RunArgs) -> Result<RunOptions> {
    for kv in &a.env {
        if !kv.contains('=') || kv.starts_with('=') {
            bail!("invalid `--env {kv}`: expected NAME=VALUE");
        }
    }
    Ok(RunOptions {
        entrypoint: a.entrypoint.as_deref().map(parse_command).transpose()?,
        cmd: a.cmd.as_deref().map(parse_command).transpose()?,
        env: a.env.clone(),
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        http_probes: a
            .http_probe
            .iter()
            .map(|s| parse_http_probe(s))
            .collect::<Result<_>>()?,
        probe_cmds: a.probe.clone(),
        exec_cmds: a
            .exec
            .iter()
            .map(|s| parse_command(s))
            .collect::<Result<_>>()?,
        wait: secs(a.wait, "wait")?,
        ready_timeout: secs(a.ready_timeout, "ready-timeout")?,
        timeout: secs(a.timeout, "timeout")?,
        limits: crate::sandbox::SandboxLimits {
            disk_bytes: a.limit_disk,
            memory_bytes: a.limit_memory,
            processes: a.limit_procs,
        },
    })
}

fn refuse_same_path(input: &Path, output: &Path) -> Result<()> {
    if let (Ok(a), Ok(b)) = (std::fs::canonicalize(input), std::fs::canonicalize(output)) {
        if a == b {
            bail!(
                "the output `{}` is the input: choose another output path",
                output.display()
            );
        }
    }
    Ok(())
}

pub fn slim_cmd(a: &SlimArgs, g: &GlobalArgs) -> Result<u8> {
    let (Some(input), Some(output)) = (&a.input, &a.output) else {
        bail!("expected `oci-slim IN OUT`; see `oci-slim --help`");
    };
    refuse_same_path(input, output)?;
    let mut includes = a.policy.include.clone();
    for f in &a.policy.include_from {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("reading `--include-from {}`", f.display()))?;
        includes.extend(select::read_include_file(&text));
    }
    let policy = Policy {
        includes,
        excludes: a.policy.exclude.clone(),
        include_pkgs: a.policy.include_pkg.clone(),
        include_exes: a.policy.include_exe.clone(),
        keep_shell: a.policy.keep_shell,
    };
    let cfg = SlimConfig {
        source: source(input, &a.input_args)?,
        output: output.clone(),
        write: write_options(&a.output_args, "slimmed by oci-slim".into()),
        run: run_options(&a.run)?,
        policy,
        no_run: a.policy.no_run,
        verify: a.verify.verify.then(|| VerifyOptions {
            rounds: a.verify.verify_rounds,
            ignore_output: a.verify.verify_ignore_output,
            env: a.verify.verify_env.clone(),
            strict: a.verify.strict,
        }),
        tmp: tmp_dir(input),
    };
    let bars = Bars::new(g.quiet);
    let outcome = slim::slim(&cfg, &bars)?;
    if let Some(path) = &a.report {
        write_report(path, &outcome.report.to_json())?;
    }
    if !g.quiet {
        eprint!("{}", summary(&outcome.report, 10, a.report.is_some()));
    }
    if outcome.verified == Some(false) {
        if let Some(v) = &outcome.report.verify {
            for r in &v.rounds {
                for d in &r.differences {
                    let mut lines = d.lines();
                    eprintln!(
                        "verify round {}: {}",
                        r.round,
                        sanitize(lines.next().unwrap_or(""), 2000)
                    );
                    for l in lines {
                        eprintln!("    {}", sanitize(l, 2000));
                    }
                }
            }
        }
        if !outcome.written {
            eprintln!("error: verification failed and `--strict` is set: nothing was written");
        } else {
            eprintln!("error: the slim image is UNVERIFIED: it was written, but it did not behave like the original");
        }
        return Ok(EXIT_UNVERIFIED);
    }
    Ok(0)
}

fn write_report(path: &Path, json: &str) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating the report in `{}`", dir.display()))?;
    std::io::Write::write_all(&mut tmp, json.as_bytes()).context("writing the report")?;
    tmp.persist(path)
        .with_context(|| format!("writing the report `{}`", path.display()))?;
    Ok(())
}

pub fn flatten_cmd(a: &FlattenArgs, g: &GlobalArgs) -> Result<u8> {
    refuse_same_path(&a.input, &a.output)?;
    let src = source(&a.input, &a.input_args)?;
    let bars = Bars::new(g.quiet);
    let loaded = slim::load(&src, Some(&tmp_dir(&a.input)), &bars)?;
    let keep: BTreeSet<Vec<u8>> = loaded
        .tree
        .iter()
        .map(|(p, _)| p.clone())
        .filter(|p| !p.is_empty())
        .collect();
    let opts = write_options(
        &a.output_args,
        format!("flattened {} layers with oci-slim", loaded.layers.len()),
    );
    let staging = loaded.staging.as_ref().expect("staged");
    let w = crate::output::write_image(
        &loaded.tree,
        staging,
        &keep,
        &loaded.image,
        &opts,
        &a.output,
    )
    .with_context(|| format!("writing `{}`", a.output.display()))?;
    if !g.quiet {
        eprintln!(
            "oci-slim: flattened {} layer(s) into one: {} entries, {} of files, archive {} → {} ({})",
            loaded.layers.len(),
            w.entries,
            human_bytes(w.file_bytes),
            human_bytes(loaded.archive_bytes),
            human_bytes(w.archive_size),
            sanitize(&w.name, 200)
        );
    }
    Ok(0)
}

#[derive(serde::Serialize)]
struct InspectOut<'a> {
    path: String,
    format: String,
    name: Option<&'a str>,
    platform: String,
    config_digest: String,
    layers: &'a [slim::LayerInfo],
    config: &'a crate::image::ExecSpec,
    exposed_ports: Vec<String>,
    entries: usize,
    files: usize,
    file_bytes: u64,
    hidden_bytes: u64,
    largest: Vec<(String, u64)>,
}

/// Write command output to stdout at once; a closed pipe surfaces as an error that `main`
/// treats as success.
fn write_stdout(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .context("writing to stdout")?;
    out.flush().context("writing to stdout")?;
    Ok(())
}

pub fn inspect_cmd(a: &InspectArgs, _g: &GlobalArgs) -> Result<u8> {
    let mut text = String::new();
    let src = source(&a.input, &a.input_args)?;
    let loaded = slim::load(&src, None, &slim::NoProgress)?;
    let exec = loaded.image.exec_spec();
    let mut files: Vec<(u64, &Vec<u8>)> = loaded
        .tree
        .iter()
        .filter_map(|(p, e)| match e.kind {
            Kind::File { size } => Some((size, p)),
            _ => None,
        })
        .collect();
    files.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(y.1)));
    let out = InspectOut {
        path: a.input.display().to_string(),
        format: format!("{:?}", loaded.image.format),
        name: loaded.image.name.as_deref(),
        platform: loaded.image.platform.to_string(),
        config_digest: loaded.image.config_digest.to_string(),
        layers: &loaded.layers,
        config: &exec,
        exposed_ports: loaded
            .image
            .exposed_ports()
            .iter()
            .map(|p| format!("{}/{}", p.port, if p.tcp { "tcp" } else { "udp" }))
            .collect(),
        entries: loaded.tree.len().saturating_sub(1),
        files: files.len(),
        file_bytes: files.iter().map(|f| f.0).sum(),
        hidden_bytes: loaded.layers.iter().map(|l| l.hidden_bytes).sum(),
        largest: files
            .iter()
            .take(a.top)
            .map(|(s, p)| (rootfs::display(p), *s))
            .collect(),
    };
    if a.json {
        writeln!(text, "{}", serde_json::to_string_pretty(&out)?)?;
        write_stdout(&text)?;
        return Ok(0);
    }
    let s = |x: &str| sanitize(x, 300);
    writeln!(text, "image:     {}", s(out.name.unwrap_or("(unnamed)")))?;
    writeln!(text, "format:    {}", out.format)?;
    writeln!(text, "platform:  {}", s(&out.platform))?;
    writeln!(text, "config:    {}", out.config_digest)?;
    writeln!(text, "layers:    {}", out.layers.len())?;
    for (i, l) in out.layers.iter().enumerate() {
        writeln!(
            text,
            "  {:>2}  {}  {:>5}  {:>9} stored  {:>9} unpacked  {:>7} entries  {:>9} hidden",
            i + 1,
            l.digest,
            format!("{:?}", l.compression).to_lowercase(),
            human_bytes(l.stored_bytes),
            human_bytes(l.unpacked_bytes),
            l.entries,
            human_bytes(l.hidden_bytes)
        )?;
    }
    writeln!(text, "entrypoint: {}", s(&format!("{:?}", exec.entrypoint)))?;
    writeln!(text, "cmd:        {}", s(&format!("{:?}", exec.cmd)))?;
    writeln!(text, "workdir:    {}", s(&exec.workdir))?;
    writeln!(text, "user:       {}", s(&exec.user))?;
    writeln!(text, "ports:      {}", out.exposed_ports.join(" "))?;
    writeln!(text, "env:")?;
    for e in &exec.env {
        writeln!(text, "  {}", s(e))?;
    }
    writeln!(
        text,
        "flattened: {} entries, {} files, {} of files; {} hidden by later layers",
        out.entries,
        out.files,
        human_bytes(out.file_bytes),
        human_bytes(out.hidden_bytes)
    )?;
    writeln!(text, "largest files:")?;
    for (p, n) in &out.largest {
        writeln!(text, "  {:>9}  {}", human_bytes(*n), s(p))?;
    }
    write_stdout(&text)?;
    Ok(0)
}

pub fn trace_cmd(a: &TraceArgs, g: &GlobalArgs) -> Result<u8> {
    let mut text = String::new();
    let src = source(&a.input, &a.input_args)?;
    let tmp = tmp_dir(&a.input);
    let bars = Bars::new(g.quiet);
    let loaded = slim::load(&src, Some(&tmp), &bars)?;
    let opts = run_options(&a.run)?;
    let exec = slim::exec_spec(&loaded.image, &opts);
    let staging = loaded.staging.as_ref().expect("staged");
    let spec = slim::run_spec(
        &loaded.image,
        &loaded.tree,
        exec,
        &opts,
        staging.root(),
        &tmp,
    );
    bars.phase("tracing the entrypoint", None);
    let outcome = crate::sandbox::run(&spec).context("running the image in the sandbox")?;
    bars.finish();
    // Group by executable: exe → path → syscalls. Each exec also lists what the kernel
    // loaded for it (a `#!` interpreter, PT_INTERP), which no syscall shows.
    let mut by_exe: BTreeMap<String, BTreeMap<Vec<u8>, BTreeSet<String>>> = BTreeMap::new();
    for o in &outcome.observations {
        let exe = if o.exe.is_empty() {
            "(sandbox init)".to_owned()
        } else {
            o.exe.clone()
        };
        by_exe
            .entry(exe)
            .or_default()
            .entry(o.path.clone())
            .or_default()
            .insert(o.syscall.clone());
        if o.syscall.starts_with("execve") {
            let exe = String::from_utf8_lossy(&o.path).into_owned();
            for k in crate::deps::kernel::kernel_loads(&loaded.tree, staging, &o.path) {
                by_exe
                    .entry(exe.clone())
                    .or_default()
                    .entry(k.path.into_bytes())
                    .or_default()
                    .insert(format!("kernel:{}", k.how));
            }
        }
    }
    if a.json {
        let exes: BTreeMap<&str, Vec<serde_json::Value>> = by_exe
            .iter()
            .map(|(exe, paths)| {
                let list = paths
                    .iter()
                    .map(|(p, sc)| {
                        serde_json::json!({
                            "path": String::from_utf8_lossy(p),
                            "syscalls": sc,
                            "in_image": loaded.tree.resolve(p, true).path.is_some(),
                        })
                    })
                    .collect();
                (exe.as_str(), list)
            })
            .collect();
        let v = serde_json::json!({
            "exit": slim::exit_text(&outcome.exit),
            "id_mode": slim::id_mode_text(&outcome.id_mode),
            "probes": outcome.probes.iter().map(|p| serde_json::json!({"name": p.name, "ok": p.ok, "detail": p.detail})).collect::<Vec<_>>(),
            "exec_results": outcome.exec_results,
            "observations": outcome.observations.len(),
            "executables": exes,
        });
        writeln!(text, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        for (exe, paths) in &by_exe {
            writeln!(text, "{}", sanitize(exe, 300))?;
            for (p, sc) in paths {
                let mark = if loaded.tree.resolve(p, true).path.is_some() {
                    ' '
                } else {
                    '-'
                };
                let sc: Vec<&str> = sc.iter().map(String::as_str).collect();
                writeln!(
                    text,
                    "  {mark} {}  ({})",
                    sanitize(&String::from_utf8_lossy(p), 300),
                    sc.join(",")
                )?;
            }
        }
        writeln!(text, "exit: {}", slim::exit_text(&outcome.exit))?;
        writeln!(text, "users: {}", slim::id_mode_text(&outcome.id_mode))?;
        for p in &outcome.probes {
            writeln!(
                text,
                "probe {}: {} ({})",
                sanitize(&p.name, 100),
                if p.ok { "ok" } else { "FAILED" },
                sanitize(&p.detail, 200)
            )?;
        }
        writeln!(text, "(`-` marks paths that do not exist in the image)")?;
    }
    write_stdout(&text)?;
    Ok(0)
}
