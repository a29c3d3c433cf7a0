//! Property tests: no text makes the parser or the analysis panic, and random stacks of
//! convolutions and pools get the sizes and receptive fields that direct enumeration of
//! window positions gives.

use handgrad_shapes::{analyze, parse, ErrorKind, Shape};
use proptest::prelude::*;

/// Fragments that make random text look like descriptions often enough to reach deep code.
fn description_like() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("x = input(c=3, h=9, w=9)".to_string()),
        Just("input(shape=2x5)".to_string()),
        prop::sample::select(vec![
            "conv2d",
            "maxpool",
            "avgpool",
            "gap",
            "adaptive_avgpool",
            "linear",
            "flatten",
            "bn",
            "relu",
            "dropout",
            "concat",
            "add",
            "gru",
            "last",
            "conv",
        ])
        .prop_map(String::from),
        prop::sample::select(vec![
            "(",
            ")",
            "=",
            ",",
            "#",
            "\n",
            " ",
            "x",
            "A",
            "out=",
            "k=",
            "s=",
            "p=",
            "d=",
            "groups=",
            "bias=",
            "ceil=",
            "hidden=",
            "steps=",
            "features=",
            "same",
            "true",
            "3x3",
            "0",
            "1",
            "2",
            "7",
            "18446744073709551615",
            "4294967296",
            "-1",
            "1.5",
            "é",
            "A = ",
            "B = ",
        ])
        .prop_map(String::from),
        "[a-z0-9=(),x ]{0,12}",
    ];
    prop::collection::vec(token, 0..40).prop_map(|tokens| tokens.concat())
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        if let Ok(graph) = parse(&text) {
            if let Ok(summary) = analyze(&graph) {
                let _ = summary.render_table();
            }
        }
    }

    #[test]
    fn description_like_text_never_panics(text in description_like()) {
        match parse(&text).and_then(|graph| analyze(&graph)) {
            Ok(summary) => {
                let table = summary.render_table();
                prop_assert!(table.contains("Total params"));
            }
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }
}

/// One sliding-window layer of a random stack.
#[derive(Debug, Clone)]
struct Layer {
    kind: &'static str,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
    ceil_mode: bool,
}

impl Layer {
    fn effective_kernel(&self) -> usize {
        self.dilation * (self.kernel - 1) + 1
    }

    fn text(&self, index: usize) -> String {
        let (k, s, p, d) = (self.kernel, self.stride, self.padding, self.dilation);
        match self.kind {
            "conv" => format!("L{index} = conv2d(out=2, k={k}, s={s}, p={p}, d={d})"),
            "max" => {
                format!("L{index} = maxpool(k={k}, s={s}, p={p}, d={d}, ceil={})", self.ceil_mode)
            }
            _ => format!("L{index} = avgpool(k={k}, s={s}, p={p}, ceil={})", self.ceil_mode),
        }
    }

    /// Output length by walking window positions. In floor mode a window must end inside
    /// the padded input. In ceil mode it may overhang the padded end by less than one stride
    /// but must start inside the input or its left padding.
    fn enumerate_outputs(&self, n: usize) -> usize {
        let padded = n + 2 * self.padding;
        let overhang = if self.ceil_mode { self.stride - 1 } else { 0 };
        let mut count = 0;
        loop {
            let start = count * self.stride;
            if start + self.effective_kernel() > padded + overhang {
                return count;
            }
            if self.ceil_mode && start >= n + self.padding {
                return count;
            }
            count += 1;
        }
    }
}

fn layer() -> impl Strategy<Value = Layer> {
    (0..3usize, 1..6usize, 1..4usize, 0..4usize, 1..3usize, any::<bool>()).prop_map(
        |(kind, kernel, stride, padding, dilation, ceil_mode)| {
            let kind = ["conv", "max", "avg"][kind];
            let dilation = if kind == "avg" { 1 } else { dilation };
            let mut layer = Layer { kind, kernel, stride, padding, dilation, ceil_mode };
            if kind == "conv" {
                layer.ceil_mode = false;
            } else {
                // PyTorch allows pool padding of at most half the effective window.
                layer.padding = padding.min(layer.effective_kernel() / 2);
            }
            layer
        },
    )
}

/// Input interval seen by output positions `[first, last]` of the top layer, found by
/// mapping the interval down through every layer.
fn field_interval(layers: &[Layer], first: i64, last: i64) -> (i64, i64) {
    layers.iter().rev().fold((first, last), |(a, b), layer| {
        let (s, p) = (layer.stride as i64, layer.padding as i64);
        (a * s - p, b * s - p + layer.effective_kernel() as i64 - 1)
    })
}

proptest! {
    #[test]
    fn stacks_match_window_enumeration(size in 1..48usize, layers in prop::collection::vec(layer(), 1..6)) {
        let mut text = format!("x = input(c=2, h={size}, w={size})\n");
        for (index, layer) in layers.iter().enumerate() {
            text.push_str(&layer.text(index));
            text.push('\n');
        }

        let mut sizes = Vec::new();
        let mut n = size;
        for layer in &layers {
            n = layer.enumerate_outputs(n);
            sizes.push(n);
            if n == 0 {
                break;
            }
        }

        match analyze(&parse(&text).unwrap()) {
            Ok(summary) => {
                prop_assert!(sizes.iter().all(|&n| n > 0), "analysis passed, enumeration found {sizes:?}");
                for (index, &expected) in sizes.iter().enumerate() {
                    let row = summary.row(&format!("L{index}")).unwrap();
                    prop_assert_eq!(row.shape, Shape::map(2, expected, expected), "layer {}", index);
                }
                let top = summary.rows.last().unwrap().receptive_field.unwrap().height;
                let (a, b) = field_interval(&layers, 0, 0);
                prop_assert_eq!(top.size as i64, b - a + 1);
                prop_assert_eq!(top.start, (a + b) as f64 / 2.0);
                let (c, _) = field_interval(&layers, 1, 1);
                prop_assert_eq!(top.jump as i64, c - a);
                let row_sum: u64 = summary.rows.iter().map(|row| row.params()).sum();
                prop_assert_eq!(summary.params, row_sum);
            }
            Err(error) if matches!(error.kind(), ErrorKind::NonPositiveSize { .. }) => {
                let ErrorKind::NonPositiveSize { site, .. } = error.kind().clone() else { unreachable!() };
                let failing = sizes.iter().position(|&n| n == 0);
                prop_assert_eq!(Some(site.node), failing.map(|index| format!("L{index}")));
            }
            Err(error) => prop_assert!(false, "unexpected error {error}"),
        }
    }
}
