//! The assignment's two-branch network: every feature-map size, parameter count and MAC count
//! against values worked out by hand, with the arithmetic beside each.

use std::path::PathBuf;

use handgrad_shapes::{analyze, parse_file, Shape, Summary};

fn assignment() -> Summary {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../architectures/assignment.txt");
    analyze(&parse_file(&path).unwrap_or_else(|error| panic!("{error}"))).unwrap()
}

#[test]
fn feature_map_sizes() {
    let summary = assignment();
    let expected = [
        ("x", Shape::map(3, 100, 100)),
        // A: 3x3, stride 1, no padding: (100 - 3) / 1 + 1 = 98
        ("A", Shape::map(5, 98, 98)),
        // B: (98 - 3) / 1 + 1 = 96
        ("B", Shape::map(10, 96, 96)),
        // C: 5x5 max pool, stride 2: floor((96 - 5) / 2) + 1 = floor(45.5) + 1 = 46
        ("C", Shape::map(10, 46, 46)),
        // D: 5x5: (100 - 5) / 1 + 1 = 96
        ("D", Shape::map(10, 96, 96)),
        // E: 1x1: (96 - 1) / 1 + 1 = 96
        ("E", Shape::map(5, 96, 96)),
    ];
    for (name, shape) in expected {
        assert_eq!(summary.row(name).unwrap().shape, shape, "node {name}");
    }
}

#[test]
fn parameters_per_node() {
    let summary = assignment();
    // (weights, biases): out * in * kh * kw and out.
    let expected = [
        ("A", 5 * 3 * 3 * 3, 5),   // 135, 5
        ("B", 10 * 5 * 3 * 3, 10), // 450, 10
        ("C", 0, 0),
        ("D", 10 * 3 * 5 * 5, 10), // 750, 10
        ("E", 5 * 10, 5),          // 50, 5
    ];
    for (name, weights, biases) in expected {
        let row = summary.row(name).unwrap();
        assert_eq!(row.weights, weights, "weights of {name}");
        assert_eq!(row.biases, biases, "biases of {name}");
    }
    assert_eq!(summary.params, 135 + 5 + 450 + 10 + 750 + 10 + 50 + 5);
}

#[test]
fn macs_per_node() {
    let summary = assignment();
    // Output elements x (in channels x kh x kw).
    let expected = [
        ("A", 5 * 98 * 98 * (3 * 3 * 3)),  // 48,020 * 27 = 1,296,540
        ("B", 10 * 96 * 96 * (5 * 3 * 3)), // 92,160 * 45 = 4,147,200
        ("C", 0),
        ("D", 10 * 96 * 96 * (3 * 5 * 5)), // 92,160 * 75 = 6,912,000
        ("E", 5 * 96 * 96 * 10),           // 46,080 * 10 = 460,800
    ];
    for (name, macs) in expected {
        assert_eq!(summary.row(name).unwrap().macs, macs, "MACs of {name}");
    }
}

#[test]
fn two_3x3_convs_see_as_far_as_one_5x5() {
    let summary = assignment();
    let b = summary.row("B").unwrap().receptive_field.unwrap();
    let d = summary.row("D").unwrap().receptive_field.unwrap();
    // B: 1 + (3 - 1) + (3 - 1) = 5; D: 1 + (5 - 1) = 5. Both centred on pixel 2.
    assert_eq!(b, d);
    assert_eq!(b.height.size, 5);
    assert_eq!(b.height.start, 2.0);
    // C: 5 + (5 - 1) * 1 = 9, jump 1 * 2 = 2, start 2 + (5 - 1) / 2 = 4.
    let c = summary.row("C").unwrap().receptive_field.unwrap();
    assert_eq!((c.width.size, c.width.jump, c.width.start), (9, 2, 4.0));
}

#[test]
fn path_totals_of_both_branches() {
    let summary = assignment();
    let ab = summary.path_total(&["A", "B"]).unwrap();
    let d = summary.path_total(&["D"]).unwrap();
    assert_eq!((ab.weights, ab.biases, ab.params), (585, 15, 600));
    assert_eq!(ab.macs, 1_296_540 + 4_147_200);
    assert_eq!((d.weights, d.biases, d.params), (750, 10, 760));
    assert_eq!(d.macs, 6_912_000);
}

#[test]
fn table_lists_every_node_and_totals() {
    let table = assignment().render_table();
    for needle in ["conv2d 3x3 s1 p0", "10 x 46 x 46", "1,296,540", "Total params: 1,415"] {
        assert!(table.contains(needle), "missing `{needle}` in\n{table}");
    }
}
