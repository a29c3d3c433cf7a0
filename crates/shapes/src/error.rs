//! Errors raised while parsing, building and analysing architecture descriptions.

use std::fmt;
use std::path::PathBuf;

use crate::graph::Shape;

/// Result alias for this crate.
pub type Result<T, E = ShapeError> = std::result::Result<T, E>;

/// Location of a problem: the line of a text description (absent for graphs from
/// [`GraphBuilder`](crate::GraphBuilder)) and the node being defined there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// 1-based line number in the description text.
    pub line: Option<usize>,
    /// Name of the node; empty when the line failed before its name was read.
    pub node: String,
}

impl Site {
    pub(crate) fn new(line: Option<usize>, node: &str) -> Self {
        Self { line, node: node.to_string() }
    }
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.node.is_empty()) {
            (Some(line), true) => write!(f, "line {line}"),
            (Some(line), false) => write!(f, "line {line}, node `{}`", self.node),
            (None, _) => write!(f, "node `{}`", self.node),
        }
    }
}

/// Error of this crate. The [`ErrorKind`] is boxed so that `Result<T, ShapeError>` stays
/// one pointer wide for the crates that wrap it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(transparent)]
pub struct ShapeError(Box<ErrorKind>);

impl ShapeError {
    /// Returns the kind of problem, with the site and the values involved.
    pub fn kind(&self) -> &ErrorKind {
        &self.0
    }
}

impl From<ErrorKind> for ShapeError {
    fn from(kind: ErrorKind) -> Self {
        Self(Box::new(kind))
    }
}

/// Everything that can be wrong with a description. Each variant names its [`Site`] and,
/// where it applies, the expected and the found value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ErrorKind {
    /// The line does not follow `name = op(inputs, key=value, ...)`.
    #[error("{site}: syntax error, expected {expected}, found {found}")]
    Syntax { site: Site, expected: String, found: String },

    /// An operation name that the parser does not recognise.
    #[error("{site}: unknown operation `{op}`; known operations: {known}")]
    UnknownOperation { site: Site, op: String, known: String },

    /// A `key=value` argument that the operation does not accept.
    #[error("{site}: `{op}` has no argument `{argument}`; it accepts {allowed}")]
    UnknownArgument { site: Site, op: String, argument: String, allowed: String },

    /// The same argument given twice, perhaps under two of its spellings.
    #[error("{site}: argument `{argument}` is given more than once")]
    DuplicateArgument { site: Site, argument: String },

    /// A required argument is absent.
    #[error("{site}: `{op}` requires the argument `{argument}`")]
    MissingArgument { site: Site, op: String, argument: String },

    /// An argument value outside what the operation accepts.
    #[error("{site}: invalid `{argument}`, expected {expected}, found {found}")]
    InvalidArgument { site: Site, argument: String, expected: String, found: String },

    /// Two nodes with one name.
    #[error("{site}: the name is already used by the node defined at {first}")]
    DuplicateName { site: Site, first: Site },

    /// An input name that no node has.
    #[error("{site}: input `{input}` is not defined; define it on an earlier line")]
    UndefinedInput { site: Site, input: String },

    /// An input defined by this node itself or by a later one. Inputs must come from
    /// earlier nodes, which is what keeps every description free of cycles.
    #[error("{site}: input `{input}` is defined at {defined_at}, not before this node; inputs must come from earlier lines, so a cycle cannot form")]
    ForwardReference { site: Site, input: String, defined_at: Site },

    /// The first node has no input to default to.
    #[error("{site}: `{op}` has no input; the first node must be `input(...)` or name its input")]
    MissingInput { site: Site, op: String },

    /// The operation received the wrong number of inputs.
    #[error("{site}: `{op}` expects {expected} input(s), found {found}")]
    InputCount { site: Site, op: String, expected: String, found: usize },

    /// An input of the wrong kind, such as a feature vector where a feature map is needed.
    #[error("{site}: `{op}` expects {expected} from `{input}`, found shape {found}")]
    WrongInputKind { site: Site, op: String, input: String, expected: String, found: Shape },

    /// An output dimension that would be zero or negative.
    #[error("{site}: `{op}` output {dimension} would be {value}: {formula}")]
    NonPositiveSize { site: Site, op: String, dimension: String, value: i128, formula: String },

    /// Inputs of a merge (`concat`, `add`) that do not fit together.
    #[error("{site}: `{op}` needs equal {what}: `{first}` has {expected}, `{input}` has {found}")]
    Mismatch {
        site: Site,
        op: String,
        what: String,
        first: String,
        expected: String,
        input: String,
        found: String,
    },

    /// A count that does not fit in 64 bits.
    #[error("{site}: {quantity} does not fit in 64 bits")]
    Overflow { site: Site, quantity: String },

    /// A description without any node.
    #[error("the description defines no nodes")]
    Empty,

    /// A name asked of a [`Summary`](crate::Summary) that it has no row for.
    #[error("no node named `{name}` in the summary")]
    UnknownNode { name: String },

    /// A description file could not be read.
    #[error("cannot read {path}: {message}")]
    Io { path: PathBuf, message: String },

    /// An error inside a description file, with the file's path.
    ///
    /// The inner error is part of the message and not reported again as a `source`, so chained
    /// printers such as anyhow's `{:#}` show it once.
    #[error("{path}: {error}")]
    InFile { path: PathBuf, error: ShapeError },
}
