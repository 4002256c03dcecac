//! What the planner knows about an input image before any tensor exists: its shape as the
//! synthesis will see it.
use std::fmt;

/// An image's shape as loaded for a task (plenoptic's `load_images(paths, as_gray)`):
/// channels (1 gray or `as_gray`; otherwise 3 colour, 4 with alpha), height and width in
/// pixels. A task's input tensor is `(1, channels, height, width)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageShape {
    /// 1 for gray (every file loaded `as_gray`); otherwise 3 for colour (a gray file is
    /// repeated into 3), 2 for gray+alpha, 4 for RGBA.
    pub channels: i64,
    /// Rows.
    pub height: i64,
    /// Columns.
    pub width: i64,
}

impl ImageShape {
    /// The NCHW shape of a batch of one: `[1, C, H, W]`.
    pub fn nchw(&self) -> [i64; 4] {
        [1, self.channels, self.height, self.width]
    }

    /// Number of values, C·H·W (the dimension eigendistortions live in).
    pub fn numel(&self) -> i64 {
        self.channels * self.height * self.width
    }
}

impl fmt::Display for ImageShape {
    /// `1x64x64` (C×H×W).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}
