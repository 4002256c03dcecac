//! Where the output goes: a local folder or `s3://bucket/prefix`, and how to reach it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, RetryConfig};

use crate::error::{Result, StoreError};

/// The root of an output dataset, as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputRoot {
    /// A folder on a local (or shared network) file system; created if missing.
    Local(PathBuf),
    /// `s3://bucket/prefix`: objects under `prefix/` in `bucket`.
    S3 { bucket: String, prefix: String },
}

impl OutputRoot {
    /// Parses `s3://bucket[/prefix]` (also `s3a://`) or a local path (`file://` allowed).
    pub fn parse(s: &str) -> Result<OutputRoot> {
        let s = s.trim();
        if s.is_empty() {
            return Err(StoreError::root(s, "empty output root"));
        }
        for scheme in ["s3://", "s3a://"] {
            if let Some(rest) = s.strip_prefix(scheme) {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(StoreError::root(s, "no bucket name after s3://"));
                }
                let prefix = prefix.trim_matches('/').to_string();
                // Validate early: object_store rejects empty segments, `.` and `..`.
                Path::parse(&prefix).map_err(|e| StoreError::root(s, e.to_string()))?;
                return Ok(OutputRoot::S3 {
                    bucket: bucket.to_string(),
                    prefix,
                });
            }
        }
        if let Some((scheme, _)) = s.split_once("://") {
            if scheme != "file" {
                return Err(StoreError::root(
                    s,
                    format!(
                        "unsupported scheme {scheme}:// (use a local path or s3://bucket/prefix)"
                    ),
                ));
            }
        }
        Ok(OutputRoot::Local(PathBuf::from(
            s.strip_prefix("file://").unwrap_or(s),
        )))
    }

    /// The root as a URL-like string: the local path, or `s3://bucket/prefix`.
    pub fn display(&self) -> String {
        match self {
            OutputRoot::Local(p) => p.display().to_string(),
            OutputRoot::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}"),
            OutputRoot::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        }
    }

    /// Whether this is a local folder (commits by rename) rather than S3 (commits by PUT).
    pub fn is_local(&self) -> bool {
        matches!(self, OutputRoot::Local(_))
    }
}

impl std::fmt::Display for OutputRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

/// How to reach the root.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Retries of failed S3 requests. The default retries 10 times over up to 3 minutes;
    /// tests use a few retries over a few seconds so failures are quick.
    pub retry: RetryConfig,
    /// S3 settings applied after the environment, as object_store config keys and values
    /// (`aws_endpoint`, `aws_access_key_id`, `aws_allow_http`, ...): they win over env vars.
    pub s3_config: Vec<(String, String)>,
}

impl StoreOptions {
    /// Few and short retries: for tests and for probing a root that may not exist.
    pub fn quick_retries() -> Self {
        StoreOptions {
            retry: RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(5),
                backoff: object_store::BackoffConfig {
                    init_backoff: Duration::from_millis(50),
                    max_backoff: Duration::from_millis(500),
                    base: 2.0,
                },
            },
            s3_config: Vec::new(),
        }
    }

    /// Adds one S3 setting (see [`StoreOptions::s3_config`]).
    pub fn with_s3(mut self, key: &str, value: impl Into<String>) -> Self {
        self.s3_config.push((key.to_string(), value.into()));
        self
    }
}

/// An opened root: the object store and the prefix inside it every path starts with.
pub(crate) struct Opened {
    pub store: Arc<dyn ObjectStore>,
    /// The same root for the small coordination objects (leases, claims, locks): on local
    /// disk without fsync (they matter only while their writers live, see PROTOCOL.md) and
    /// removing folders left empty (a claim folder per task); on S3 the same client.
    pub coord: Arc<dyn ObjectStore>,
    pub prefix: Path,
    /// The local folder, canonicalised, for a local root.
    pub local: Option<PathBuf>,
}

pub(crate) fn open(root: &OutputRoot, opts: &StoreOptions) -> Result<Opened> {
    match root {
        OutputRoot::Local(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::root(root.display(), format!("cannot create the folder: {e}"))
            })?;
            let dir = std::fs::canonicalize(dir)?;
            // fsync: a commit that returned survives a crash of the machine, not only of
            // the process.
            let fs = LocalFileSystem::new_with_prefix(&dir)?.with_fsync(true);
            let coord = LocalFileSystem::new_with_prefix(&dir)?.with_automatic_cleanup(true);
            Ok(Opened {
                store: Arc::new(fs),
                coord: Arc::new(coord),
                prefix: Path::default(),
                local: Some(dir),
            })
        }
        OutputRoot::S3 { bucket, prefix } => {
            let b = s3_builder(bucket, opts, |k| std::env::var(k).ok())
                .map_err(|msg| StoreError::root(root.display(), msg))?;
            let s3 = b
                .build()
                .map_err(|e| StoreError::root(root.display(), e.to_string()))?;
            let s3: Arc<dyn ObjectStore> = Arc::new(s3);
            Ok(Opened {
                coord: s3.clone(),
                store: s3,
                prefix: Path::from(prefix.as_str()),
                local: None,
            })
        }
    }
}

/// Makes rustls's ring provider the process's TLS crypto (HTTPS to S3): the dependencies
/// are built without aws-lc-rs, whose C build lengthened a first build, so rustls has no
/// default provider until one is installed. Installing it again (or after another crate
/// did) changes nothing.
fn use_ring_for_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The S3 client settings: `AmazonS3Builder::from_env()` (AWS_ACCESS_KEY_ID,
/// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_DEFAULT_REGION,
/// AWS_ENDPOINT_URL, AWS_ENDPOINT, AWS_ALLOW_HTTP, ...) plus what it leaves out:
/// - AWS_ENDPOINT_URL_S3 (the service-specific endpoint of the AWS CLI) when no endpoint is set;
/// - plain `http://` endpoints (MinIO, moto, Ceph on a cluster) allow HTTP by themselves,
///   instead of failing with "URL scheme is not allowed";
/// - the explicit `s3_config` settings, last.
///
/// Path-style requests stay the default (object_store's), which S3-compatible servers need.
fn s3_builder(
    bucket: &str,
    opts: &StoreOptions,
    env: impl Fn(&str) -> Option<String>,
) -> std::result::Result<AmazonS3Builder, String> {
    use_ring_for_tls();
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(opts.retry.clone());
    if b.get_config_value(&AmazonS3ConfigKey::Endpoint).is_none() {
        if let Some(e) = env("AWS_ENDPOINT_URL_S3") {
            b = b.with_endpoint(e);
        }
    }
    for (k, v) in &opts.s3_config {
        let key: AmazonS3ConfigKey = k
            .to_ascii_lowercase()
            .parse()
            .map_err(|e| format!("S3 setting {k}: {e}"))?;
        b = b.with_config(key, v);
    }
    let endpoint = b.get_config_value(&AmazonS3ConfigKey::Endpoint);
    let allow_http_set = env("AWS_ALLOW_HTTP").is_some()
        || opts
            .s3_config
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("aws_allow_http"));
    if !allow_http_set && endpoint.is_some_and(|e| e.starts_with("http://")) {
        b = b.with_allow_http(true);
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_roots() {
        assert_eq!(
            OutputRoot::parse("s3://b/some/prefix/").unwrap(),
            OutputRoot::S3 {
                bucket: "b".into(),
                prefix: "some/prefix".into()
            }
        );
        assert_eq!(
            OutputRoot::parse("s3://b").unwrap(),
            OutputRoot::S3 {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            OutputRoot::parse("results/x").unwrap(),
            OutputRoot::Local("results/x".into())
        );
        assert_eq!(
            OutputRoot::parse("file:///tmp/x").unwrap(),
            OutputRoot::Local("/tmp/x".into())
        );
        assert!(OutputRoot::parse("s3:///x").is_err());
        assert!(OutputRoot::parse("gs://b/x").is_err());
        assert!(OutputRoot::parse("").is_err());
        assert_eq!(
            OutputRoot::parse("s3://b/p").unwrap().to_string(),
            "s3://b/p"
        );
    }

    #[test]
    fn http_endpoint_allows_http_and_explicit_settings_win() {
        let opts = StoreOptions::default().with_s3("aws_endpoint", "http://127.0.0.1:1");
        let b = s3_builder("b", &opts, |_| None).unwrap();
        assert_eq!(
            b.get_config_value(&AmazonS3ConfigKey::Endpoint).as_deref(),
            Some("http://127.0.0.1:1")
        );
        assert_eq!(
            b.get_config_value(&AmazonS3ConfigKey::Client(
                object_store::ClientConfigKey::AllowHttp
            ))
            .as_deref(),
            Some("true")
        );
        let b = s3_builder("b", &StoreOptions::default(), |k| {
            (k == "AWS_ENDPOINT_URL_S3").then(|| "https://s3.example".to_string())
        })
        .unwrap();
        // from_env may have set an endpoint in the test's environment; only check the
        // fallback when it did not.
        if std::env::var("AWS_ENDPOINT").is_err() && std::env::var("AWS_ENDPOINT_URL").is_err() {
            assert_eq!(
                b.get_config_value(&AmazonS3ConfigKey::Endpoint).as_deref(),
                Some("https://s3.example")
            );
        }
        assert!(s3_builder(
            "b",
            &StoreOptions::default().with_s3("nonsense", "1"),
            |_| None
        )
        .is_err());
    }
}
