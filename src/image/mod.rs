//! The selected image: its original config JSON (every field kept), its ordered layers, and
//! the exec spec derived from the config. Pure data, no I/O.

use crate::digest::Digest;
use serde_json::Value;

/// One layer blob of the selected image, bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRef {
    /// Digest of the blob as stored (compressed bytes for compressed layers).
    pub digest: Digest,
    /// Size of the stored blob, when the manifest gives it (docker-save legacy does not).
    pub size: Option<u64>,
    /// Media type from the manifest, informative only: compression is sniffed from bytes.
    pub media_type: Option<String>,
    /// The uncompressed digest the config's `rootfs.diff_ids` names for this layer.
    pub diff_id: Digest,
    /// Name of the blob inside the archive (`blobs/sha256/<hex>` or `<id>/layer.tar`).
    pub location: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of the running host: `linux/<GOARCH name>` (`x86_64` → `amd64`,
    /// `aarch64` → `arm64`, ...), no variant.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "arm" => "arm",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "powerpc64" => "ppc64",
            "loongarch64" => "loong64",
            "mips64" if cfg!(target_endian = "little") => "mips64le",
            "mips" if cfg!(target_endian = "little") => "mipsle",
            other => other,
        };
        Platform {
            os: "linux".to_owned(),
            architecture: arch.to_owned(),
            variant: None,
        }
    }

    /// Parse `os/arch[/variant]` as in `--platform linux/arm64/v8`.
    pub fn parse(s: &str) -> Option<Platform> {
        let mut it = s.split('/');
        let os = it.next().filter(|x| !x.is_empty())?;
        let architecture = it.next().filter(|x| !x.is_empty())?;
        let variant = match it.next() {
            Some(v) if !v.is_empty() => Some(v.to_owned()),
            Some(_) => return None,
            None => None,
        };
        if it.next().is_some() {
            return None;
        }
        Some(Platform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant,
        })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Which input format the image came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceFormat {
    /// `manifest.json` only.
    DockerSave,
    /// `manifest.json` plus an OCI layout (Docker 25+).
    DockerSaveOci,
    /// OCI image layout (tar or directory).
    OciLayout,
}

/// The image selected from an archive.
#[derive(Debug, Clone)]
pub struct Image {
    pub format: SourceFormat,
    /// Reference such as `docker.io/library/nginx:latest`, when the archive names one.
    pub name: Option<String>,
    /// The original config JSON, unchanged. Output patches a copy of it.
    pub config: Value,
    pub config_digest: Digest,
    pub layers: Vec<LayerRef>,
    pub platform: Platform,
}

/// What to run: derived from the config, overridable from the command line.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ExecSpec {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub workdir: String,
    pub user: String,
}

impl ExecSpec {
    /// Entrypoint followed by Cmd: the argv the runtime would exec.
    pub fn argv(&self) -> Vec<String> {
        self.entrypoint
            .iter()
            .chain(self.cmd.iter())
            .cloned()
            .collect()
    }

    /// Value of `NAME` in the environment, if set.
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct ExposedPort {
    pub port: u16,
    pub tcp: bool,
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

impl Image {
    /// The `config` object of the image config (empty object when absent).
    pub fn runtime_config(&self) -> &Value {
        static EMPTY: Value = Value::Null;
        self.config.get("config").unwrap_or(&EMPTY)
    }

    pub fn exec_spec(&self) -> ExecSpec {
        let c = self.runtime_config();
        let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        ExecSpec {
            entrypoint: string_list(c.get("Entrypoint")),
            cmd: string_list(c.get("Cmd")),
            env: string_list(c.get("Env")),
            workdir: s("WorkingDir"),
            user: s("User"),
        }
    }

    /// `ExposedPorts` keys such as `80/tcp`, sorted.
    pub fn exposed_ports(&self) -> Vec<ExposedPort> {
        let mut out: Vec<ExposedPort> = self
            .runtime_config()
            .get("ExposedPorts")
            .and_then(Value::as_object)
            .map(|m| {
                m.keys()
                    .filter_map(|k| {
                        let (port, proto) = k.split_once('/').unwrap_or((k.as_str(), "tcp"));
                        Some(ExposedPort {
                            port: port.parse().ok()?,
                            tcp: proto == "tcp",
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out.dedup();
        out
    }

    /// `Volumes` keys (absolute paths), sorted.
    pub fn volumes(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .runtime_config()
            .get("Volumes")
            .and_then(Value::as_object)
            .map(|m| m.keys().filter(|k| k.starts_with('/')).cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// `StopSignal` as a signal number (`SIGQUIT`, `QUIT`, `3`); `None` when absent or unknown.
    pub fn stop_signal(&self) -> Option<i32> {
        let s = self.runtime_config().get("StopSignal")?.as_str()?.trim();
        if let Ok(n) = s.parse::<i32>() {
            return (1..=64).contains(&n).then_some(n);
        }
        let name = s.to_ascii_uppercase();
        let name = name.strip_prefix("SIG").unwrap_or(&name);
        let n = match name {
            "HUP" => libc::SIGHUP,
            "INT" => libc::SIGINT,
            "QUIT" => libc::SIGQUIT,
            "KILL" => libc::SIGKILL,
            "USR1" => libc::SIGUSR1,
            "USR2" => libc::SIGUSR2,
            "TERM" => libc::SIGTERM,
            "WINCH" => libc::SIGWINCH,
            "PWR" => libc::SIGPWR,
            "STOP" => libc::SIGSTOP,
            _ => {
                let rt = name.strip_prefix("RTMIN")?;
                let off: i32 = if rt.is_empty() {
                    0
                } else {
                    rt.strip_prefix('+')?.parse().ok()?
                };
                let n = libc::SIGRTMIN() + off;
                return (n <= libc::SIGRTMAX()).then_some(n);
            }
        };
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn image(config: Value) -> Image {
        Image {
            format: SourceFormat::OciLayout,
            name: None,
            config,
            config_digest: Digest::of_bytes(b""),
            layers: vec![],
            platform: Platform::default(),
        }
    }

    #[test]
    fn volumes_and_stop_signal() {
        let img = image(json!({"config": {
            "Volumes": {"/var/lib/postgresql/data": {}, "relative": {}, "/data": {}},
            "StopSignal": "SIGQUIT"
        }}));
        assert_eq!(img.volumes(), ["/data", "/var/lib/postgresql/data"]);
        assert_eq!(img.stop_signal(), Some(libc::SIGQUIT));
        for (s, want) in [
            ("INT", Some(libc::SIGINT)),
            ("sigterm", Some(libc::SIGTERM)),
            ("9", Some(9)),
            ("0", None),
            ("SIGRTMIN+3", Some(libc::SIGRTMIN() + 3)),
            ("SIGNOPE", None),
        ] {
            let img = image(json!({"config": {"StopSignal": s}}));
            assert_eq!(img.stop_signal(), want, "{s}");
        }
    }

    #[test]
    fn exec_spec_from_config() {
        let img = image(json!({"config": {
            "Entrypoint": ["/usr/sbin/nginx"], "Cmd": ["-g", "daemon off;"],
            "Env": ["PATH=/usr/bin", "LANG=C.UTF-8"], "WorkingDir": "/srv", "User": "www-data",
            "ExposedPorts": {"80/tcp": {}, "53/udp": {}, "8080": {}}
        }}));
        let e = img.exec_spec();
        assert_eq!(e.argv(), ["/usr/sbin/nginx", "-g", "daemon off;"]);
        assert_eq!(e.env_var("LANG"), Some("C.UTF-8"));
        assert_eq!(e.env_var("LAN"), None);
        assert_eq!(e.workdir, "/srv");
        assert_eq!(e.user, "www-data");
        let ports = img.exposed_ports();
        assert_eq!(
            ports,
            [
                ExposedPort {
                    port: 53,
                    tcp: false
                },
                ExposedPort {
                    port: 80,
                    tcp: true
                },
                ExposedPort {
                    port: 8080,
                    tcp: true
                }
            ]
        );
    }

    #[test]
    fn platform_parse_and_host() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert_eq!(Platform::parse("linux/amd64").unwrap().variant, None);
        for bad in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "linux/arm/v7/x",
            "linux/arm/",
        ] {
            assert!(Platform::parse(bad).is_none(), "{bad}");
        }
        let h = Platform::host();
        assert_eq!(h.os, "linux");
        if cfg!(target_arch = "x86_64") {
            assert_eq!(h.architecture, "amd64");
        }
    }

    #[test]
    fn missing_config_is_empty() {
        let img = image(json!({}));
        assert_eq!(img.exec_spec(), ExecSpec::default());
        assert!(img.exposed_ports().is_empty());
        assert!(img.volumes().is_empty());
        assert_eq!(img.stop_signal(), None);
    }
}
