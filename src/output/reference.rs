//! Image reference normalization: `nginx` → `docker.io/library/nginx:latest`.
//!
//! Follows the grammar of the distribution `reference` package: an optional domain (a first
//! component containing `.` or `:`, or `localhost`), lowercase path components, an optional
//! tag, and an optional digest, which is dropped because the output image is new.

use super::OutputError;
use crate::digest::Digest;

const DEFAULT_DOMAIN: &str = "docker.io";
const DEFAULT_TAG: &str = "latest";
/// Longest repository name (domain and path) the reference grammar allows.
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A parsed, normalized reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    /// `docker.io/library/nginx`.
    pub repository: String,
    /// `latest`.
    pub tag: String,
}

impl Reference {
    pub fn full(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }
}

/// Normalize a reference to its fully qualified `domain/path:tag` form, dropping a digest.
///
/// `nginx` → `docker.io/library/nginx:latest`, `nginx:slim` → `docker.io/library/nginx:slim`,
/// `example.com/a/b:1` and `localhost/x:y` are unchanged. Invalid references are refused.
pub fn normalize_reference(s: &str) -> Result<String, OutputError> {
    parse(s).map(|r| r.full())
}

pub(crate) fn parse(s: &str) -> Result<Reference, OutputError> {
    let bad = |reason: &'static str| OutputError::InvalidReference {
        reference: s.chars().take(300).collect(),
        reason,
    };
    if s.is_empty() {
        return Err(bad("empty reference"));
    }
    let name_tag = match s.split_once('@') {
        Some((n, d)) => {
            Digest::parse(d).map_err(|_| bad("the digest is not `sha256:` and 64 hex digits"))?;
            n
        }
        None => s,
    };
    // A tag is after the last `:` that follows the last `/` (a `:` before it is a port).
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_tag[..last_slash + i],
            Some(&name_tag[last_slash + i + 1..]),
        ),
        None => (name_tag, None),
    };
    let tag = match tag {
        Some(t) if !valid_tag(t) => return Err(bad("invalid tag")),
        Some(t) => t,
        None => DEFAULT_TAG,
    };
    if name.is_empty() {
        return Err(bad("empty repository name"));
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest)
        }
        Some((first, _)) if first.bytes().any(|b| b.is_ascii_uppercase()) => {
            return Err(bad("uppercase letters in the repository name"))
        }
        _ => (DEFAULT_DOMAIN, name),
    };
    if !valid_domain(domain) {
        return Err(bad("invalid domain"));
    }
    if path.is_empty() || !path.split('/').all(valid_path_component) {
        return Err(bad(
            "invalid repository path: components are lowercase letters and digits separated by `.`, `_`, `__` or `-`",
        ));
    }
    let domain = if domain == "index.docker.io" {
        DEFAULT_DOMAIN
    } else {
        domain
    };
    let repository = if domain == DEFAULT_DOMAIN && !path.contains('/') {
        format!("{domain}/library/{path}")
    } else {
        format!("{domain}/{path}")
    };
    if repository.len() > MAX_NAME_LEN {
        return Err(bad("repository name longer than 255 characters"));
    }
    Ok(Reference {
        repository,
        tag: tag.to_owned(),
    })
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Host name labels (letters, digits, inner `-`) separated by `.`, optional `:port`.
fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_table() {
        let d = format!("sha256:{}", "a".repeat(64));
        let cases: Vec<(String, &str)> = vec![
            ("nginx".into(), "docker.io/library/nginx:latest"),
            ("nginx:slim".into(), "docker.io/library/nginx:slim"),
            (
                "nginx:1.25.3-alpine".into(),
                "docker.io/library/nginx:1.25.3-alpine",
            ),
            ("library/nginx".into(), "docker.io/library/nginx:latest"),
            ("docker.io/nginx".into(), "docker.io/library/nginx:latest"),
            (
                "index.docker.io/nginx".into(),
                "docker.io/library/nginx:latest",
            ),
            ("user/app:v1".into(), "docker.io/user/app:v1"),
            ("example.com/a/b:1".into(), "example.com/a/b:1"),
            ("example.com:5000/a/b".into(), "example.com:5000/a/b:latest"),
            ("localhost/x:y".into(), "localhost/x:y"),
            ("localhost:5000/x".into(), "localhost:5000/x:latest"),
            (
                "Example.COM/a_b/c__d/e--f.g:T_1".into(),
                "Example.COM/a_b/c__d/e--f.g:T_1",
            ),
            (format!("nginx@{d}"), "docker.io/library/nginx:latest"),
            (format!("nginx:1.2@{d}"), "docker.io/library/nginx:1.2"),
            (
                format!("example.com:5000/a@{d}"),
                "example.com:5000/a:latest",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                normalize_reference(&input).as_deref().ok(),
                Some(want),
                "{input}"
            );
        }
    }

    #[test]
    fn invalid_references() {
        for bad in [
            "",
            ":tag",
            "nginx:",
            "Nginx",
            "UPPER/x",
            "nginx:-bad",
            "nginx:a/b",
            "a//b",
            "a/",
            "/a",
            "a..b",
            "a-",
            "-a",
            "a b",
            "example.com/",
            "example.com:/a",
            "example.com:port/a",
            "-example.com/a",
            "nginx@sha256:abc",
            "nginx@md5:0123456789abcdef0123456789abcdef",
            "nginx@",
            &format!("nginx:{}", "t".repeat(129)),
            &format!("example.com/{}", "a".repeat(250)),
        ] {
            assert!(
                normalize_reference(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn parse_splits_tag() {
        let r = parse("example.com:5000/a/b:1").unwrap();
        assert_eq!(r.repository, "example.com:5000/a/b");
        assert_eq!(r.tag, "1");
    }
}
