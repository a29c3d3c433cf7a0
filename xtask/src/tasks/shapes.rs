//! Shape-calculator tasks: T2 (feature-map sizes of the two-branch network), OT1 (two 3x3
//! convolutions against one 5x5) and the check of the calculator against torchvision's
//! published AlexNet, VGG-16 and ResNet-18 counts. Also the `shapes FILE` subcommand.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use handgrad_shapes::{analyze_file, group_digits, Row, Shape, Summary};

use crate::context::{Check, Context, TaskOutput};

/// Folder of the shipped architecture descriptions, found from the xtask crate.
fn architectures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../architectures")
}

fn load(file: &str) -> anyhow::Result<Summary> {
    Ok(analyze_file(&architectures_dir().join(file))?)
}

fn row<'a>(summary: &'a Summary, name: &str) -> anyhow::Result<&'a Row> {
    summary.row(name).with_context(|| format!("node `{name}` is missing from the description"))
}

/// A check of a count that must match exactly.
fn exact(name: &str, value: u64, reference: u64, derivation: &str) -> Check {
    Check {
        name: name.to_string(),
        value: group_digits(value),
        reference: format!("{} ({derivation})", group_digits(reference)),
        pass: value == reference,
    }
}

/// Prints the summary table of a description file, for `cargo xtask shapes FILE`.
pub fn shapes_command(path: &Path) -> anyhow::Result<String> {
    Ok(analyze_file(path)?.render_table())
}

/// One layer of the assignment's figure, as the figure states it.
struct FigureLayer {
    node: &'static str,
    op: &'static str,
    input_size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    channels: usize,
}

/// The figure: 100 x 100 x 3 input; branch 1 conv 5@3x3 -> A, conv 10@3x3 -> B,
/// max pool 5x5 stride 2 -> C; branch 2 conv 10@5x5 -> D, conv 5@1x1 -> E.
const FIGURE: &[FigureLayer] = &[
    FigureLayer {
        node: "A",
        op: "conv 3x3",
        input_size: 100,
        kernel: 3,
        stride: 1,
        padding: 0,
        channels: 5,
    },
    FigureLayer {
        node: "B",
        op: "conv 3x3",
        input_size: 98,
        kernel: 3,
        stride: 1,
        padding: 0,
        channels: 10,
    },
    FigureLayer {
        node: "C",
        op: "max pool 5x5",
        input_size: 96,
        kernel: 5,
        stride: 2,
        padding: 0,
        channels: 10,
    },
    FigureLayer {
        node: "D",
        op: "conv 5x5",
        input_size: 100,
        kernel: 5,
        stride: 1,
        padding: 0,
        channels: 10,
    },
    FigureLayer {
        node: "E",
        op: "conv 1x1",
        input_size: 96,
        kernel: 1,
        stride: 1,
        padding: 0,
        channels: 5,
    },
];

/// T2: every feature-map size of the two-branch network, computed by the calculator and
/// checked against `floor((n + 2p - k) / s) + 1` worked by hand.
pub fn run_t2(_ctx: &Context) -> anyhow::Result<TaskOutput> {
    let summary = load("assignment.txt")?;
    let mut output = TaskOutput::default();
    let mut table = String::from(
        "| node | layer | output (C x H x W) | hand formula | params | MACs | receptive field |\n\
         |---|---|---|---|---:|---:|---|\n",
    );

    for layer in FIGURE {
        let (n, k, s, p) = (layer.input_size, layer.kernel, layer.stride, layer.padding);
        let side = (n + 2 * p - k) / s + 1;
        let formula = format!("floor(({n} + 2*{p} - {k}) / {s}) + 1 = {side}");
        let row = row(&summary, layer.node)?;
        let Shape::Map { channels, height, width } = row.shape else {
            anyhow::bail!("node {} is not a feature map: {}", layer.node, row.shape);
        };
        output.checks.push(exact(
            &format!("{} height", layer.node),
            height as u64,
            side as u64,
            &formula,
        ));
        output.checks.push(exact(
            &format!("{} width", layer.node),
            width as u64,
            side as u64,
            &formula,
        ));
        output.checks.push(exact(
            &format!("{} channels", layer.node),
            channels as u64,
            layer.channels as u64,
            "from the figure",
        ));

        let field =
            row.receptive_field.map_or("-".to_string(), |f| format!("{0}x{0}", f.height.size));
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} | {} | {} |",
            layer.node,
            layer.op,
            row.shape,
            formula,
            group_digits(row.params()),
            group_digits(row.macs),
            field
        );
    }

    output.markdown = format!(
        "Input 3 x 100 x 100. Branch 1: A = conv 5@3x3, B = conv 10@3x3, C = max pool 5x5 \
         stride 2. Branch 2: D = conv 10@5x5, E = conv 5@1x1. No padding, stride 1 unless \
         stated. Description: `architectures/assignment.txt`.\n\n{table}\n\
         ```text\n{}```\n",
        summary.render_table()
    );
    Ok(output)
}

/// OT1: the 3x3-3x3 path A, B against the 5x5 path D: equal receptive fields, fewer
/// parameters and MACs.
pub fn run_ot1(_ctx: &Context) -> anyhow::Result<TaskOutput> {
    let summary = load("assignment.txt")?;
    let path_ab = summary.path_total(&["A", "B"])?;
    let path_d = summary.path_total(&["D"])?;
    let mut checks = Vec::new();

    // Hand counts: MACs = output elements x in channels x k x k; weights = out x in x k x k.
    let macs_ab = 5 * 98 * 98 * (3 * 3 * 3) + 10 * 96 * 96 * (5 * 3 * 3);
    let macs_d = 10 * 96 * 96 * (3 * 5 * 5);
    let weights_ab = 5 * 3 * 3 * 3 + 10 * 5 * 3 * 3;
    let weights_d = 10 * 3 * 5 * 5;
    checks.push(exact("MACs A+B", path_ab.macs, macs_ab, "5*98*98*27 + 10*96*96*45"));
    checks.push(exact("MACs D", path_d.macs, macs_d, "10*96*96*75"));
    checks.push(exact("params A+B without biases", path_ab.weights, weights_ab, "5*3*9 + 10*5*9"));
    checks.push(exact("params D without biases", path_d.weights, weights_d, "10*3*25"));
    checks.push(exact(
        "params A+B with biases",
        path_ab.params,
        weights_ab + 5 + 10,
        "585 + 5 + 10",
    ));
    checks.push(exact("params D with biases", path_d.params, weights_d + 10, "750 + 10"));

    let ratio = |a: u64, b: u64| a as f64 / b as f64;
    let macs_ratio = ratio(path_ab.macs, path_d.macs);
    let weights_ratio = ratio(path_ab.weights, path_d.weights);
    let params_ratio = ratio(path_ab.params, path_d.params);
    checks.push(Check::close("MACs ratio (A+B)/D", macs_ratio, ratio(macs_ab, macs_d), 1e-12));
    checks.push(Check::close(
        "weights ratio (A+B)/D",
        weights_ratio,
        ratio(weights_ab, weights_d),
        1e-12,
    ));
    checks.push(Check::close(
        "params ratio (A+B)/D",
        params_ratio,
        ratio(weights_ab + 15, weights_d + 10),
        1e-12,
    ));

    let field_b = row(&summary, "B")?.receptive_field.context("B has no receptive field")?;
    let field_d = row(&summary, "D")?.receptive_field.context("D has no receptive field")?;
    checks.push(exact("receptive field of B", field_b.height.size, 5, "1 + (3 - 1) + (3 - 1)"));
    checks.push(exact("receptive field of D", field_d.height.size, 5, "1 + (5 - 1)"));
    checks.push(Check {
        name: "A+B cheaper than D in MACs and params".to_string(),
        value: format!(
            "{} < {}, {} < {}",
            path_ab.macs, path_d.macs, path_ab.params, path_d.params
        ),
        reference: "both smaller".to_string(),
        pass: path_ab.macs < path_d.macs && path_ab.params < path_d.params,
    });

    let markdown = ot1_markdown(&summary, macs_ratio, weights_ratio, params_ratio)?;
    Ok(TaskOutput { checks, markdown, skipped: None })
}

fn ot1_markdown(
    summary: &Summary,
    macs_ratio: f64,
    weights_ratio: f64,
    params_ratio: f64,
) -> anyhow::Result<String> {
    let path_ab = summary.path_total(&["A", "B"])?;
    let path_d = summary.path_total(&["D"])?;
    let mut text = String::from(
        "| path | receptive field | weights | params with biases | MACs |\n|---|---|---:|---:|---:|\n",
    );
    let _ = writeln!(
        text,
        "| A, B (3x3 then 3x3) | 5x5 | {} | {} | {} |",
        group_digits(path_ab.weights),
        group_digits(path_ab.params),
        group_digits(path_ab.macs)
    );
    let _ = writeln!(
        text,
        "| D (5x5) | 5x5 | {} | {} | {} |",
        group_digits(path_d.weights),
        group_digits(path_d.params),
        group_digits(path_d.macs)
    );
    let _ = writeln!(
        text,
        "| ratio (A+B) / D | 1 | {weights_ratio:.4} | {params_ratio:.4} | {macs_ratio:.4} |\n"
    );
    text.push_str(
        "Each 3x3 convolution widens the field by 3 - 1 = 2 pixels, so two in a row see \
         1 + 2 + 2 = 5 input pixels per axis, as one 5x5 convolution does (1 + 4). The stack \
         pays 2 x 9 = 18 weights per input-output channel pair where the 5x5 pays 25, and it \
         adds a second non-linearity in between. Between equal channel counts C the ratio is \
         18C² / 25C² = 0.72 in both weights and MACs. In this figure the first 3x3 layer has \
         only 5 filters and works on the larger 98 x 98 map, so the measured ratios are \
         near 0.78 rather than 0.72.\n",
    );
    Ok(text)
}

/// One published model: description file, torchvision's parameter count and GFLOPS.
struct Published {
    name: &'static str,
    file: &'static str,
    params: u64,
    gmacs: f64,
}

/// `num_params` and `_ops` (GFLOPS, counted as conv and linear multiply-accumulates at
/// 3 x 224 x 224) from torchvision's weight metadata, `*_Weights.IMAGENET1K_V1.meta`.
const PUBLISHED: &[Published] = &[
    Published { name: "AlexNet", file: "alexnet.txt", params: 61_100_840, gmacs: 0.714 },
    Published { name: "VGG-16", file: "vgg16.txt", params: 138_357_544, gmacs: 15.47 },
    Published { name: "ResNet-18", file: "resnet18.txt", params: 11_689_512, gmacs: 1.814 },
];

/// Checks the calculator against torchvision: parameters exact, MACs within 1%.
pub fn run_published(_ctx: &Context) -> anyhow::Result<TaskOutput> {
    let mut output = TaskOutput::default();
    let mut table = String::from(
        "| model | params | torchvision | MACs (G) | torchvision GFLOPS | relative difference |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for model in PUBLISHED {
        let summary = load(model.file)?;
        output.checks.push(exact(
            &format!("{} params", model.name),
            summary.params,
            model.params,
            "torchvision num_params",
        ));

        let gmacs = summary.macs as f64 / 1e9;
        let relative = (gmacs - model.gmacs).abs() / model.gmacs;
        output.checks.push(Check {
            name: format!("{} MACs (G)", model.name),
            value: format!("{gmacs:.4}"),
            reference: format!("{} ± 1% (torchvision _ops)", model.gmacs),
            pass: relative <= 0.01,
        });
        let _ = writeln!(
            table,
            "| {} | {} | {} | {gmacs:.4} | {} | {:.3}% |",
            model.name,
            group_digits(summary.params),
            group_digits(model.params),
            model.gmacs,
            relative * 100.0
        );
    }
    output.markdown = format!(
        "Descriptions in `architectures/` for 3 x 224 x 224 inputs. MACs count convolutions \
         and linear layers only; pooling, activations, batch norm and residual sums count \
         zero, which is how torchvision's published GFLOPS are counted.\n\n{table}"
    );
    Ok(output)
}
