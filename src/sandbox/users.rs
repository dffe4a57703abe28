//! The image user: `User` of the config resolved with the image's /etc/passwd and /etc/group
//! (read from the lower dir, symlinks resolved inside it), like runc does.

use std::path::{Component, Path, PathBuf};

/// The resolved identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUser {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    #[error("user `{0}` not found in the image's /etc/passwd")]
    NoSuchUser(String),
    #[error("group `{0}` not found in the image's /etc/group")]
    NoSuchGroup(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 || f[0].starts_with('#') {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_owned(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_owned(),
            })
        })
        .collect()
}

pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 || f[0].starts_with('#') {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_owned(),
                gid: f[2].parse().ok()?,
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect()
}

/// Resolve a `User` string (`""`, `name`, `uid`, `uid:gid`, `name:group`, ...).
pub fn resolve(
    spec: &str,
    passwd: &[PasswdEntry],
    group: &[GroupEntry],
) -> Result<ImageUser, UserError> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let entry = match u.parse::<u32>() {
        Ok(uid) => passwd
            .iter()
            .find(|p| p.uid == uid)
            .cloned()
            .or(Some(PasswdEntry {
                name: String::new(),
                uid,
                gid: 0,
                home: "/".into(),
            })),
        Err(_) => passwd.iter().find(|p| p.name == u).cloned(),
    }
    .ok_or_else(|| UserError::NoSuchUser(u.to_owned()))?;
    let gid = match g {
        None | Some("") => entry.gid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group
                .iter()
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| UserError::NoSuchGroup(g.to_owned()))?,
        },
    };
    let mut groups = vec![gid];
    if !entry.name.is_empty() {
        for e in group {
            if e.members.contains(&entry.name) && !groups.contains(&e.gid) {
                groups.push(e.gid);
            }
        }
    }
    Ok(ImageUser {
        uid: entry.uid,
        gid,
        groups,
        home: if entry.home.is_empty() {
            "/".into()
        } else {
            entry.home
        },
    })
}

/// Resolve `path` (absolute, inside the image) to a host path under `root`, following symlinks
/// inside `root` only (absolute targets restart at `root`, `..` stops at `root`).
pub fn resolve_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    let mut todo: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .rev()
        .map(str::to_owned)
        .collect();
    let mut cur: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        let mut host = root.to_path_buf();
        host.extend(cur.iter());
        host.push(&c);
        let md = std::fs::symlink_metadata(&host).ok()?;
        if md.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = std::fs::read_link(&host).ok()?;
            if target.is_absolute() {
                cur.clear();
            }
            for comp in target.components().rev() {
                if let Component::Normal(n) = comp {
                    todo.push(n.to_string_lossy().into_owned());
                } else if comp == Component::ParentDir {
                    todo.push("..".into());
                }
            }
        } else {
            cur.push(c);
        }
    }
    let mut host = root.to_path_buf();
    host.extend(cur.iter());
    Some(host)
}

/// Read a small text file of the image (missing → empty).
pub fn read_image_file(root: &Path, path: &str) -> String {
    resolve_in_root(root, path)
        .and_then(|p| {
            let md = std::fs::metadata(&p).ok()?;
            if !md.is_file() || md.len() > 16 << 20 {
                return None;
            }
            std::fs::read(&p).ok()
        })
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\nbad line\napp:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwww-data:x:33:\nstaff:x:50:app,www-data\napp:x:1000:\n";

    #[test]
    fn resolve_table() {
        let p = parse_passwd(PASSWD);
        let g = parse_group(GROUP);
        type Want = Result<(u32, u32, &'static [u32]), UserError>;
        let cases: &[(&str, Want)] = &[
            ("", Ok((0, 0, &[0]))),
            ("root", Ok((0, 0, &[0]))),
            ("www-data", Ok((33, 33, &[33, 50]))),
            ("33", Ok((33, 33, &[33, 50]))),
            ("app:staff", Ok((1000, 50, &[50]))),
            ("1000:7", Ok((1000, 7, &[7, 50]))),
            ("4242", Ok((4242, 0, &[0]))),
            ("4242:4243", Ok((4242, 4243, &[4243]))),
            ("nobody", Err(UserError::NoSuchUser("nobody".into()))),
            ("app:nogroup", Err(UserError::NoSuchGroup("nogroup".into()))),
        ];
        for (spec, want) in cases {
            let got = resolve(spec, &p, &g).map(|u| (u.uid, u.gid, u.groups));
            let want = want
                .as_ref()
                .map(|(u, g, gs)| (*u, *g, gs.to_vec()))
                .map_err(Clone::clone);
            assert_eq!(got, want, "{spec}");
        }
    }

    #[test]
    fn resolve_in_root_stays_inside() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("usr/etc")).unwrap();
        std::fs::write(r.join("usr/etc/passwd"), PASSWD).unwrap();
        std::os::unix::fs::symlink("/usr/etc", r.join("etc")).unwrap();
        std::os::unix::fs::symlink("../../../../../etc/shadow", r.join("esc")).unwrap();
        assert_eq!(
            resolve_in_root(r, "/etc/passwd"),
            Some(r.join("usr/etc/passwd"))
        );
        std::fs::write(r.join("usr/etc/shadow"), "inside").unwrap();
        // `..` stops at the root, then `etc` → `/usr/etc` inside the root
        assert_eq!(resolve_in_root(r, "/esc"), Some(r.join("usr/etc/shadow")));
        assert!(read_image_file(r, "/etc/passwd").contains("www-data"));
        assert_eq!(read_image_file(r, "/esc"), "inside");
        assert_eq!(read_image_file(r, "/missing"), "");
    }
}
