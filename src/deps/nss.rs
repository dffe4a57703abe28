//! glibc Name Service Switch: which `libnss_*` modules and configuration files a program
//! that resolves users, groups, hosts or services needs, from the image's
//! `/etc/nsswitch.conf` (glibc's built-in defaults when it is missing).

use std::collections::BTreeMap;

/// Databases whose services are kept. `shadow`/`gshadow` services are the same modules; the
/// shadow *files* are never added here (they hold password hashes).
pub const DATABASES: &[&str] = &[
    "passwd",
    "group",
    "shadow",
    "gshadow",
    "initgroups",
    "hosts",
    "networks",
    "protocols",
    "services",
    "ethers",
    "rpc",
    "netgroup",
    "aliases",
];

/// Files read by the services and the resolver, kept when present in the image.
/// `/etc/hosts` and `/etc/resolv.conf` are the image's own: runtimes bind-mount over them at
/// run time, but an image that ships them keeps them. Each with the service label recorded.
pub const FILES: &[(&str, &str)] = &[
    ("/etc/nsswitch.conf", "nsswitch"),
    ("/etc/passwd", "files"),
    ("/etc/group", "files"),
    ("/etc/hosts", "files"),
    ("/etc/services", "files"),
    ("/etc/protocols", "files"),
    ("/etc/networks", "files"),
    ("/etc/host.conf", "dns"),
    ("/etc/resolv.conf", "dns"),
    ("/etc/gai.conf", "dns"),
];

/// Services of the databases named in an nsswitch.conf text, in order, action items
/// (`[NOTFOUND=return]`) dropped. Later lines for the same database replace earlier ones.
pub fn parse_nsswitch(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let Some((db, rest)) = line.split_once(':') else {
            continue;
        };
        let db = db.trim();
        if db.is_empty() || db.contains(char::is_whitespace) {
            continue;
        }
        let mut services = Vec::new();
        let mut in_action = false;
        let mut word = String::new();
        let flush = |w: &mut String, services: &mut Vec<String>| {
            if !w.is_empty() && !services.contains(w) {
                services.push(std::mem::take(w));
            }
            w.clear();
        };
        for c in rest.chars() {
            match c {
                '[' => {
                    flush(&mut word, &mut services);
                    in_action = true;
                }
                ']' => in_action = false,
                _ if in_action => {}
                c if c.is_whitespace() => flush(&mut word, &mut services),
                c => word.push(c),
            }
        }
        flush(&mut word, &mut services);
        out.insert(db.to_owned(), services);
    }
    out
}

/// glibc's services for a database not configured (file missing or no line for it).
/// From glibc `nss/nss_database.c` (2.33+, built without `LINK_OBSOLETE_NSL` as Debian,
/// Ubuntu and Fedora build it): `hosts` and `networks` use
/// `dns [!UNAVAIL=return] files`, `publickey` `nis nisplus`, `initgroups` follows `group`,
/// every other database `files`.
pub fn default_services(db: &str) -> Vec<String> {
    let v: &[&str] = match db {
        "hosts" | "networks" => &["dns", "files"],
        "publickey" => &["nis", "nisplus"],
        "initgroups" => &[],
        _ => &["files"],
    };
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// Effective services of every database in [`DATABASES`], given the nsswitch.conf text
/// (`None` when the image has none).
pub fn effective(conf: Option<&str>) -> BTreeMap<String, Vec<String>> {
    let parsed = conf.map(parse_nsswitch).unwrap_or_default();
    DATABASES
        .iter()
        .map(|db| {
            let s = parsed
                .get(*db)
                .cloned()
                .unwrap_or_else(|| default_services(db));
            ((*db).to_owned(), s)
        })
        .collect()
}

/// Distinct services over all databases, sorted.
pub fn services(conf: Option<&str>) -> Vec<String> {
    let mut v: Vec<String> = effective(conf).into_values().flatten().collect();
    v.sort();
    v.dedup();
    v
}

/// The module file glibc dlopens for a service.
pub fn module_name(service: &str) -> String {
    format!("libnss_{service}.so.2")
}

/// Services glibc 2.34+ has built into libc.so.6 (a missing module is then no problem).
pub fn is_builtin(service: &str) -> bool {
    matches!(service, "files" | "dns")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn parse_table() {
        let text = "# comment line\n\
            passwd:         files systemd   # trailing\n\
            group: files [SUCCESS=merge] systemd\n\
            hosts:          files mdns4_minimal [NOTFOUND=return  UNAVAIL=continue] dns myhostname\n\
            \n\
            bad line without colon\n\
            networks:\tfiles\n\
            netgroup:       nis\n\
            netgroup:       files\n\
            shadow:\n";
        let m = parse_nsswitch(text);
        let cases: &[(&str, &[&str])] = &[
            ("passwd", &["files", "systemd"]),
            ("group", &["files", "systemd"]),
            ("hosts", &["files", "mdns4_minimal", "dns", "myhostname"]),
            ("networks", &["files"]),
            ("netgroup", &["files"]),
            ("shadow", &[]),
        ];
        for (db, want) in cases {
            assert_eq!(m.get(*db), Some(&v(want)), "{db}");
        }
        assert_eq!(m.len(), cases.len());
    }

    #[test]
    fn defaults_when_missing() {
        let e = effective(None);
        assert_eq!(e["passwd"], v(&["files"]));
        assert_eq!(e["hosts"], v(&["dns", "files"]));
        assert_eq!(e["networks"], v(&["dns", "files"]));
        assert!(e["initgroups"].is_empty());
        assert_eq!(services(None), v(&["dns", "files"]));
        // A file that names only passwd: the rest keep glibc's defaults.
        let e = effective(Some("passwd: compat\n"));
        assert_eq!(e["passwd"], v(&["compat"]));
        assert_eq!(e["hosts"], v(&["dns", "files"]));
        assert_eq!(
            services(Some("passwd: compat\nhosts: files myhostname\n")),
            v(&["compat", "dns", "files", "myhostname"])
        );
    }

    #[test]
    fn names() {
        assert_eq!(module_name("mdns4_minimal"), "libnss_mdns4_minimal.so.2");
        assert!(is_builtin("files") && is_builtin("dns") && !is_builtin("systemd"));
    }
}
