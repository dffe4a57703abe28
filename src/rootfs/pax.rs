//! Extended headers that precede a layer tar entry: PAX (`x`) records and GNU long names
//! (`L`, `K`), gathered for the entry that follows them.
//!
//! PAX records are parsed by their length prefix (`LEN KEY=VALUE\n`, LEN counting the whole
//! record), never by splitting at newlines: xattr values such as `security.capability` are
//! binary and may contain `\n` bytes (Go's archive/tar, used by umoci, skopeo and docker,
//! writes them raw). The `tar` crate's own iterator splits at newlines, so layers are read in
//! its raw mode and these headers are interpreted here.

use std::collections::BTreeMap;

/// Largest extended header (PAX data or GNU long name) accepted. Real ones are a few hundred
/// bytes; xattrs are limited to 64 KiB each by Linux.
pub const MAX_EXTENSION_BYTES: u64 = 1 << 20;

/// What the extended headers before an entry say about it. Later headers override earlier ones;
/// a PAX `path`/`linkpath` wins over a GNU long name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Extensions {
    pub path: Option<Vec<u8>>,
    pub link: Option<Vec<u8>>,
    pub long_path: Option<Vec<u8>>,
    pub long_link: Option<Vec<u8>>,
    pub size: Option<u64>,
    pub uid: Option<u64>,
    pub gid: Option<u64>,
    /// Whole seconds (fractions dropped, times before 1970 clamped to 0).
    pub mtime: Option<u64>,
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// A `GNU.sparse.*` record was seen: the entry is a PAX sparse file.
    pub sparse: bool,
}

impl Extensions {
    /// The entry's name: PAX `path`, else GNU long name, else `header` (the ustar name).
    pub fn path_or<'a>(&'a self, header: &'a [u8]) -> &'a [u8] {
        self.path
            .as_deref()
            .or(self.long_path.as_deref())
            .unwrap_or(header)
    }

    /// The entry's link target: PAX `linkpath`, else GNU long link name, else `header`.
    pub fn link_or<'a>(&'a self, header: Option<&'a [u8]>) -> Option<&'a [u8]> {
        self.link
            .as_deref()
            .or(self.long_link.as_deref())
            .or(header)
    }

    /// A GNU long name (`L`) or long link name (`K`) entry's data: up to the first NUL.
    pub fn set_long_name(&mut self, link: bool, data: &[u8]) {
        let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
        let name = data[..end].to_vec();
        if link {
            self.long_link = Some(name);
        } else {
            self.long_path = Some(name);
        }
    }

    /// Merge the records of one PAX extended header (`x`) into these extensions.
    pub fn add_pax(&mut self, data: &[u8]) -> Result<(), String> {
        for (key, value) in records(data)? {
            match key {
                b"path" => self.path = Some(value.to_vec()),
                b"linkpath" => self.link = Some(value.to_vec()),
                b"size" => self.size = Some(number(key, value)?),
                b"uid" => self.uid = Some(number(key, value)?),
                b"gid" => self.gid = Some(number(key, value)?),
                b"mtime" => self.mtime = Some(seconds(value)?),
                _ if key.starts_with(b"GNU.sparse.") => self.sparse = true,
                _ => {
                    if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                        let name = String::from_utf8_lossy(name).into_owned();
                        self.xattrs.insert(name, value.to_vec());
                    }
                }
            }
        }
        Ok(())
    }
}

/// One PAX record: key and value, raw bytes.
pub type Record<'a> = (&'a [u8], &'a [u8]);

/// Split PAX extended header data into `(key, value)` records.
pub fn records(data: &[u8]) -> Result<Vec<Record<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        // Some writers pad the data with NULs after the last record.
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let space = rest
            .iter()
            .take(20)
            .position(|&b| b == b' ')
            .ok_or("a PAX record has no length")?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or("a PAX record has a bad length")?;
        if len <= space + 1 || len > rest.len() {
            return Err(format!(
                "a PAX record's length {len} does not fit its header ({} bytes left)",
                rest.len()
            ));
        }
        let record = &rest[space + 1..len];
        let Some(record) = record.strip_suffix(b"\n") else {
            return Err("a PAX record does not end with a newline".into());
        };
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or("a PAX record has no `=`")?;
        if eq == 0 {
            return Err("a PAX record has an empty key".into());
        }
        out.push((&record[..eq], &record[eq + 1..]));
        rest = &rest[len..];
    }
    Ok(out)
}

fn number(key: &[u8], value: &[u8]) -> Result<u64, String> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            format!(
                "PAX `{}` is not a number: `{}`",
                String::from_utf8_lossy(key),
                String::from_utf8_lossy(value)
            )
        })
}

fn seconds(value: &[u8]) -> Result<u64, String> {
    let s = std::str::from_utf8(value).map_err(|_| "PAX `mtime` is not text".to_string())?;
    let whole = s.split('.').next().unwrap_or("");
    if whole.starts_with('-') {
        return Ok(0);
    }
    whole
        .parse()
        .map_err(|_| format!("PAX `mtime` is not a time: `{s}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One record, length computed as PAX does (the length counts its own digits).
    fn rec(key: &str, value: &[u8]) -> Vec<u8> {
        let body = 1 + key.len() + 1 + value.len() + 1;
        let mut len = body + 1;
        while len != body + len.to_string().len() {
            len = body + len.to_string().len();
        }
        let mut r = format!("{len} {key}=").into_bytes();
        r.extend_from_slice(value);
        r.push(b'\n');
        assert_eq!(r.len(), len);
        r
    }

    #[test]
    fn binary_xattr_with_newlines_is_read_whole() {
        // cap_dac_override + cap_fowner: the first permitted byte is 0x0a
        let cap = [
            1, 0, 0, 2, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let mut data = rec("SCHILY.xattr.security.capability", &cap);
        data.extend(rec("mtime", b"1735689600.123456789"));
        data.extend(rec("path", b"usr/bin/a\nb"));
        data.extend(rec("uid", b"3000000"));
        let mut e = Extensions::default();
        e.add_pax(&data).unwrap();
        assert_eq!(e.xattrs["security.capability"], cap);
        assert_eq!(e.mtime, Some(1_735_689_600));
        assert_eq!(e.path.as_deref(), Some(&b"usr/bin/a\nb"[..]));
        assert_eq!(e.uid, Some(3_000_000));
        assert_eq!(e.path_or(b"short"), b"usr/bin/a\nb");
    }

    #[test]
    fn values_may_hold_equals_and_nul() {
        let data = rec("SCHILY.xattr.user.k", b"a=b\0c");
        assert_eq!(
            records(&data).unwrap(),
            vec![(&b"SCHILY.xattr.user.k"[..], &b"a=b\0c"[..])]
        );
    }

    #[test]
    fn malformed_records_are_errors() {
        for bad in [
            &b"5 a=b"[..],           // no newline (and length too long)
            b"6 a=bc",               // length right, last byte not a newline
            b"x a=b\n",              // length not a number
            b"99 a=b\n",             // longer than the data
            b"3 \n",                 // shorter than its own prefix
            b"6 ab\n\n",             // no '='
            b"5 =b\n",               // empty key
            b"12345678901234567890", // no space at all
            b"-5 a=b\n",
        ] {
            assert!(records(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let mut e = Extensions::default();
        assert!(e.add_pax(&rec("size", b"12x")).is_err());
        assert!(e.add_pax(&rec("mtime", b"soon")).is_err());
    }

    #[test]
    fn trailing_nul_padding_and_empty_data_are_fine() {
        let mut data = rec("path", b"x");
        data.extend([0u8; 7]);
        assert_eq!(records(&data).unwrap().len(), 1);
        assert!(records(b"").unwrap().is_empty());
    }

    #[test]
    fn precedence_and_sparse() {
        let mut e = Extensions::default();
        e.set_long_name(false, b"gnu/long/name\0\0\0");
        e.set_long_name(true, b"gnu/target");
        assert_eq!(e.path_or(b"hdr"), b"gnu/long/name");
        assert_eq!(e.link_or(Some(b"hdr")), Some(&b"gnu/target"[..]));
        e.add_pax(&rec("path", b"pax/name")).unwrap();
        assert_eq!(e.path_or(b"hdr"), b"pax/name");
        assert_eq!(Extensions::default().link_or(None), None);
        assert!(!e.sparse);
        e.add_pax(&rec("GNU.sparse.major", b"1")).unwrap();
        assert!(e.sparse);
        e.add_pax(&rec("mtime", b"-20.5")).unwrap();
        assert_eq!(e.mtime, Some(0));
    }
}
