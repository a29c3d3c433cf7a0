//! The description examples in `docs/shapes-format.md` parse and analyse, and the error
//! messages quoted there are the ones the crate produces.

use std::path::PathBuf;

use handgrad_shapes::{analyze, parse};

fn format_doc() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/shapes-format.md");
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Bodies of the ```text blocks that define an input node.
fn description_blocks(doc: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```text") => current = Some(String::new()),
            (Some(block), "```") => {
                if block.contains("input(") {
                    blocks.push(block.clone());
                }
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn format_examples_analyse() {
    let blocks = description_blocks(&format_doc());
    assert!(blocks.len() >= 4, "found {} description blocks", blocks.len());
    for block in blocks {
        let graph = parse(&block).unwrap_or_else(|error| panic!("{error}\n{block}"));
        analyze(&graph).unwrap_or_else(|error| panic!("{error}\n{block}"));
    }
}

#[test]
fn quoted_errors_match() {
    let doc = format_doc();
    let cases = [
        "x = input(c=1, h=10, w=10)\nA = conv2d(x, out=4, k=3)\nB = conv2d(x, out=4, k=5)\nC = concat(A, B)",
        "x = input(c=1, h=10, w=10)\nA = conv2d(out=4, k=11)",
        "x = input(c=1, h=10, w=10)\nA = relu\nB = relu(C)\nD = relu\nC = relu",
    ];
    for text in cases {
        let message = parse(text).and_then(|graph| analyze(&graph)).unwrap_err().to_string();
        assert!(doc.contains(&message), "not quoted in the doc: {message}");
    }
}

#[test]
fn inception_example_channels() {
    let block = description_blocks(&format_doc())
        .into_iter()
        .find(|block| block.contains("merged = concat"))
        .unwrap();
    let summary = analyze(&parse(&block).unwrap()).unwrap();
    assert_eq!(summary.row("merged").unwrap().shape.to_string(), "80 x 28 x 28");
    // Depthwise: 80 filters of 1 x 3 x 3 plus 80 biases.
    assert_eq!(summary.row("dw").unwrap().params(), 80 * 9 + 80);
}
