//! Feature-map shapes, parameter counts, multiply-accumulates (MACs) and receptive fields of
//! convolutional and recurrent architectures, from a short text description or from Rust
//! code.
//!
//! ```
//! let text = "
//!     x = input(c=3, h=100, w=100)
//!     A = conv2d(x, out=5, k=3)        # 3x3, stride 1, no padding: 98 x 98
//!     B = conv2d(A, out=10, k=3)       # 96 x 96
//!     C = maxpool(B, k=5, s=2)         # floor((96 - 5) / 2) + 1 = 46
//! ";
//! let summary = handgrad_shapes::analyze(&handgrad_shapes::parse(text)?)?;
//! assert_eq!(summary.row("C").unwrap().shape.to_string(), "10 x 46 x 46");
//! assert_eq!(summary.row("B").unwrap().receptive_field.unwrap().height.size, 5);
//! assert!(summary.render_table().contains("Total params: 600"));
//! # Ok::<(), handgrad_shapes::ShapeError>(())
//! ```
//!
//! - [`parse`] / [`parse_file`] read the format described in `docs/shapes-format.md`.
//! - [`GraphBuilder`] builds the same [`Graph`] from code.
//! - [`analyze`] (or [`analyze_file`]) returns a [`Summary`]: per-node [`Row`]s, totals, [`Summary::path_total`]
//!   and [`Summary::render_table`].
//!
//! Counting conventions are in `docs/shapes-ops.md`. A MAC is one multiply-accumulate of a
//! convolution, linear layer or GRU matrix product. Bias additions, pooling, activations,
//! batch normalisation and residual sums count none, because torchvision's published
//! figures count them so. Batch-norm running statistics are buffers, not parameters.

mod analyze;
mod builder;
mod error;
mod field;
mod graph;
mod parse;
mod summary;

pub use analyze::{analyze, analyze_file};
pub use builder::GraphBuilder;
pub use error::{ErrorKind, Result, ShapeError, Site};
pub use field::{AxisField, ReceptiveField};
pub use graph::{Activation, Conv2dSpec, Graph, Node, Op, Padding, Pair, PoolSpec, Shape};
pub use parse::{parse, parse_file};
pub use summary::{group_digits, PathTotals, Row, Summary};
