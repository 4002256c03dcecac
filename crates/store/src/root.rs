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

    /// Checks, before any work and creating nothing, that a writer can use this root: an
    /// S3 root must name a source of credentials (the environment as [`Store::open`] reads
    /// it; see `check_credentials`), a local folder must be writable, or, when it does not
    /// exist yet, its nearest existing parent must be a folder this process can create files
    /// in. Local folders are tested by creating and removing a probe file, which also finds
    /// read-only file systems and folders root cannot write (`/sys`). Either failure is one
    /// [`StoreError::Root`] naming the root and what is wrong: bad input, not a storage
    /// failure.
    ///
    /// [`Store::open`]: crate::Store::open
    pub fn check_writable(&self) -> Result<()> {
        match self {
            OutputRoot::S3 { bucket, .. } => {
                let b = s3_builder(bucket, &StoreOptions::default(), |k| std::env::var(k).ok())
                    .map_err(|msg| StoreError::root(self.display(), msg))?;
                check_credentials(&b).map_err(|msg| {
                    StoreError::root(self.display(), format!("bucket {bucket}: {msg}"))
                })
            }
            OutputRoot::Local(dir) => {
                let mut existing = dir.as_path();
                while !existing.exists() {
                    match existing.parent() {
                        Some(p) if !p.as_os_str().is_empty() => existing = p,
                        _ => {
                            existing = std::path::Path::new(".");
                            break;
                        }
                    }
                }
                let what = if existing == dir.as_path() {
                    "cannot write to this folder".to_string()
                } else {
                    format!("cannot create the folder in {}", existing.display())
                };
                if !existing.is_dir() {
                    return Err(StoreError::root(
                        self.display(),
                        format!("{what}: {} is not a folder", existing.display()),
                    ));
                }
                let probe = existing.join(format!(
                    ".synthsweep-write-probe-{}-{}",
                    std::process::id(),
                    uuid::Uuid::new_v4().simple()
                ));
                std::fs::write(&probe, b"")
                    .and_then(|()| std::fs::remove_file(&probe))
                    .map_err(|e| {
                        StoreError::root(
                            self.display(),
                            format!("{what} ({e}); give a folder you can write to"),
                        )
                    })
            }
        }
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
    /// Local roots: the coordination objects again, without the automatic removal of
    /// folders left empty, for deleting many at once (see `Store::delete_many_coord`).
    pub coord_fs: Option<Arc<LocalFileSystem>>,
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
                coord_fs: Some(Arc::new(LocalFileSystem::new_with_prefix(&dir)?)),
                prefix: Path::default(),
                local: Some(dir),
            })
        }
        OutputRoot::S3 { bucket, prefix } => {
            let b = s3_builder(bucket, opts, |k| std::env::var(k).ok())
                .map_err(|msg| StoreError::root(root.display(), msg))?;
            check_credentials(&b).map_err(|msg| {
                StoreError::root(root.display(), format!("bucket {bucket}: {msg}"))
            })?;
            let s3 = b
                .build()
                .map_err(|e| StoreError::root(root.display(), e.to_string()))?;
            let s3: Arc<dyn ObjectStore> = Arc::new(s3);
            Ok(Opened {
                coord: s3.clone(),
                coord_fs: None,
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

/// Checks, without any request, that the S3 settings name a way to sign requests. Without
/// one, object_store would ask the EC2 instance metadata service (169.254.169.254) for
/// credentials, which off EC2 ends after its retries in an error that names neither the
/// bucket nor what is missing. Accepted, as object_store takes them:
/// - AWS_ACCESS_KEY_ID with AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN if temporary);
/// - AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN (Kubernetes service accounts);
/// - AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, or AWS_CONTAINER_CREDENTIALS_FULL_URI with
///   AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (ECS tasks, EKS pod identity);
/// - AWS_METADATA_ENDPOINT: an explicit choice of instance-profile credentials (on EC2,
///   `http://169.254.169.254`);
/// - AWS_SKIP_SIGNATURE=true: unsigned requests (a public bucket).
///
/// The same names work lower-case as `StoreOptions::s3_config` keys.
fn check_credentials(b: &AmazonS3Builder) -> std::result::Result<(), String> {
    use AmazonS3ConfigKey as K;
    let set = |k: K| b.get_config_value(&k).is_some_and(|v| !v.trim().is_empty());
    match (set(K::AccessKeyId), set(K::SecretAccessKey)) {
        (true, true) => return Ok(()),
        (true, false) => {
            return Err("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".into())
        }
        (false, true) => {
            return Err("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not".into())
        }
        (false, false) => {}
    }
    let other_source = (set(K::WebIdentityTokenFile) && set(K::RoleArn))
        || set(K::ContainerCredentialsRelativeUri)
        || (set(K::ContainerCredentialsFullUri) && set(K::ContainerAuthorizationTokenFile))
        || set(K::MetadataEndpoint)
        || b.get_config_value(&K::SkipSignature).as_deref() == Some("true");
    if other_source {
        return Ok(());
    }
    Err(
        "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus \
         AWS_SESSION_TOKEN for temporary ones), or AWS_WEB_IDENTITY_TOKEN_FILE with \
         AWS_ROLE_ARN, or AWS_CONTAINER_CREDENTIALS_RELATIVE_URI; on EC2 with an instance \
         profile set AWS_METADATA_ENDPOINT=http://169.254.169.254; for a public bucket \
         AWS_SKIP_SIGNATURE=true"
            .into(),
    )
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
    fn s3_without_a_credential_source_is_refused_naming_what_is_missing() {
        let none = AmazonS3Builder::new().with_bucket_name("b");
        let e = check_credentials(&none).unwrap_err();
        assert!(
            e.contains("AWS_ACCESS_KEY_ID") && e.contains("AWS_SECRET_ACCESS_KEY"),
            "{e}"
        );
        let half = AmazonS3Builder::new().with_access_key_id("k");
        let e = check_credentials(&half).unwrap_err();
        assert!(e.contains("AWS_SECRET_ACCESS_KEY is not"), "{e}");
        let half = AmazonS3Builder::new().with_secret_access_key("s");
        assert!(check_credentials(&half)
            .unwrap_err()
            .contains("AWS_ACCESS_KEY_ID is not"));
        let with = |k: AmazonS3ConfigKey, v: &str, b: AmazonS3Builder| b.with_config(k, v);
        use AmazonS3ConfigKey as K;
        for ok in [
            AmazonS3Builder::new()
                .with_access_key_id("k")
                .with_secret_access_key("s"),
            with(K::SkipSignature, "true", AmazonS3Builder::new()),
            with(
                K::MetadataEndpoint,
                "http://169.254.169.254",
                AmazonS3Builder::new(),
            ),
            with(
                K::ContainerCredentialsRelativeUri,
                "/v2/x",
                AmazonS3Builder::new(),
            ),
            with(
                K::RoleArn,
                "arn:aws:iam::1:role/r",
                with(K::WebIdentityTokenFile, "/tok", AmazonS3Builder::new()),
            ),
        ] {
            assert_eq!(check_credentials(&ok), Ok(()));
        }
        // Half of a pair is not a source.
        let e = check_credentials(&with(K::RoleArn, "arn", AmazonS3Builder::new()));
        assert!(e.is_err());
        let e = check_credentials(&with(K::SkipSignature, "false", AmazonS3Builder::new()));
        assert!(e.is_err());
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
