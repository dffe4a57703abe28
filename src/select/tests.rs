use super::*;
use crate::deps::tests::{lib, Fx};

fn kept(c: &Closure) -> Vec<String> {
    c.kept
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}

fn files(c: &Closure, fx: &Fx) -> Vec<String> {
    c.kept
        .keys()
        .filter(|k| !fx.tree.get(k).is_some_and(|e| e.is_dir()))
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

fn docs() -> Fx {
    let mut fx = Fx::new();
    fx.merged_usr();
    fx.file("/usr/share/doc/a/README", b"a");
    fx.file("/usr/share/doc/a/deep/README", b"a");
    fx.file("/usr/share/doc/b/README", b"b");
    fx.file("/usr/share/doc/b/NEWS", b"b");
    fx.file("/usr/share/x.txt", b"x");
    fx.file("/usr/bin/tool", &lib(&[]));
    fx
}

#[test]
fn include_file_lines() {
    assert_eq!(
        read_include_file("# c\n\n  /etc/foo  \n/usr/**/*.py\n\t# indented comment\n"),
        ["/etc/foo", "/usr/**/*.py"]
    );
}

#[test]
fn include_table() {
    let fx = docs();
    let cases: &[(&[&str], &[&str], usize)] = &[
        (
            &["/usr/share/doc/*/README"],
            &["usr/share/doc/a/README", "usr/share/doc/b/README"],
            0,
        ),
        (
            &["/usr/**/README"],
            &[
                "usr/share/doc/a/README",
                "usr/share/doc/a/deep/README",
                "usr/share/doc/b/README",
            ],
            0,
        ),
        // Literal directory brings its tree; relative patterns are anchored at the root.
        (
            &["usr/share/doc/b"],
            &["usr/share/doc/b/NEWS", "usr/share/doc/b/README"],
            0,
        ),
        (&["usr/share/*.txt"], &["usr/share/x.txt"], 0),
        // A glob matching a directory brings its tree too.
        (
            &["/usr/share/doc/?"],
            &[
                "usr/share/doc/a/README",
                "usr/share/doc/a/deep/README",
                "usr/share/doc/b/NEWS",
                "usr/share/doc/b/README",
            ],
            0,
        ),
        // Through a merged-/usr link: the hop is kept too.
        (&["/bin/tool"], &["bin", "usr/bin/tool"], 0),
        (&["/nope", "/usr/*.none"], &[], 2),
    ];
    for (incs, want, nwarn) in cases {
        let mut b = fx.builder(&[]);
        let policy = Policy {
            includes: s(incs),
            ..Policy::default()
        };
        let warnings = apply_policy(&mut b, &fx.tree, &fx.src, &policy).expect("policy applies");
        assert_eq!(warnings.len(), *nwarn, "{incs:?}: {warnings:?}");
        let c = b.finish();
        assert_eq!(files(&c, &fx), *want, "{incs:?}");
        assert!(
            c.kept
                .values()
                .flatten()
                .any(|r| matches!(r, Reason::Parent))
                || want.is_empty()
        );
    }
    let mut b = fx.builder(&[]);
    let bad = Policy {
        includes: s(&["/usr/[oops"]),
        ..Policy::default()
    };
    assert!(matches!(
        apply_policy(&mut b, &fx.tree, &fx.src, &bad),
        Err(SelectError::Glob { .. })
    ));
}

#[test]
fn exclude_table() {
    let fx = docs();
    let all = || {
        let mut b = fx.builder(&[]);
        b.add_tree(b"/usr/share", Reason::Entrypoint);
        b.add_path(b"/usr/bin/tool", Reason::Entrypoint);
        b.finish()
    };
    let cases: &[(&[&str], &[&str])] = &[
        // Literal directory: itself and its tree.
        (
            &["/usr/share/doc/a"],
            &[
                "usr/share/doc/a",
                "usr/share/doc/a/README",
                "usr/share/doc/a/deep",
                "usr/share/doc/a/deep/README",
            ],
        ),
        // Glob: only what it matches.
        (
            &["**/README"],
            &[
                "usr/share/doc/a/README",
                "usr/share/doc/a/deep/README",
                "usr/share/doc/b/README",
            ],
        ),
        (&["/usr/share/*.txt"], &["usr/share/x.txt"]),
        // `/usr/share/doc/*` matches a, b: directories holding kept files stay.
        (&["/usr/share/doc/*"], &[]),
        (
            &["/usr/share/doc/**"],
            &[
                "usr/share/doc/a",
                "usr/share/doc/a/README",
                "usr/share/doc/a/deep",
                "usr/share/doc/a/deep/README",
                "usr/share/doc/b",
                "usr/share/doc/b/NEWS",
                "usr/share/doc/b/README",
            ],
        ),
    ];
    for (ex, removed) in cases {
        let before = all();
        let mut c = before.clone();
        let n = apply_excludes(&mut c, &s(ex)).expect("excludes apply");
        let gone: Vec<String> = kept(&before)
            .into_iter()
            .filter(|k| !c.kept.contains_key(k.as_bytes()))
            .collect();
        assert_eq!(gone, *removed, "{ex:?}");
        assert_eq!(n, removed.len());
    }
    // A matched directory that still holds a kept file stays, as a parent only.
    let mut c = all();
    apply_excludes(&mut c, &s(&["/usr/share/doc/*"])).expect("excludes apply");
    assert_eq!(c.kept[&b"usr/share/doc/a"[..]], [Reason::Parent].into());
    // Excluding the directory of a kept file by a glob that names it: kept as parent.
    let mut c = all();
    apply_excludes(&mut c, &s(&["/usr/bin"])).expect("excludes apply");
    assert!(!c.kept.contains_key(&b"usr/bin/tool"[..]));
    assert!(!c.kept.contains_key(&b"usr/bin"[..]));
    let mut c = all();
    apply_excludes(&mut c, &s(&["/usr/b*"])).expect("excludes apply");
    assert!(c.kept.contains_key(&b"usr/bin/tool"[..]));
    assert_eq!(c.kept[&b"usr/bin"[..]], [Reason::Parent].into());
}

#[test]
fn dpkg_alternatives_links_come_with_their_package() {
    let mut fx = docs();
    fx.file(
        "/var/lib/dpkg/info/gawk.list",
        b"/usr/bin/gawk\n/usr/share/man/man1/gawk.1.gz\n",
    );
    fx.file("/usr/bin/gawk", b"gawk");
    fx.file("/usr/bin/mawk", b"mawk");
    fx.file("/usr/share/man/man1/gawk.1.gz", b"man");
    fx.link("/etc/alternatives/awk", "/usr/bin/gawk");
    fx.link(
        "/etc/alternatives/awk.1.gz",
        "/usr/share/man/man1/gawk.1.gz",
    );
    fx.link("/etc/alternatives/pager", "/usr/bin/mawk");
    fx.link("/usr/bin/awk", "/etc/alternatives/awk");
    fx.link("/usr/share/man/man1/awk.1.gz", "/etc/alternatives/awk.1.gz");
    fx.link("/usr/bin/pager", "/etc/alternatives/pager");
    fx.file(
        "/var/lib/dpkg/alternatives/awk",
        b"auto\n/usr/bin/awk\nawk.1.gz\n/usr/share/man/man1/awk.1.gz\n\n/usr/bin/gawk\n10\n/usr/share/man/man1/gawk.1.gz\n",
    );
    fx.file(
        "/var/lib/dpkg/alternatives/pager",
        b"auto\n/usr/bin/pager\n\n/usr/bin/mawk\n5\n",
    );
    let got = package_files(&fx.tree, &fx.src, "gawk").expect("found");
    for want in [
        "/usr/bin/gawk",
        "/usr/bin/awk",
        "/etc/alternatives/awk",
        "/usr/share/man/man1/awk.1.gz",
    ] {
        assert!(got.iter().any(|g| g == want), "{want} not in {got:?}");
    }
    // An alternative that points into another package stays out.
    assert!(!got.iter().any(|g| g.contains("pager")), "{got:?}");
}

#[test]
fn dpkg_and_apk_packages() {
    let mut fx = docs();
    fx.file(
        "/var/lib/dpkg/info/tool:amd64.list",
        b"/.\n/usr\n/usr/bin\n/usr/bin/tool\n/bin/tool\n/usr/share/doc/b\n/usr/share/doc/b/NEWS\n/usr/share/gone\n",
    );
    fx.file("/var/lib/dpkg/info/toolbox.list", b"/usr/share/x.txt\n");
    let mut b = fx.builder(&[]);
    let policy = Policy {
        include_pkgs: s(&["tool"]),
        ..Policy::default()
    };
    apply_policy(&mut b, &fx.tree, &fx.src, &policy).expect("package found");
    let c = b.finish();
    assert_eq!(
        files(&c, &fx),
        ["bin", "usr/bin/tool", "usr/share/doc/b/NEWS"]
    );
    assert!(c.kept[&b"usr/share/doc/b"[..]].contains(&Reason::Package {
        name: "tool".into()
    }));
    for bad in ["nosuch", "../etc/passwd", ""] {
        let mut b = fx.builder(&[]);
        let policy = Policy {
            include_pkgs: s(&[bad]),
            ..Policy::default()
        };
        assert!(
            matches!(
                apply_policy(&mut b, &fx.tree, &fx.src, &policy),
                Err(SelectError::UnknownPackage { .. })
            ),
            "{bad}"
        );
    }
    let mut fx = Fx::new();
    fx.file("/bin/busybox", &lib(&[]));
    fx.file("/etc/motd", b"hi");
    fx.file(
        "/lib/apk/db/installed",
        b"C:Q1abc\nP:busybox\nV:1.36\nF:bin\nR:busybox\nF:etc\nR:motd\n\nP:other\nF:etc\nR:other\n",
    );
    assert_eq!(
        package_files(&fx.tree, &fx.src, "busybox").expect("apk package"),
        ["/bin", "/bin/busybox", "/etc", "/etc/motd"]
    );
    assert!(package_files(&fx.tree, &fx.src, "nope").is_err());
}

#[test]
fn exes_and_shell() {
    let mut fx = docs();
    fx.file("/usr/bin/dash", &lib(&[]));
    fx.link("/usr/bin/sh", "dash");
    let mut b = fx.builder(&["PATH=/usr/local/bin:/bin"]);
    let policy = Policy {
        include_exes: s(&["tool"]),
        keep_shell: true,
        ..Policy::default()
    };
    let w = apply_policy(&mut b, &fx.tree, &fx.src, &policy).expect("applies");
    assert!(w.is_empty());
    let c = b.finish();
    assert_eq!(
        files(&c, &fx),
        ["bin", "usr/bin/dash", "usr/bin/sh", "usr/bin/tool"]
    );
    let mut b = fx.builder(&[]);
    let policy = Policy {
        include_exes: s(&["missing-tool"]),
        ..Policy::default()
    };
    assert!(matches!(
        apply_policy(&mut b, &fx.tree, &fx.src, &policy),
        Err(SelectError::ExeNotFound { .. })
    ));
    let fx = Fx::new();
    let mut b = fx.builder(&[]);
    let policy = Policy {
        keep_shell: true,
        ..Policy::default()
    };
    assert_eq!(
        apply_policy(&mut b, &fx.tree, &fx.src, &policy)
            .expect("ok")
            .len(),
        1
    );
}

#[test]
fn traced_table() {
    let mut fx = docs();
    fx.dir("/var/log/app");
    fx.link("/etc/dangling", "/nonexistent");
    fx.file("/dev/weird", b"x");
    // (path, wrote, kept files/links, written dir)
    let cases: &[(&str, bool, &[&str], Option<&str>)] = &[
        ("/bin/tool", false, &["bin", "usr/bin/tool"], None),
        ("/var/log/app/new.log", true, &[], Some("var/log/app")),
        (
            "/var/log/app/sub/dir/new.log",
            true,
            &[],
            Some("var/log/app"),
        ),
        ("/var/log/app/missing", false, &[], None),
        ("/proc/self/maps", false, &[], None),
        ("/dev/null", true, &[], None),
        ("/dev/weird", false, &["dev/weird"], None),
        ("/etc/dangling", false, &["etc/dangling"], None),
    ];
    for (path, wrote, want, dir) in cases {
        let mut b = fx.builder(&[]);
        add_traced(&mut b, path.as_bytes(), "/usr/bin/tool", "openat", *wrote);
        let c = b.finish();
        assert_eq!(files(&c, &fx), *want, "{path}");
        let written: Vec<String> = c
            .kept
            .iter()
            .filter(|(_, r)| r.contains(&Reason::WrittenDir))
            .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
            .collect();
        assert_eq!(
            written,
            dir.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            "{path}"
        );
        for w in *want {
            if !w.contains('/') {
                continue; // hops carry SymlinkHop
            }
            assert!(c.kept[w.as_bytes()].contains(&Reason::Traced {
                exe: "/usr/bin/tool".into(),
                syscall: "openat".into()
            }));
        }
    }
}

#[test]
fn select_end_to_end() {
    let mut fx = docs();
    fx.file("/usr/bin/python3", &lib(&[]));
    fx.file("/app/main.py", b"print(1)\n");
    fx.file("/app/conf.toml", b"x=1\n");
    fx.file("/etc/passwd", b"root:x:0:0::/root:/bin/sh\n");
    fx.dir("/tmp");
    let spec = ExecSpec {
        entrypoint: s(&["python3"]),
        cmd: s(&["main.py", "--config", "conf.toml", "-v"]),
        env: s(&["PATH=/usr/bin"]),
        workdir: "/app".into(),
        user: String::new(),
    };
    let policy = Policy {
        includes: s(&["/usr/share/doc/b"]),
        excludes: s(&["**/NEWS"]),
        ..Policy::default()
    };
    let sel = select(&fx.tree, &fx.src, &spec, &policy, |b| {
        add_traced(b, b"/tmp/scratch", "/usr/bin/python3", "openat", true);
        add_traced(b, b"/usr/share/x.txt", "/usr/bin/python3", "openat", false);
    })
    .expect("selects");
    assert_eq!(
        files(&sel.closure, &fx),
        [
            "app/conf.toml",
            "app/main.py",
            "etc/passwd",
            "usr/bin/python3",
            "usr/share/doc/b/README",
            "usr/share/x.txt"
        ]
    );
    assert_eq!(sel.excluded, 1);
    assert!(sel.closure.kept[&b"tmp"[..]].contains(&Reason::WrittenDir));
    assert!(sel.closure.kept[&b"usr/bin/python3"[..]].contains(&Reason::Entrypoint));
    assert!(
        sel.closure.warnings.is_empty(),
        "{:?}",
        sel.closure.warnings
    );
    assert!(sel.policy_warnings.is_empty(), "{:?}", sel.policy_warnings);
    // Excluding the entrypoint itself is allowed, with a warning that names it.
    let policy = Policy {
        excludes: s(&["/usr/bin/python*"]),
        ..Policy::default()
    };
    let sel = select(&fx.tree, &fx.src, &spec, &policy, |_| {}).expect("selects");
    assert!(!sel.closure.kept.contains_key(&b"usr/bin/python3"[..]));
    assert_eq!(
        sel.policy_warnings,
        ["--exclude removes /usr/bin/python3, the entrypoint: the image will not start"]
    );
    // A missing program is a warning, not an error.
    let spec = ExecSpec {
        entrypoint: s(&["nosuch"]),
        ..ExecSpec::default()
    };
    let sel = select(&fx.tree, &fx.src, &spec, &Policy::default(), |_| {}).expect("selects");
    assert_eq!(sel.closure.warnings.len(), 1);
}

#[test]
fn volumes_and_state_dirs_are_kept_whole() {
    let mut fx = docs();
    let pg = "/var/lib/postgresql";
    fx.file(&format!("{pg}/data/global/pg_control"), b"c")
        .file(&format!("{pg}/data/base/1/1259"), b"catalog")
        .file(&format!("{pg}/data/base/5/2691"), b"pg_proc")
        .file(&format!("{pg}/.psql_history"), b"h")
        .file("/var/lib/other/keep-out", b"x")
        .file("/var/log/app.log", b"log")
        .file("/srv/vol/seed.json", b"{}")
        .file("/srv/novol/x", b"x");
    fx.owner(
        100,
        &[
            pg,
            &format!("{pg}/data"),
            &format!("{pg}/data/global"),
            &format!("{pg}/data/global/pg_control"),
            &format!("{pg}/data/base"),
            &format!("{pg}/data/base/1"),
            &format!("{pg}/data/base/1/1259"),
            &format!("{pg}/data/base/5"),
            &format!("{pg}/data/base/5/2691"),
            &format!("{pg}/.psql_history"),
            "/var/log/app.log",
        ],
    );
    let mut b = fx.builder(&[]);
    add_state(
        &mut b,
        &s(&["/srv/vol", "/srv/missing"]),
        &[
            b"/var/lib/postgresql/data/global/pg_control",
            b"/var/log/app.log",
            b"/var/lib/postgresql/data/new-file",
        ],
    );
    let c = b.finish();
    let got = files(&c, &fx);
    for want in [
        "srv/vol/seed.json",
        "var/lib/postgresql/.psql_history",
        "var/lib/postgresql/data/base/1/1259",
        "var/lib/postgresql/data/base/5/2691",
        "var/lib/postgresql/data/global/pg_control",
    ] {
        assert!(got.iter().any(|g| g == want), "{want} not kept: {got:?}");
    }
    // A modified file in a root-owned directory brings no state dir (the file itself comes from
    // tracing, not from this rule); unrelated dirs stay out.
    for not in ["var/lib/other/keep-out", "srv/novol/x", "var/log/app.log"] {
        assert!(!got.iter().any(|g| g == not), "{not} kept: {got:?}");
    }
    assert!(c.kept[&b"var/lib/postgresql"[..]].contains(&Reason::Data {
        rule: "state-dir".into()
    }));
    assert!(c.kept[&b"srv/vol"[..]].contains(&Reason::Data {
        rule: "volume".into()
    }));
}
