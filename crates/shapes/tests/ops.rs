//! Output sizes and parameter counts of single operations against PyTorch. The expected
//! values were printed by `tests/reference/pytorch_sizes.py` with torch 2.15.0.

use handgrad_shapes::{
    analyze, parse, Activation, Conv2dSpec, ErrorKind, GraphBuilder, PoolSpec, Shape, Summary,
};

fn summary_of(text: &str) -> Summary {
    let graph = parse(text).unwrap_or_else(|error| panic!("{error}"));
    analyze(&graph).unwrap_or_else(|error| panic!("{error}"))
}

/// (kind, n, k, s, p, d, ceil_mode, PyTorch output size; 0 where PyTorch rejects the layer)
type PoolCase = (&'static str, usize, usize, usize, usize, usize, bool, usize);

const POOL_CASES: &[PoolCase] = &[
    ("max", 5, 2, 2, 1, 1, true, 3),
    ("max", 6, 3, 2, 0, 1, true, 3),
    ("max", 6, 3, 2, 0, 1, false, 2),
    ("max", 7, 3, 2, 1, 1, true, 4),
    ("max", 10, 3, 3, 1, 1, true, 4),
    ("max", 11, 2, 2, 1, 2, true, 6),
    ("avg", 9, 4, 3, 2, 1, true, 4),
    ("avg", 8, 2, 2, 1, 1, true, 5),
    ("avg", 13, 3, 2, 1, 1, false, 7),
    ("max", 112, 3, 2, 1, 1, false, 56),
    ("max", 2, 2, 2, 0, 2, true, 1),
    ("avg", 2, 3, 2, 0, 1, true, 1),
    ("avg", 3, 5, 4, 0, 1, true, 1),
    ("max", 2, 2, 1, 0, 2, true, 0),
];

#[test]
fn pool_sizes_match_pytorch() {
    for &(kind, n, k, s, p, d, ceil, expected) in POOL_CASES {
        let dilation = if kind == "max" { format!(", d={d}") } else { String::new() };
        let text = format!("x = input(c=1, h={n}, w={n})\ny = {kind}pool(k={k}, s={s}, p={p}{dilation}, ceil={ceil})");
        let result = parse(&text).and_then(|graph| analyze(&graph));
        if expected == 0 {
            let error = result.unwrap_err();
            assert!(matches!(error.kind(), ErrorKind::NonPositiveSize { .. }), "{text}: {error}");
            continue;
        }
        let shape = result.unwrap().row("y").unwrap().shape;
        assert_eq!(shape, Shape::map(1, expected, expected), "{text}");
    }
}

/// (n, in, out, k, s, p, d, groups, bias, PyTorch output size, PyTorch parameter count)
type ConvCase = (usize, usize, usize, usize, usize, &'static str, usize, usize, bool, usize, u64);

const CONV_CASES: &[ConvCase] = &[
    (10, 3, 4, 3, 1, "0", 1, 1, true, 8, 112),
    (10, 4, 8, 4, 1, "same", 1, 2, false, 10, 256),
    (11, 6, 6, 3, 2, "1", 2, 3, true, 5, 114),
    (9, 2, 5, 2, 3, "2", 1, 1, true, 4, 45),
    (8, 4, 4, 5, 1, "same", 2, 4, true, 8, 104),
];

#[test]
fn conv_sizes_and_params_match_pytorch() {
    for &(n, cin, cout, k, s, p, d, groups, bias, size, params) in CONV_CASES {
        let text = format!(
            "x = input(c={cin}, h={n}, w={n})\ny = conv2d(out={cout}, k={k}, s={s}, p={p}, d={d}, groups={groups}, bias={bias})"
        );
        let summary = summary_of(&text);
        let row = summary.row("y").unwrap();
        assert_eq!(row.shape, Shape::map(cout, size, size), "{text}");
        assert_eq!(row.params(), params, "{text}");
        // MACs: output elements x (in / groups) x k x k.
        let macs = (cout * size * size * (cin / groups) * k * k) as u64;
        assert_eq!(row.macs, macs, "{text}");
    }
}

#[test]
fn gru_params_match_pytorch() {
    // torch.nn.GRU(75, 32): 10,464 parameters; GRU(3, 5): 150.
    for (input, hidden, params) in [(75usize, 32usize, 10_464u64), (3, 5, 150)] {
        let text = format!("x = input(steps=5, features={input})\nh = gru(hidden={hidden})\nlast");
        let summary = summary_of(&text);
        let row = summary.row("h").unwrap();
        assert_eq!(row.params(), params);
        assert_eq!(row.shape, Shape::sequence(5, hidden));
        // 5 steps x 3 gates x hidden x (input + hidden)
        assert_eq!(row.macs, (5 * 3 * hidden * (input + hidden)) as u64);
        assert_eq!(summary.rows.last().unwrap().shape, Shape::vector(hidden));
    }
}

#[test]
fn dilation_widens_the_field() {
    // Effective kernel d (k - 1) + 1 = 2 * 2 + 1 = 5: size 1 + 4 = 5, start (5 - 1) / 2 = 2.
    let summary = summary_of("x = input(c=1, h=20, w=20)\ny = conv2d(out=1, k=3, d=2)");
    let field = summary.row("y").unwrap().receptive_field.unwrap();
    assert_eq!((field.height.size, field.height.jump, field.height.start), (5, 1, 2.0));
    assert_eq!(summary.row("y").unwrap().shape, Shape::map(1, 16, 16));
}

#[test]
fn same_padding_keeps_size_and_centres_field() {
    // Even kernel 4, total padding 3: 1 zero before, 2 after; start = 3 / 2 - 1 = 0.5.
    let summary = summary_of("x = input(c=1, h=9, w=7)\ny = conv2d(out=2, k=4, p=same)");
    let row = summary.row("y").unwrap();
    assert_eq!(row.shape, Shape::map(2, 9, 7));
    assert_eq!(row.receptive_field.unwrap().width.start, 0.5);
}

#[test]
fn non_square_settings() {
    // height: floor((12 + 2 - 3) / 1) + 1 = 12; width: floor((12 + 0 - 5) / 2) + 1 = 4.
    let summary = summary_of("x = input(c=2, h=12, w=12)\ny = conv2d(out=3, k=3x5, s=1x2, p=1x0)");
    let row = summary.row("y").unwrap();
    assert_eq!(row.shape, Shape::map(3, 12, 4));
    let field = row.receptive_field.unwrap();
    assert_eq!((field.height.size, field.width.size), (3, 5));
    assert_eq!((field.height.jump, field.width.jump), (1, 2));
    assert!(summary.render_table().contains("3x5"));
}

#[test]
fn merge_takes_the_largest_field() {
    let text = "x = input(c=1, h=32, w=32)
a = conv2d(x, out=2, k=3, p=1)
b = conv2d(x, out=2, k=7, p=3)
c = concat(a, b)
d = add(a, b)";
    let summary = summary_of(text);
    let b = summary.row("b").unwrap().receptive_field;
    assert_eq!(summary.row("c").unwrap().receptive_field, b);
    assert_eq!(summary.row("d").unwrap().receptive_field, b);
    assert_eq!(summary.row("c").unwrap().shape, Shape::map(4, 32, 32));
}

#[test]
fn adaptive_pool_with_uneven_windows() {
    // 7 -> 3: windows [0, 3), [2, 5), [4, 7), all of 3 pixels, spaced floor(7 / 3) = 2.
    let summary = summary_of("x = input(c=1, h=7, w=7)\ny = adaptive_avgpool(out=3)");
    let field = summary.row("y").unwrap().receptive_field.unwrap();
    assert_eq!((field.height.size, field.height.jump, field.height.start), (3, 2, 1.0));
}

#[test]
fn unnamed_lines_default_to_previous_node() {
    let summary =
        summary_of("x = input(shape=4x6x6)\nconv2d(out=2, k=3)   # conv2d_2\n\nrelu\nflatten");
    let names: Vec<&str> = summary.rows.iter().map(|row| row.name.as_str()).collect();
    assert_eq!(names, ["x", "conv2d_2", "relu_4", "flatten_5"]);
    assert_eq!(summary.rows[3].inputs, ["relu_4"]);
    assert_eq!(summary.rows[3].shape, Shape::vector(2 * 4 * 4));
}

#[test]
fn builder_matches_text() {
    let text = "x = input(c=3, h=32, w=32)
c1 = conv2d(out=8, k=3, s=1, p=1)
r1 = relu
p1 = maxpool(k=2)
n1 = batchnorm
f = flatten
d = dropout(p=0.25)
fc = linear(out=10)
t = tanh";
    let mut builder = GraphBuilder::new(Shape::map(3, 32, 32));
    builder.name_next("c1").conv2d(Conv2dSpec::new(8, 3, 1, 1));
    builder.relu();
    builder.maxpool(PoolSpec::new(2, 2, 0));
    builder.batchnorm();
    builder.flatten();
    builder.dropout(0.25);
    builder.name_next("fc").linear(10);
    builder.activation(Activation::Tanh);
    let built = analyze(&builder.build().unwrap()).unwrap();
    let parsed = summary_of(text);

    assert_eq!((built.params, built.macs), (parsed.params, parsed.macs));
    for (a, b) in built.rows.iter().zip(&parsed.rows) {
        assert_eq!(a.shape, b.shape);
        assert_eq!(a.receptive_field, b.receptive_field);
    }
    // conv 8 * 3 * 9 + 8 = 224; bn 2 * 8 = 16; fc 8 * 16 * 16 * 10 + 10 = 20,490.
    assert_eq!(built.params, 224 + 16 + 20_490);
}

#[test]
fn builder_gru_reads_flat_vector() {
    let mut builder = GraphBuilder::new(Shape::vector(5 * 75));
    let gru = builder.gru(75, 32, 5);
    builder.last_step();
    builder.linear(5);
    let summary = analyze(&builder.build().unwrap()).unwrap();
    assert_eq!(summary.row(&gru).unwrap().params(), 10_464);
    assert_eq!(summary.rows.last().unwrap().shape, Shape::vector(5));
}

#[test]
fn branches_from_builder() {
    let mut builder = GraphBuilder::new(Shape::map(3, 100, 100));
    let a = builder.conv2d(Conv2dSpec::new(5, 3, 1, 0));
    builder.read_from("input");
    let d = builder.conv2d(Conv2dSpec::new(5, 5, 1, 0));
    let sum = builder.add(&[&a, &d]);
    let summary = analyze(&builder.build().unwrap()).unwrap_err();
    // 98 x 98 against 96 x 96.
    assert!(summary.to_string().contains(&sum), "{summary}");
}
