//! The registry of reproduce tasks.

pub mod basics;
pub mod classifier;
pub mod nowcast;
pub mod shapes;

use crate::context::{Context, TaskOutput};

/// One task of `reproduce`.
#[derive(Debug)]
pub struct Task {
    /// Name used by `--only`.
    pub name: &'static str,
    /// One-line title for the table and the report.
    pub title: &'static str,
    /// Runs the task.
    pub run: fn(&Context) -> anyhow::Result<TaskOutput>,
}

/// Every task, in the order `reproduce` runs them.
pub const ALL: &[Task] = &[
    Task {
        name: "t1",
        title: "T1: simplified residual block, forward and backward",
        run: basics::run_t1,
    },
    Task { name: "t2", title: "T2: feature-map sizes of the two-branch CNN", run: shapes::run_t2 },
    Task { name: "t3", title: "T3: softmax cross-entropy gradient is P - y", run: basics::run_t3 },
    Task { name: "ot1", title: "OT1: two 3x3 convolutions against one 5x5", run: shapes::run_ot1 },
    Task {
        name: "published",
        title: "Calculator against published AlexNet, VGG-16, ResNet-18 counts",
        run: shapes::run_published,
    },
    Task {
        name: "two-layer",
        title: "Two-layer network: reference checks TODO#1-7",
        run: classifier::run_toy,
    },
    Task {
        name: "mnist",
        title: "Two-layer network on MNIST: hyperparameter search TODO#8",
        run: classifier::run_mnist,
    },
    Task {
        name: "nowcast",
        title: "Rainfall nowcasting: models, schedules, baselines",
        run: nowcast::run,
    },
];
