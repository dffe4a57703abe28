//! The pipeline behind the commands: load an image into a tree (and staging directory), trace
//! its program, compute the kept set, write the output, verify it. No printing here: progress
//! goes through [`Progress`], results come back as values for `cli` to show.

use crate::archive::compress::Compression;
use crate::archive::Archive;
use crate::deps::closure::Closure;
use crate::digest::Digest;
use crate::image::{ExecSpec, Image, Platform};
use crate::limits::Limits;
use crate::output::{self, WriteOptions, Written};
use crate::report::{
    ImageSide, KeptPath, Phases, ProbeReport, Report, RunReport, VerifyReport, VerifyRound,
};
use crate::rootfs::apply::{FlattenStats, Flattener};
use crate::rootfs::stage::Staging;
use crate::rootfs::{self, FileSource, Kind, Tree};
use crate::sandbox::{self, ExitInfo, HttpProbe, RunOutcome, RunSpec};
use crate::select::{self, Policy, Reason};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Receives progress of long phases. The CLI shows bars on a terminal; tests pass [`NoProgress`].
pub trait Progress {
    /// A phase starts; `total` is its amount of work in bytes when known.
    fn phase(&self, name: &str, total: Option<u64>);
    /// Work done so far in the current phase.
    fn advance(&self, done: u64);
    /// The current phase ended.
    fn finish(&self);
}

pub struct NoProgress;
impl Progress for NoProgress {
    fn phase(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// Which image of which archive.
#[derive(Debug, Clone, Default)]
pub struct Source {
    pub path: PathBuf,
    pub image: Option<String>,
    pub platform: Option<Platform>,
    pub limits: Limits,
}

/// An image loaded into a tree, with its file contents staged on disk when asked for.
pub struct Loaded {
    pub image: Image,
    pub tree: Tree,
    pub staging: Option<Staging>,
    pub stats: FlattenStats,
    pub layers: Vec<LayerInfo>,
    pub archive_bytes: u64,
    /// Non-fatal findings about the input (e.g. the OCI half of a docker save disagrees).
    pub warnings: Vec<String>,
}

/// What `inspect` shows of a layer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerInfo {
    pub digest: Digest,
    pub compression: Compression,
    pub stored_bytes: u64,
    pub unpacked_bytes: u64,
    pub entries: u64,
    pub hidden_bytes: u64,
}

/// Read, verify and flatten every layer of the selected image. With `stage_in`, file contents
/// are written to a fresh staging directory created there.
pub fn load(src: &Source, stage_in: Option<&Path>, progress: &dyn Progress) -> Result<Loaded> {
    let archive_bytes = fs_size(&src.path);
    let archive = Archive::open(&src.path, &src.limits)?;
    let image = archive.select(src.image.as_deref(), src.platform.as_ref())?;
    let staging = match stage_in {
        Some(dir) => Some(
            Staging::create_in(dir)
                .with_context(|| format!("creating a staging directory in `{}`", dir.display()))?,
        ),
        None => None,
    };
    let mut flattener = Flattener::new(staging, &src.limits);
    let total: u64 = image.layers.iter().filter_map(|l| l.size).sum();
    progress.phase("unpacking layers", (total > 0).then_some(total));
    let mut layers = Vec::new();
    let mut done = 0;
    for (i, layer) in image.layers.iter().enumerate() {
        let mut reader = archive.open_layer(layer)?;
        let compression = reader.compression();
        let stats = flattener.apply_layer(i, &mut reader).with_context(|| {
            format!(
                "applying layer {} of {} ({})",
                i + 1,
                image.layers.len(),
                layer.digest
            )
        })?;
        let read = reader.finish()?;
        done += read.compressed_bytes;
        progress.advance(done);
        layers.push(LayerInfo {
            digest: layer.digest.clone(),
            compression,
            stored_bytes: read.compressed_bytes,
            unpacked_bytes: read.uncompressed_bytes,
            entries: stats.entries,
            hidden_bytes: stats.hidden_bytes,
        });
    }
    let (tree, staging, stats) = flattener.finish()?;
    progress.finish();
    Ok(Loaded {
        image,
        tree,
        staging,
        stats,
        layers,
        archive_bytes,
        warnings: archive.warnings(),
    })
}

fn fs_size(p: &Path) -> u64 {
    std::fs::metadata(p)
        .map(|m| if m.is_file() { m.len() } else { 0 })
        .unwrap_or(0)
}

/// Overrides and probes for the traced run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub http_probes: Vec<HttpProbe>,
    pub probe_cmds: Vec<String>,
    pub exec_cmds: Vec<Vec<String>>,
    pub wait: Duration,
    pub ready_timeout: Duration,
    pub timeout: Duration,
    pub limits: crate::sandbox::SandboxLimits,
}

/// The exec spec of `image` with the command-line overrides applied, as `docker run` does:
/// `--entrypoint` resets Cmd unless `--cmd` is also given; `--env` replaces same-named vars.
pub fn exec_spec(image: &Image, o: &RunOptions) -> ExecSpec {
    let mut e = image.exec_spec();
    if let Some(ep) = &o.entrypoint {
        e.entrypoint = ep.clone();
        e.cmd.clear();
    }
    if let Some(cmd) = &o.cmd {
        e.cmd = cmd.clone();
    }
    e.env = merge_env(&e.env, &o.env);
    if let Some(w) = &o.workdir {
        e.workdir = w.clone();
    }
    if let Some(u) = &o.user {
        e.user = u.clone();
    }
    e
}

/// `base` with each `NAME=VALUE` of `extra` replacing the same name or appended.
pub fn merge_env(base: &[String], extra: &[String]) -> Vec<String> {
    let mut env: Vec<String> = base.to_vec();
    for kv in extra {
        let name = kv.split_once('=').map_or(kv.as_str(), |(n, _)| n);
        env.retain(|x| x.split_once('=').map_or(x.as_str(), |(n, _)| n) != name);
        env.push(kv.clone());
    }
    env
}

/// Build the sandbox spec for running `exec` over `lower`.
pub fn run_spec(
    image: &Image,
    tree: &Tree,
    exec: ExecSpec,
    o: &RunOptions,
    lower: &Path,
    scratch: &Path,
) -> RunSpec {
    let explicit: BTreeSet<u16> = o.http_probes.iter().map(|p| p.port).collect();
    let tcp_ports = image
        .exposed_ports()
        .into_iter()
        .filter(|p| p.tcp && !explicit.contains(&p.port))
        .map(|p| p.port)
        .collect();
    RunSpec {
        lower: lower.to_path_buf(),
        exec,
        exec_cmds: o.exec_cmds.clone(),
        http_probes: o.http_probes.clone(),
        tcp_ports,
        probe_cmds: o.probe_cmds.clone(),
        wait: o.wait,
        ready_timeout: o.ready_timeout,
        timeout: o.timeout,
        scratch_parent: scratch.to_path_buf(),
        limits: o.limits,
        owners: tree
            .iter()
            .filter(|(_, e)| e.uid != 0 || e.gid != 0)
            .filter_map(|(p, e)| {
                Some((
                    p.to_vec(),
                    u32::try_from(e.uid).ok()?,
                    u32::try_from(e.gid).ok()?,
                ))
            })
            .collect(),
        stop_signal: image.stop_signal(),
    }
}

/// Everything `slim` needs.
#[derive(Debug, Clone)]
pub struct SlimConfig {
    pub source: Source,
    pub output: PathBuf,
    pub write: WriteOptions,
    pub run: RunOptions,
    pub policy: Policy,
    pub no_run: bool,
    pub verify: Option<VerifyOptions>,
    pub tmp: PathBuf,
}

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub rounds: usize,
    pub ignore_output: bool,
    pub env: Vec<String>,
    pub strict: bool,
}

/// The result of `slim`: the report, and whether the output was written.
pub struct SlimOutcome {
    pub report: Report,
    pub written: bool,
    /// `Some(false)` when `--verify` ran and the runs still disagree.
    pub verified: Option<bool>,
}

/// The main job: `oci-slim IN OUT`.
pub fn slim(cfg: &SlimConfig, progress: &dyn Progress) -> Result<SlimOutcome> {
    let mut phases = Phases::new();
    phases.start("read+flatten+stage");
    let loaded = load(&cfg.source, Some(&cfg.tmp), progress)?;
    let staging = loaded.staging.as_ref().expect("load was asked to stage");
    let tree = &loaded.tree;
    let image = &loaded.image;
    let mut report = Report::new(side_of_tree(
        &cfg.source.path,
        image,
        tree,
        loaded.archive_bytes,
    ));

    let exec = exec_spec(image, &cfg.run);
    let mut observations = Vec::new();
    // The traced run, kept (without its observations) as the reference for `--verify`.
    let mut first_run: Option<RunOutcome> = None;
    if cfg.no_run {
        report.warnings.push("--no-run: nothing was traced; only the static closure of the entrypoint, NSS and the includes is kept".into());
    } else {
        phases.start("trace");
        if exec.argv().is_empty() {
            bail!("the image has no Entrypoint or Cmd to run\nhint: name one with `--entrypoint`/`--cmd`, or keep a static closure with `--no-run` and `--include`");
        }
        progress.phase("tracing the entrypoint", None);
        let spec = run_spec(
            image,
            tree,
            exec.clone(),
            &cfg.run,
            staging.root(),
            &cfg.tmp,
        );
        let mut outcome = sandbox::run(&spec).context("running the image in the sandbox")?;
        progress.finish();
        report.run = run_report(&outcome);
        warn_about_run(&mut report, &outcome, &spec);
        observations = std::mem::take(&mut outcome.observations);
        first_run = Some(outcome);
    }

    phases.start("closure");
    let mut repairs: Vec<(Vec<u8>, Reason)> = Vec::new();
    let mut closure_warnings = Vec::new();
    let mut closure = compute_closure(
        tree,
        staging,
        &exec,
        &image.volumes(),
        &observations,
        &cfg.policy,
        &repairs,
        &mut closure_warnings,
    )?;

    phases.start("write");
    progress.phase("writing the image", None);
    // With --verify, candidates go to a temporary file beside the output; it becomes the
    // output at the end (or is removed, with --strict, when verification fails).
    let candidate = match (&cfg.verify, cfg.no_run) {
        (Some(_), false) => Some(
            tempfile::Builder::new()
                .prefix(".oci-slim-candidate-")
                .suffix(".tar")
                .tempfile_in(parent_dir(&cfg.output))
                .with_context(|| {
                    format!(
                        "creating a temporary file beside `{}`",
                        cfg.output.display()
                    )
                })?
                .into_temp_path(),
        ),
        (Some(_), true) => {
            report
                .warnings
                .push("--verify needs a run: it was skipped with --no-run".into());
            None
        }
        _ => None,
    };
    let target: &Path = candidate.as_deref().unwrap_or(&cfg.output);
    let mut written = write(&loaded, &closure, cfg, target)?;
    progress.finish();

    let mut verified = None;
    if let (Some(v), Some(cand_path)) = (&cfg.verify, &candidate) {
        phases.start("verify");
        let verify_exec = ExecSpec {
            env: merge_env(&exec.env, &v.env),
            ..exec.clone()
        };
        let mut vr = VerifyReport::default();
        // The traced run is the reference unless `--verify-env` asks for other conditions,
        // which the original must then be run under too.
        let original = match first_run.take() {
            Some(o) if v.env.is_empty() => o,
            _ => sandbox::run(&run_spec(
                image,
                tree,
                verify_exec.clone(),
                &cfg.run,
                staging.root(),
                &cfg.tmp,
            ))
            .context("running the original image for verification")?,
        };
        // A probe that failed for the original image too leaves nothing to verify against:
        // matching a broken run proves nothing, so the slim image is not called verified.
        let reference_failures: Vec<String> = original
            .probes
            .iter()
            .filter(|p| !p.ok)
            .map(|p| {
                format!(
                    "probe {} failed for the original image too ({}): fix the run (probes, --wait, --ready-timeout) before verifying",
                    p.name, p.detail
                )
            })
            .collect();
        for round in 1..=v.rounds.max(1) {
            progress.phase(&format!("verifying (round {round})"), None);
            let candidate_src = Source {
                path: cand_path.to_path_buf(),
                image: None,
                platform: None,
                limits: cfg.source.limits.clone(),
            };
            let cand = load(&candidate_src, Some(&cfg.tmp), &NoProgress)
                .context("reading back the slim image for verification")?;
            let cand_root = cand.staging.as_ref().expect("staged").root();
            let spec = run_spec(
                &cand.image,
                &cand.tree,
                verify_exec.clone(),
                &cfg.run,
                cand_root,
                &cfg.tmp,
            );
            let got = match sandbox::run(&spec) {
                Ok(got) => got,
                Err(sandbox::SandboxError::Exec { cmd, errno }) => {
                    // The slim image cannot start its program at all: a disagreement, with
                    // what the kernel would have loaded and the slim image lacks.
                    progress.finish();
                    let mut differences = vec![format!(
                        "the slim image cannot start its program: executing `{cmd}` failed: {errno}"
                    )];
                    // The program as the original image resolves it (relative to the workdir
                    // and PATH as the sandbox does), then its interpreters.
                    let argv = verify_exec.argv();
                    let path_var = verify_exec.env_var("PATH");
                    let workdir = if verify_exec.workdir.is_empty() {
                        "/"
                    } else {
                        verify_exec.workdir.as_str()
                    };
                    let program = argv
                        .first()
                        .map(|a0| sandbox::exec_candidates(a0, path_var))
                        .unwrap_or_default()
                        .into_iter()
                        .map(|c| {
                            if c.starts_with('/') {
                                c
                            } else {
                                format!("{}/{c}", workdir.trim_end_matches('/'))
                            }
                        })
                        .find(|c| tree.resolve(c.as_bytes(), true).path.is_some());
                    let mut chain = Vec::new();
                    if let Some(p) = program {
                        chain.extend(
                            crate::deps::kernel::kernel_loads(tree, staging, p.as_bytes())
                                .into_iter()
                                .map(|k| k.path),
                        );
                        chain.insert(0, p);
                    }
                    for p in chain {
                        if cand.tree.resolve(p.as_bytes(), true).path.is_none()
                            && tree.resolve(p.as_bytes(), true).path.is_some()
                        {
                            differences.push(format!(
                                "missing in the slim image: {p} (removed by --exclude)"
                            ));
                        }
                    }
                    vr.rounds.push(VerifyRound {
                        round,
                        agreed: false,
                        differences,
                        added: Vec::new(),
                    });
                    break;
                }
                Err(e) => return Err(e).context("running the slim image for verification"),
            };
            progress.finish();
            let mut differences = compare_runs(&original, &got, v.ignore_output);
            differences.extend(reference_failures.iter().cloned());
            // Paths the slim run reached for that exist in the original image but not here:
            // failed opens, stats and execs (ENOENT), broken links (ELOOP), all the same.
            let mut missing: Vec<Vec<u8>> = Vec::new();
            for o in got
                .observations
                .iter()
                .filter(|o| !select::runtime_provided(&o.path))
            {
                if cand.tree.resolve(&o.path, true).path.is_none()
                    && tree.resolve(&o.path, true).path.is_some()
                    && !missing.contains(&o.path)
                    && !repairs.iter().any(|(p, _)| p == &o.path)
                {
                    missing.push(o.path.clone());
                }
            }
            let mut added = Vec::new();
            if !missing.is_empty() {
                repairs.extend(
                    missing
                        .iter()
                        .map(|p| (p.clone(), Reason::Repair { round })),
                );
                closure = compute_closure(
                    tree,
                    staging,
                    &exec,
                    &image.volumes(),
                    &observations,
                    &cfg.policy,
                    &repairs,
                    &mut closure_warnings,
                )?;
                for p in &missing {
                    let kept = tree
                        .resolve(p, true)
                        .path
                        .is_some_and(|t| closure.kept.contains_key(&t));
                    let shown = String::from_utf8_lossy(p).into_owned();
                    if kept {
                        added.push(shown);
                    } else {
                        differences.push(format!(
                            "missing in the slim image: {shown} (removed by --exclude)"
                        ));
                    }
                }
            }
            let agreed = differences.is_empty();
            let done = added.is_empty();
            vr.rounds.push(VerifyRound {
                round,
                agreed,
                differences,
                added,
            });
            if done {
                vr.verified = agreed;
                break;
            }
            written = write(&loaded, &closure, cfg, cand_path)?;
        }
        if !vr.verified {
            report
                .warnings
                .push("the slim image did not behave like the original: it is UNVERIFIED (see verify.rounds)".into());
        }
        verified = Some(vr.verified);
        report.verify = Some(vr);
    }
    let strict_fail = matches!((&cfg.verify, verified), (Some(v), Some(false)) if v.strict);
    if let Some(c) = candidate {
        if strict_fail {
            drop(c);
        } else {
            c.persist(&cfg.output).with_context(|| {
                format!("renaming the verified image to `{}`", cfg.output.display())
            })?;
        }
    }

    closure_warnings.sort();
    closure_warnings.dedup();
    report.warnings.extend(closure_warnings);
    report.output = ImageSide {
        path: cfg.output.display().to_string(),
        name: Some(written.name.clone()),
        format: Some("docker-save+oci-layout".into()),
        config_digest: Some(written.config_digest.to_string()),
        manifest_digest: Some(written.manifest_digest.to_string()),
        archive_bytes: written.archive_size,
        entries: closure.kept.len(),
        files: closure
            .kept
            .keys()
            .filter(|p| matches!(tree.get(p).map(|e| &e.kind), Some(Kind::File { .. })))
            .count(),
        file_bytes: closure
            .kept
            .keys()
            .filter_map(|p| tree.get(p))
            .map(|e| e.size())
            .sum(),
    };
    if report.output.archive_bytes > report.input.archive_bytes && report.input.archive_bytes > 0 {
        report.warnings.push(format!(
            "the output archive ({} bytes) is larger than the input archive ({} bytes): the kept files are not fewer than the input's, or the input used a stronger compression",
            report.output.archive_bytes, report.input.archive_bytes
        ));
    }
    report.kept = kept_paths(tree, &closure);
    phases.start("cleanup");
    drop(loaded);
    phases.end();
    report.timings = phases.done.clone();
    report.total_ms = phases.total().as_millis() as u64;
    if strict_fail {
        report.output.path = format!("{} (not written: --strict)", cfg.output.display());
    }
    Ok(SlimOutcome {
        report,
        written: !strict_fail,
        verified,
    })
}

fn parent_dir(p: &Path) -> &Path {
    p.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn write(loaded: &Loaded, closure: &Closure, cfg: &SlimConfig, out: &Path) -> Result<Written> {
    let keep: BTreeSet<Vec<u8>> = closure.kept.keys().cloned().collect();
    let src = loaded.staging.as_ref().expect("staged");
    output::write_image(&loaded.tree, src, &keep, &loaded.image, &cfg.write, out)
        .with_context(|| format!("writing `{}`", out.display()))
}

/// The kept set for a tree: entrypoint, traced paths, repairs, policy, NSS, data rules.
/// The kept set: the selection over the traced observations (with their state directories),
/// the repairs, the policy and the image's volumes.
#[allow(clippy::too_many_arguments)]
pub fn compute_closure(
    tree: &Tree,
    src: &dyn FileSource,
    exec: &ExecSpec,
    volumes: &[String],
    observations: &[crate::trace::Observation],
    policy: &Policy,
    repairs: &[(Vec<u8>, Reason)],
    warnings: &mut Vec<String>,
) -> Result<Closure> {
    let sel = select::select(tree, src, exec, policy, |b| {
        for o in observations {
            select::add_traced(b, &o.path, &o.exe, &o.syscall, o.write);
        }
        let modified: Vec<&[u8]> = observations
            .iter()
            .filter(|o| o.write)
            .map(|o| o.path.as_slice())
            .collect();
        select::add_state(b, volumes, &modified);
        for (p, r) in repairs {
            b.add_path(p, r.clone());
        }
    })?;
    warnings.extend(sel.policy_warnings);
    warnings.extend(
        sel.closure
            .warnings
            .iter()
            .map(|w| format!("{}: {}", w.path, w.message)),
    );
    Ok(sel.closure)
}

fn kept_paths(tree: &Tree, closure: &Closure) -> Vec<KeptPath> {
    closure
        .kept
        .iter()
        .filter_map(|(p, reasons)| {
            let e = tree.get(p)?;
            Some(KeptPath {
                path: rootfs::display(p),
                kind: kind_name(&e.kind),
                size: e.size(),
                reasons: reasons.iter().cloned().collect(),
            })
        })
        .collect()
}

pub fn kind_name(k: &Kind) -> &'static str {
    match k {
        Kind::File { .. } => "file",
        Kind::Dir => "dir",
        Kind::Symlink { .. } => "symlink",
        Kind::CharDev { .. } => "char",
        Kind::BlockDev { .. } => "block",
        Kind::Fifo => "fifo",
    }
}

pub fn side_of_tree(path: &Path, image: &Image, tree: &Tree, archive_bytes: u64) -> ImageSide {
    let (mut files, mut bytes) = (0, 0);
    for (_, e) in tree.iter() {
        if let Kind::File { size } = e.kind {
            files += 1;
            bytes += size;
        }
    }
    ImageSide {
        path: path.display().to_string(),
        name: image.name.clone(),
        format: Some(format!("{:?}", image.format)),
        config_digest: Some(image.config_digest.to_string()),
        manifest_digest: None,
        archive_bytes,
        entries: tree.len().saturating_sub(1),
        files,
        file_bytes: bytes,
    }
}

pub fn exit_text(e: &ExitInfo) -> String {
    match e {
        ExitInfo::Exited(c) => format!("exited {c}"),
        ExitInfo::Signaled(s) => format!("killed by signal {s}"),
        ExitInfo::StoppedByUs => "stopped by oci-slim after the probes".into(),
        ExitInfo::TimedOut => "timed out".into(),
    }
}

/// How the image's users were mapped, in words.
pub fn id_mode_text(m: &sandbox::IdMode) -> String {
    match m {
        sandbox::IdMode::SubidRange { count } => {
            format!("mapped to a subordinate id range of {count} ids (user switches are real)")
        }
        sandbox::IdMode::SingleIdFaked => {
            "single id: uid/gid changes and chown succeed without effect (no /etc/subuid range)"
                .into()
        }
        sandbox::IdMode::RootRange => "run as root: image ids mapped to a private id range".into(),
    }
}

fn run_report(o: &RunOutcome) -> RunReport {
    RunReport {
        traced: true,
        exit: Some(exit_text(&o.exit)),
        id_mode: Some(id_mode_text(&o.id_mode)),
        probes: o
            .probes
            .iter()
            .map(|p| ProbeReport {
                name: p.name.clone(),
                ok: p.ok,
                detail: p.detail.clone(),
            })
            .collect(),
        exec_results: o.exec_results.clone(),
        observations: o.observations.len(),
        duration_ms: o.duration.as_millis() as u64,
        stderr_tail: tail_lines(&o.stderr, 20),
    }
}

fn warn_about_run(report: &mut Report, o: &RunOutcome, spec: &RunSpec) {
    report.warnings.extend(o.warnings.iter().cloned());
    for p in o.probes.iter().filter(|p| !p.ok) {
        report
            .warnings
            .push(format!("probe {} failed: {}", p.name, p.detail));
    }
    // A default probe passes on a TCP connect, but a server error on `GET /` deserves a word.
    for p in o.probes.iter().filter(|p| p.ok) {
        let status = p
            .detail
            .strip_prefix("connected (HTTP: HTTP/")
            .and_then(|r| r.split_whitespace().nth(1))
            .and_then(|c| c.parse::<u16>().ok());
        if let Some(code @ 500..=599) = status {
            report.warnings.push(format!(
                "{} answered GET / with HTTP {code}: the app may be failing (name a path that must succeed with --http-probe PORT:/PATH)",
                p.name
            ));
        }
    }
    match o.exit {
        ExitInfo::Exited(0) | ExitInfo::StoppedByUs => {}
        ref e => report.warnings.push(format!(
            "the app {}; files it would need later may be missing",
            exit_text(e)
        )),
    }
    if spec.tcp_ports.is_empty() && spec.http_probes.is_empty() && spec.probe_cmds.is_empty() {
        return;
    }
    for port in &spec.tcp_ports {
        if !o
            .probes
            .iter()
            .any(|p| p.ok && p.name.contains(&format!(":{port}")))
        {
            report.warnings.push(format!(
                "exposed port {port} was never exercised successfully"
            ));
        }
    }
}

fn tail_lines(data: &[u8], n: usize) -> String {
    let s = String::from_utf8_lossy(data);
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Differences between the original run and a verify run, one readable line each.
pub fn compare_runs(want: &RunOutcome, got: &RunOutcome, ignore_output: bool) -> Vec<String> {
    let mut d = Vec::new();
    if exit_text(&want.exit) != exit_text(&got.exit) {
        d.push(format!(
            "exit: expected {}, got {}",
            exit_text(&want.exit),
            exit_text(&got.exit)
        ));
    }
    let batch = matches!(want.exit, ExitInfo::Exited(_));
    if batch && !ignore_output && want.stdout != got.stdout {
        d.push(format!(
            "stdout differs: expected {:?}, got {:?}",
            tail_lines(&want.stdout, 3),
            tail_lines(&got.stdout, 3)
        ));
    }
    let got_by_name: BTreeMap<&str, _> = got.probes.iter().map(|p| (p.name.as_str(), p)).collect();
    for p in &want.probes {
        match got_by_name.get(p.name.as_str()) {
            Some(g) if g.ok == p.ok && g.detail == p.detail => {}
            Some(g) => d.push(format!(
                "probe {}: expected {}, got {}",
                p.name, p.detail, g.detail
            )),
            None => d.push(format!(
                "probe {}: expected {}, got no result",
                p.name, p.detail
            )),
        }
    }
    for ((cmd, w), (_, g)) in want.exec_results.iter().zip(&got.exec_results) {
        if w != g {
            d.push(format!(
                "--exec `{}`: expected exit {w}, got {g}",
                cmd.join(" ")
            ));
        }
    }
    if !d.is_empty() {
        let tail = tail_lines(&got.stderr, 10);
        if !tail.is_empty() {
            d.push(format!("slim app stderr (last lines):\n{tail}"));
        }
    }
    d
}

/// Check a platform string `os/arch[/variant]`.
pub fn parse_platform(s: &str) -> Result<Platform> {
    let parts: Vec<&str> = s.split('/').collect();
    match parts[..] {
        [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: None,
        }),
        [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => Ok(Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: Some(v.into()),
        }),
        _ => {
            bail!("invalid platform `{s}`: expected OS/ARCH or OS/ARCH/VARIANT, e.g. `linux/amd64`")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::{IdMode, ProbeResult};

    #[test]
    fn runtime_provided_paths() {
        for p in ["/dev/null", "/proc/self/maps", "/sys", "dev"] {
            assert!(select::runtime_provided(p.as_bytes()), "{p}");
        }
        for p in ["/devices", "/etc/passwd", "/usr/dev/x", "/procfs"] {
            assert!(!select::runtime_provided(p.as_bytes()), "{p}");
        }
    }

    #[test]
    fn env_overrides_replace_by_name() {
        let base = vec!["PATH=/bin".to_string(), "A=1".into(), "B=2".into()];
        let got = merge_env(&base, &["A=9".into(), "C=3".into()]);
        assert_eq!(got, ["PATH=/bin", "B=2", "A=9", "C=3"]);
    }

    fn outcome(exit: ExitInfo, stdout: &str, probe: Option<(&str, bool, &str)>) -> RunOutcome {
        RunOutcome {
            observations: vec![],
            exit,
            probes: probe
                .map(|(n, ok, d)| ProbeResult {
                    name: n.into(),
                    ok,
                    detail: d.into(),
                })
                .into_iter()
                .collect(),
            exec_results: vec![],
            stdout: stdout.as_bytes().to_vec(),
            stderr: b"boom\n".to_vec(),
            id_mode: IdMode::RootRange,
            duration: Duration::ZERO,
            warnings: vec![],
        }
    }

    #[test]
    fn server_errors_behind_a_passing_default_probe_warn() {
        let spec = RunSpec {
            lower: "/x".into(),
            exec: ExecSpec::default(),
            exec_cmds: vec![],
            http_probes: vec![],
            tcp_ports: vec![8080],
            probe_cmds: vec![],
            wait: Duration::ZERO,
            ready_timeout: Duration::ZERO,
            timeout: Duration::ZERO,
            scratch_parent: "/tmp".into(),
            limits: Default::default(),
            owners: vec![],
            stop_signal: None,
        };
        let warnings = |detail: &str| {
            let mut r = Report::new(Default::default());
            let o = outcome(
                ExitInfo::StoppedByUs,
                "",
                Some(("tcp://127.0.0.1:8080", true, detail)),
            );
            warn_about_run(&mut r, &o, &spec);
            r.warnings
        };
        let w = warnings("connected (HTTP: HTTP/1.1 500 Internal Server Error)");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("HTTP 500"), "{w:?}");
        // A 404 on `/` is normal for APIs; no answer at all is a plain TCP service.
        assert!(warnings("connected (HTTP: HTTP/1.1 404 Not Found)").is_empty());
        assert!(warnings("connected (HTTP: no HTTP answer)").is_empty());
    }

    #[test]
    fn compare_runs_table() {
        let a = outcome(ExitInfo::Exited(0), "ok\n", None);
        assert!(compare_runs(&a, &outcome(ExitInfo::Exited(0), "ok\n", None), false).is_empty());
        let d = compare_runs(&a, &outcome(ExitInfo::Exited(1), "", None), false);
        assert!(
            d[0].starts_with("exit: expected exited 0, got exited 1"),
            "{d:?}"
        );
        assert!(d.iter().any(|l| l.starts_with("stdout differs")));
        assert!(d.last().unwrap().contains("boom"));
        assert!(compare_runs(&a, &outcome(ExitInfo::Exited(0), "other", None), true).is_empty());
        let s = outcome(
            ExitInfo::StoppedByUs,
            "",
            Some(("http://127.0.0.1:80/", true, "HTTP/1.1 200 OK")),
        );
        let f = outcome(
            ExitInfo::StoppedByUs,
            "",
            Some(("http://127.0.0.1:80/", false, "connect refused")),
        );
        let d = compare_runs(&s, &f, false);
        assert_eq!(
            d[0],
            "probe http://127.0.0.1:80/: expected HTTP/1.1 200 OK, got connect refused"
        );
        // Servers' stdout is not compared (logs are not deterministic).
        let s2 = outcome(
            ExitInfo::StoppedByUs,
            "log line",
            Some(("http://127.0.0.1:80/", true, "HTTP/1.1 200 OK")),
        );
        assert!(compare_runs(&s, &s2, false).is_empty());
    }

    #[test]
    fn platform_strings() {
        assert_eq!(
            parse_platform("linux/arm64/v8").unwrap().variant.as_deref(),
            Some("v8")
        );
        assert_eq!(parse_platform("linux/amd64").unwrap().architecture, "amd64");
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d"] {
            assert!(parse_platform(bad).is_err(), "{bad}");
        }
    }
}
