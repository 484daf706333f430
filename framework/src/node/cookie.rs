//! The shared secret nodes authenticate with (Erlang's magic cookie).
//!
//! Sources, first found wins: an explicit value (a command-line flag), an environment
//! variable, a cookie file. The file works like `~/.erlang.cookie`: created on first use with
//! 128 random bits and mode 0600, and refused if anyone but its owner may read it. There is no
//! built-in default cookie: a well-known cookie is no secret.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The environment variable read when no cookie is given explicitly.
pub const COOKIE_ENV: &str = "OTP_COOKIE";

/// The default cookie file, in the home directory.
pub const COOKIE_FILE_NAME: &str = ".otp.cookie";

/// A node cookie. Its `Debug` output never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Cookie(String);

impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cookie(..)")
    }
}

/// Why no cookie could be had.
#[derive(Debug, thiserror::Error)]
pub enum CookieError {
    /// The given cookie is empty or has characters that cannot travel safely.
    #[error("invalid cookie: {0}")]
    Invalid(&'static str),
    /// Other users may read the cookie file.
    #[error(
        "cookie file {path} is readable by other users (mode {mode:o}): run `chmod 600 {path}`"
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The cookie file could not be read or created.
    #[error("cookie file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// No home directory to keep the default cookie file in.
    #[error("no cookie given and $HOME is not set: pass a cookie or a cookie file")]
    NoHome,
}

impl Cookie {
    /// A cookie from an explicit value (e.g. a `--cookie` flag).
    pub fn new(value: impl Into<String>) -> Result<Self, CookieError> {
        let value = value.into();
        let value = value.trim();
        if value.is_empty() {
            return Err(CookieError::Invalid("it is empty"));
        }
        if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(CookieError::Invalid(
                "it contains whitespace or control characters",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The explicit value if given, else `$OTP_COOKIE`, else the cookie file at `file`
    /// (or `~/.otp.cookie`), created if missing.
    pub fn resolve(explicit: Option<&str>, file: Option<&Path>) -> Result<Self, CookieError> {
        if let Some(value) = explicit {
            return Self::new(value);
        }
        if let Ok(value) = std::env::var(COOKIE_ENV) {
            return Self::new(value);
        }
        match file {
            Some(path) => Self::from_file(path),
            None => Self::from_file(&default_file()?),
        }
    }

    /// Reads the cookie file, creating it with a fresh random cookie and mode 0600 if it does
    /// not exist. A file that group or others may read is refused.
    pub fn from_file(path: &Path) -> Result<Self, CookieError> {
        let io = |source| CookieError::Io {
            path: path.to_owned(),
            source,
        };
        match std::fs::metadata(path) {
            Ok(meta) => {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(CookieError::Exposed {
                        path: path.to_owned(),
                        mode,
                    });
                }
                Self::new(std::fs::read_to_string(path).map_err(io)?)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let cookie = Self::random();
                // `create_new` so that two nodes starting at once cannot both write: the
                // loser reads the winner's file.
                let created = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path);
                match created {
                    Ok(mut file) => {
                        file.write_all(cookie.0.as_bytes()).map_err(io)?;
                        Ok(cookie)
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::from_file(path)
                    }
                    Err(error) => Err(io(error)),
                }
            }
            Err(error) => Err(io(error)),
        }
    }

    /// 128 random bits, hex encoded.
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        // The OS random source failing is not recoverable for a security secret.
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        Self(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The secret itself: for deriving keys from it (keep it out of logs; `Debug` never
    /// shows it).
    pub fn secret(&self) -> &str {
        &self.0
    }
}

fn default_file() -> Result<PathBuf, CookieError> {
    let home = std::env::var_os("HOME").ok_or(CookieError::NoHome)?;
    Ok(Path::new(&home).join(COOKIE_FILE_NAME))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("otp-cookie-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("cookie")
    }

    #[test]
    fn a_missing_file_is_created_private_and_reused() {
        let path = scratch("create");
        let first = Cookie::from_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(first.secret().len(), 32, "128 bits in hex");
        assert_eq!(Cookie::from_file(&path).unwrap(), first);
        assert_ne!(Cookie::random(), first);
    }

    #[test]
    fn a_file_others_can_read_is_refused() {
        let path = scratch("exposed");
        std::fs::write(&path, "secret").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = Cookie::from_file(&path).unwrap_err();
        assert!(error.to_string().contains("chmod 600"), "{error}");
    }

    #[test]
    fn explicit_values_win_and_bad_ones_are_refused() {
        assert_eq!(
            Cookie::resolve(Some("abc"), Some(Path::new("/nonexistent"))).unwrap(),
            Cookie::new("abc").unwrap()
        );
        assert!(Cookie::new("").is_err());
        assert!(Cookie::new("two words").is_err());
        assert_eq!(
            format!("{:?}", Cookie::new("hidden").unwrap()),
            "Cookie(..)"
        );
    }
}
