//! The error type of the classifier crate.

/// Errors raised by the two-layer network, its training and its search.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClassifierError {
    /// An array has a shape the operation cannot use.
    #[error("{op}: {argument} has shape {found:?}, expected {expected}")]
    ShapeMismatch {
        /// Operation that rejected the input.
        op: &'static str,
        /// Argument name, such as `"x"` or `"w2"`.
        argument: &'static str,
        /// Expected shape, in words.
        expected: String,
        /// The shape found.
        found: Vec<usize>,
    },
    /// A label is not a valid class index.
    #[error("{op}: label {label} of sample {sample} is out of range, expected 0..{classes}")]
    LabelOutOfRange {
        /// Operation that rejected the input.
        op: &'static str,
        /// Row of the offending label.
        sample: usize,
        /// The label found.
        label: usize,
        /// Number of classes of the network.
        classes: usize,
    },
    /// An input entry is NaN or infinite.
    #[error("{op}: {argument}[{row}, {column}] is {value}, expected a finite number")]
    NonFinite {
        /// Operation that rejected the input.
        op: &'static str,
        /// Argument name, such as `"x"`.
        argument: &'static str,
        /// Row of the entry.
        row: usize,
        /// Column of the entry.
        column: usize,
        /// The entry.
        value: f64,
    },
    /// A hyperparameter or size is outside its valid range.
    #[error("{name} = {value} is invalid, expected {expected}")]
    InvalidConfig {
        /// Name of the setting, such as `"learning_rate"`.
        name: &'static str,
        /// The value given, formatted.
        value: String,
        /// The valid range, in words.
        expected: &'static str,
    },
    /// The training loss became NaN or infinite, usually because the learning rate is too large.
    #[error("training diverged: loss is {loss} at iteration {iteration}")]
    Diverged {
        /// Iteration whose loss was not finite.
        iteration: usize,
        /// The loss.
        loss: f64,
    },
    /// The loss function rejected its input.
    #[error(transparent)]
    Loss(#[from] handgrad_losses::LossError),
}

/// Result alias for the classifier crate.
pub type Result<T> = std::result::Result<T, ClassifierError>;
