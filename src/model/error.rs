//! Errors for model inputs that come from user files (video frames, waveforms, token ids) and
//! do not fit the loaded model; raised instead of letting a tensor op panic.

/// An input tensor or sequence the model cannot process.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Wrong rank or sizes.
    #[error("{what}: expected {expected}, got shape {shape:?}")]
    Shape {
        /// Which input.
        what: &'static str,
        /// What the model expects, in words.
        expected: String,
        /// The shape received.
        shape: Vec<usize>,
    },
    /// Values out of range or an input too short to produce any output.
    #[error("{what}: {reason}")]
    Invalid {
        /// Which input.
        what: &'static str,
        /// Why it is refused.
        reason: String,
    },
}
