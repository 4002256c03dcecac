//! Image entries of a spec: a file, a glob or a directory, relative to the spec file (a
//! path naming an existing file or directory is literal, glob characters or not), expanded
//! to a sorted list of PGM/PPM/PNG/JPEG files; and for each file the content digest and the
//! header's size and channels, read from the bytes already read for the digest.
use crate::canonical::sha256_hex;
use serde::Serialize;
use std::io::Cursor;
use std::path::{Component, Path, PathBuf};
use synthsweep_core::ImageShape;

/// The file extensions read as images (compared without case).
pub const IMAGE_EXTENSIONS: [&str; 5] = ["pgm", "ppm", "png", "jpg", "jpeg"];

/// One image file named by a spec, before its bytes are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageFile {
    /// Canonical absolute path: what is read, and what two entries are compared by.
    pub abs: PathBuf,
    /// The path as the spec's folder sees it (`images/einstein_64.pgm`), for labels.
    pub display: String,
    /// The file name (`einstein_64.pgm`).
    pub name: String,
}

/// An image of a task: where it is, what it is called, and the digest of its bytes.
///
/// Only `name` and `sha256` enter task identity (see [`crate::Task::canonical_json`]):
/// moving the folder keeps ids; renaming the file or changing its bytes changes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageRef {
    /// Absolute path of the file at planning time.
    pub path: PathBuf,
    /// The path relative to the spec file's folder, as used in labels and matches.
    pub display: String,
    /// The file name.
    pub name: String,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub sha256: String,
    /// Channels stored in the file (from its header): 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
    /// A plain gray file (1) loads the same whatever `as_gray` says, except that
    /// `as_gray = false` repeats it into three channels.
    pub channels: u8,
    /// Height in pixels, from the file's header.
    pub height: i64,
    /// Width in pixels, from the file's header.
    pub width: i64,
}

impl ImageRef {
    /// The shape a task sees, as the model layer loads the file
    /// (`image_io::load_image_with`): one channel with `as_gray`; otherwise three for a
    /// gray file (repeated), the file's own channels for any other.
    pub fn loaded_shape(&self, as_gray: bool) -> ImageShape {
        let channels = match (as_gray, self.channels) {
            (true, _) => 1,
            (false, 1) => 3,
            (false, c) => i64::from(c),
        };
        ImageShape {
            channels,
            height: self.height,
            width: self.width,
        }
    }
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
        .unwrap_or(false)
}

fn has_glob_chars(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Removes `.` components and a trailing separator, without touching the file system.
fn tidy(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

fn display_of(base: &Path, path: &Path) -> String {
    let path = tidy(path);
    let shown = path.strip_prefix(tidy(base)).unwrap_or(&path);
    shown.to_string_lossy().replace('\\', "/")
}

fn image_file(base: &Path, path: &Path) -> Result<ImageFile, String> {
    let abs = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(ImageFile {
        abs,
        display: display_of(base, path),
        name,
    })
}

const KINDS: &str = "PGM, PPM, PNG or JPEG (.pgm, .ppm, .png, .jpg, .jpeg)";

/// Expands one entry (file, glob or directory, relative to `base`) into image files, sorted
/// by path. An entry naming an existing file or directory is that file or directory, even
/// when its name holds glob characters (`a[1].pgm`); otherwise `*`, `?` and `[...]` make it
/// a glob. An entry that yields no image is an error.
pub(crate) fn expand(base: &Path, entry: &str) -> Result<Vec<ImageFile>, String> {
    if entry.trim().is_empty() {
        return Err("expected an image file, glob or directory, got an empty string".into());
    }
    let joined = base.join(entry);
    if has_glob_chars(entry) && !joined.exists() {
        let (mut found, others) = glob_images(base, entry)?;
        if found.is_empty() {
            let why = if others > 0 {
                format!(" (it matches {others} file(s), none of them {KINDS})")
            } else {
                String::new()
            };
            let hint = escaped_folder_hint(base, entry).unwrap_or_default();
            return Err(format!(
                "the glob `{entry}` matches no image in {}{why}, and no file or directory \
                 has that name{hint}",
                base.display()
            ));
        }
        found.sort();
        return found.iter().map(|p| image_file(base, p)).collect();
    }
    if joined.is_dir() {
        let read = std::fs::read_dir(&joined)
            .map_err(|e| format!("cannot list directory {}: {e}", joined.display()))?;
        let mut found: Vec<PathBuf> = read
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && is_image(p))
            .collect();
        if found.is_empty() {
            return Err(format!(
                "the directory `{entry}` ({}) holds no {KINDS} file",
                joined.display()
            ));
        }
        found.sort();
        return found.iter().map(|p| image_file(base, p)).collect();
    }
    if !joined.exists() {
        return Err(format!(
            "no such image file or directory: `{entry}` (looked for {})",
            joined.display()
        ));
    }
    if !is_image(&joined) {
        return Err(format!("`{entry}` is not a {KINDS} file"));
    }
    Ok(vec![image_file(base, &joined)?])
}

/// The image files (and the count of other files) that `entry`, a glob relative to `base`,
/// matches; `base` itself is taken literally.
fn glob_images(base: &Path, entry: &str) -> Result<(Vec<PathBuf>, usize), String> {
    let pattern = if Path::new(entry).is_absolute() {
        entry.to_string()
    } else {
        let escaped = glob::Pattern::escape(&base.to_string_lossy());
        format!("{escaped}/{entry}")
    };
    let paths = glob::glob(&pattern).map_err(|e| format!("`{entry}` is not a valid glob: {e}"))?;
    let mut found = Vec::new();
    let mut others = 0usize;
    for p in paths {
        let p = p.map_err(|e| format!("while matching `{entry}`: {e}"))?;
        if !p.is_file() {
            continue;
        }
        if is_image(&p) {
            found.push(p);
        } else {
            others += 1;
        }
    }
    Ok((found, others))
}

/// For a glob that matched nothing and runs through an existing folder whose name holds
/// glob characters (`imgs/dir[1]/*.pgm` with a folder `imgs/dir[1]`, where `[1]` matched
/// only `dir1`): the sentence pointing to the same glob with that folder escaped
/// (`imgs/dir[[]1]/*.pgm`), when that one matches images. Empty otherwise.
fn escaped_folder_hint(base: &Path, entry: &str) -> Option<String> {
    let path = Path::new(entry);
    for folder in path.ancestors().skip(1) {
        let name = folder.to_string_lossy();
        if name.is_empty() || !has_glob_chars(&name) || !base.join(folder).is_dir() {
            continue;
        }
        let rest = path
            .strip_prefix(folder)
            .ok()?
            .to_string_lossy()
            .into_owned();
        let escaped = format!("{}/{rest}", glob::Pattern::escape(&name));
        let (found, _) = glob_images(base, &escaped).ok()?;
        if !found.is_empty() {
            return Some(format!(
                "; the folder `{name}` exists, and glob characters in it are read as a \
                 pattern: `{escaped}` matches {} image(s) in it (`[[]` is a literal `[`, \
                 `[]]` a `]`, `[*]` a `*`, `[?]` a `?`)",
                found.len()
            ));
        }
    }
    None
}

/// Reads a file, checks that its bytes look like the image type its extension says, reads
/// its header (size, colour type), and returns their SHA-256. The error is a message (the
/// caller knows the key path).
pub(crate) fn digest(file: &ImageFile) -> Result<ImageRef, std::io::Error> {
    let bytes = std::fs::read(&file.abs)?;
    let ext = file
        .abs
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let ok = match ext.as_str() {
        "pgm" => bytes.starts_with(b"P5") || bytes.starts_with(b"P2"),
        "ppm" => bytes.starts_with(b"P6") || bytes.starts_with(b"P3"),
        "png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        _ => bytes.starts_with(b"\xff\xd8"),
    };
    let invalid = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidData, msg);
    if !ok {
        return Err(invalid(format!(
            "its bytes are not a {} image",
            ext.to_ascii_uppercase()
        )));
    }
    let format = match ext.as_str() {
        "pgm" | "ppm" => image::ImageFormat::Pnm,
        "png" => image::ImageFormat::Png,
        _ => image::ImageFormat::Jpeg,
    };
    let (width, height, channels) = header(&bytes, format).map_err(|e| {
        invalid(format!(
            "its {} header cannot be read: {e}",
            ext.to_ascii_uppercase()
        ))
    })?;
    if width == 0 || height == 0 {
        return Err(invalid(format!("it is empty ({width}x{height} pixels)")));
    }
    Ok(ImageRef {
        path: file.abs.clone(),
        display: file.display.clone(),
        name: file.name.clone(),
        sha256: sha256_hex(&bytes),
        channels,
        height: i64::from(height),
        width: i64::from(width),
    })
}

/// Width, height and the number of channels stored, from the header only (nothing decoded).
fn header(bytes: &[u8], format: image::ImageFormat) -> image::ImageResult<(u32, u32, u8)> {
    use image::ImageDecoder;
    let decoder = image::ImageReader::with_format(Cursor::new(bytes), format).into_decoder()?;
    let (w, h) = decoder.dimensions();
    Ok((w, h, decoder.color_type().channel_count()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_relative_to_the_spec_folder() {
        assert_eq!(
            display_of(Path::new("/a/b"), Path::new("/a/b/./images/x.pgm")),
            "images/x.pgm"
        );
        assert_eq!(
            display_of(Path::new("/a/b"), Path::new("/c/x.pgm")),
            "/c/x.pgm"
        );
    }
}
