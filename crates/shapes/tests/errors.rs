//! Every kind of bad description yields its typed error, naming the line and node and
//! giving the expected and found values.

use handgrad_shapes::{analyze, parse, ErrorKind, GraphBuilder, Shape, ShapeError};

/// Parses and analyses `text`, returning the error it must produce.
fn error_of(text: &str) -> ShapeError {
    match parse(text).and_then(|graph| analyze(&graph)) {
        Ok(summary) => panic!("expected an error, got\n{}", summary.render_table()),
        Err(error) => error,
    }
}

fn assert_mentions(error: &ShapeError, needles: &[&str]) {
    let message = error.to_string();
    for needle in needles {
        assert!(message.contains(needle), "`{needle}` missing from: {message}");
    }
}

const INPUT: &str = "x = input(c=3, h=10, w=10)\n";

#[test]
fn unknown_operation() {
    let error = error_of(&format!("{INPUT}A = convolution(out=4, k=3)"));
    assert!(matches!(error.kind(), ErrorKind::UnknownOperation { .. }), "{error:?}");
    assert_mentions(&error, &["line 2", "node `A`", "`convolution`", "conv2d"]);
}

#[test]
fn unknown_argument() {
    let error = error_of(&format!("{INPUT}A = conv2d(out=4, k=3, stride_h=2)"));
    assert!(matches!(error.kind(), ErrorKind::UnknownArgument { .. }), "{error:?}");
    assert_mentions(&error, &["line 2", "`stride_h`", "out, k, s"]);
}

#[test]
fn duplicate_argument_under_two_spellings() {
    let error = error_of(&format!("{INPUT}A = conv2d(out=4, k=3, s=1, stride=2)"));
    assert!(matches!(error.kind(), ErrorKind::DuplicateArgument { .. }), "{error:?}");
}

#[test]
fn missing_argument() {
    let error = error_of(&format!("{INPUT}A = conv2d(k=3)"));
    assert!(matches!(error.kind(), ErrorKind::MissingArgument { .. }), "{error:?}");
    assert_mentions(&error, &["line 2", "`out`"]);
}

#[test]
fn invalid_argument_values() {
    let cases = [
        ("A = conv2d(out=4, k=three)", "`three`"),
        ("A = conv2d(out=4, k=0)", "positive"),
        ("A = conv2d(out=4, k=3, s=2, p=same)", "stride 1"),
        ("A = maxpool(k=3, p=2)", "at most half"),
        ("A = dropout(p=1.5)", "[0, 1]"),
        ("A = conv2d(out=4, k=3, bias=maybe)", "`true` or `false`"),
        ("A = conv2d(out=4, k=3, groups=2)", "divisor of the input channels, 3"),
    ];
    for (line, needle) in cases {
        let error = error_of(&format!("{INPUT}{line}"));
        assert!(matches!(error.kind(), ErrorKind::InvalidArgument { .. }), "{line}: {error:?}");
        assert_mentions(&error, &["line 2", "node `A`", needle]);
    }
}

#[test]
fn missing_input_on_first_line() {
    let error = error_of("A = conv2d(out=4, k=3)");
    assert!(matches!(error.kind(), ErrorKind::MissingInput { .. }), "{error:?}");
    assert_mentions(&error, &["line 1", "node `A`"]);
}

#[test]
fn undefined_input() {
    let error = error_of(&format!("{INPUT}A = conv2d(y, out=4, k=3)"));
    assert!(matches!(error.kind(), ErrorKind::UndefinedInput { .. }), "{error:?}");
    assert_mentions(&error, &["line 2", "`y`"]);
}

#[test]
fn reference_to_later_node() {
    let error = error_of(&format!("{INPUT}A = conv2d(B, out=4, k=3)\nB = relu(x)"));
    assert!(matches!(error.kind(), ErrorKind::ForwardReference { .. }), "{error:?}");
    assert_mentions(&error, &["line 2", "`B`", "line 3"]);
}

#[test]
fn self_reference_is_a_cycle() {
    let error = error_of(&format!("{INPUT}A = add(x, A)"));
    assert!(matches!(error.kind(), ErrorKind::ForwardReference { .. }), "{error:?}");
}

#[test]
fn duplicate_name() {
    let error = error_of(&format!("{INPUT}A = relu\nA = relu"));
    assert!(matches!(error.kind(), ErrorKind::DuplicateName { .. }), "{error:?}");
    assert_mentions(&error, &["line 3", "line 2"]);
}

#[test]
fn size_goes_to_zero() {
    // floor((10 - 11) / 1) + 1 = 0
    let error = error_of(&format!("{INPUT}A = conv2d(out=4, k=11)"));
    assert!(matches!(error.kind(), ErrorKind::NonPositiveSize { value: 0, .. }), "{error:?}");
    assert_mentions(&error, &["line 2", "node `A`", "height", "11 pixels", "has 10"]);
}

#[test]
fn size_goes_below_zero() {
    // floor((10 - 15) / 2) + 1 = -3 + 1 = -2
    let error = error_of(&format!("{INPUT}A = maxpool(k=15, s=2)"));
    assert!(matches!(error.kind(), ErrorKind::NonPositiveSize { value: -2, .. }), "{error:?}");
}

#[test]
fn concat_adds_channel_counts() {
    let ok = parse(&format!(
        "{INPUT}A = conv2d(x, out=4, k=3)\nB = conv2d(x, out=6, k=3)\nC = concat(A, B)"
    ));
    let summary = analyze(&ok.unwrap()).unwrap();
    assert_eq!(summary.row("C").unwrap().shape, Shape::map(10, 8, 8));
}

#[test]
fn concat_spatial_mismatch() {
    let error = error_of(&format!(
        "{INPUT}A = conv2d(x, out=4, k=3)\nB = conv2d(x, out=4, k=5)\nC = concat(A, B)"
    ));
    assert!(matches!(error.kind(), ErrorKind::Mismatch { .. }), "{error:?}");
    assert_mentions(&error, &["line 4", "height and width", "8 x 8", "6 x 6"]);
}

#[test]
fn add_channel_mismatch() {
    let error = error_of(&format!("{INPUT}A = conv2d(x, out=4, k=1)\nB = add(A, x)"));
    assert!(matches!(error.kind(), ErrorKind::Mismatch { .. }), "{error:?}");
    assert_mentions(&error, &["line 3", "channels", "4 x 10 x 10", "3 x 10 x 10"]);
}

#[test]
fn add_spatial_mismatch() {
    let error = error_of(&format!("{INPUT}A = conv2d(x, out=3, k=3)\nB = add(A, x)"));
    assert_mentions(&error, &["height and width", "3 x 8 x 8", "3 x 10 x 10"]);
}

#[test]
fn merge_needs_two_inputs() {
    let error = error_of(&format!("{INPUT}A = add(x)"));
    assert!(matches!(error.kind(), ErrorKind::InputCount { found: 1, .. }), "{error:?}");
}

#[test]
fn conv_on_vector() {
    let error = error_of("x = input(features=10)\nA = conv2d(out=4, k=3)");
    assert!(matches!(error.kind(), ErrorKind::WrongInputKind { .. }), "{error:?}");
    assert_mentions(&error, &["feature map", "found shape 10"]);
}

#[test]
fn linear_on_map_asks_for_flatten() {
    let error = error_of(&format!("{INPUT}A = linear(out=4)"));
    assert_mentions(&error, &["flatten", "3 x 10 x 10"]);
}

#[test]
fn gru_size_contradicts_input() {
    let error = error_of("x = input(steps=5, features=75)\nh = gru(hidden=8, input=70)");
    assert!(matches!(error.kind(), ErrorKind::InvalidArgument { .. }), "{error:?}");
    assert_mentions(&error, &["expected 75", "found 70"]);
}

#[test]
fn syntax_errors() {
    let cases = [
        "A = conv2d(out=4, k=3",
        "A = conv2d(out=4,, k=3)",
        "3A = relu",
        "A = conv2d(out=4) extra",
        "A = relu(x y)",
    ];
    for line in cases {
        let error = error_of(&format!("{INPUT}{line}"));
        assert!(matches!(error.kind(), ErrorKind::Syntax { .. }), "{line}: {error:?}");
        assert_mentions(&error, &["line 2"]);
    }
}

#[test]
fn empty_description() {
    assert_eq!(error_of("# only a comment\n\n").kind(), &ErrorKind::Empty);
}

#[test]
fn overflow_is_reported() {
    let text =
        "x = input(c=4294967296, h=4294967296, w=4294967296)\nA = conv2d(out=4294967296, k=1)";
    let error = error_of(text);
    assert!(matches!(error.kind(), ErrorKind::Overflow { .. }), "{error:?}");
}

#[test]
fn builder_errors_name_the_node() {
    let mut builder = GraphBuilder::new(Shape::vector(4));
    builder.read_from("missing");
    builder.name_next("fc").linear(2);
    let error = builder.build().unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::UndefinedInput { .. }), "{error:?}");
    assert_mentions(&error, &["node `fc`", "`missing`"]);
}

#[test]
fn path_total_of_unknown_node() {
    let summary = analyze(&parse(INPUT).unwrap()).unwrap();
    let error = summary.path_total(&["nope"]).unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::UnknownNode { name: "nope".into() });
}

#[test]
fn file_errors_name_the_file() {
    let path = std::env::temp_dir().join(format!("handgrad-shapes-{}.txt", std::process::id()));
    std::fs::write(&path, format!("{INPUT}A = conv2d(out=4, k=11)\n")).unwrap();
    let error = handgrad_shapes::analyze_file(&path).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(error.kind(), ErrorKind::InFile { .. }), "{error:?}");
    assert_mentions(&error, &[path.to_str().unwrap(), "line 2", "node `A`"]);

    let missing = handgrad_shapes::analyze_file(&path).unwrap_err();
    assert!(matches!(missing.kind(), ErrorKind::Io { .. }), "{missing:?}");
}

#[test]
fn non_utf8_file_names_line_and_offset() {
    let path =
        std::env::temp_dir().join(format!("handgrad-shapes-utf8-{}.txt", std::process::id()));
    std::fs::write(&path, b"x = input(c=1, h=4, w=4)\nrelu # caf\xe9\n").unwrap();
    let error = handgrad_shapes::analyze_file(&path).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(error.kind(), ErrorKind::InFile { .. }), "{error:?}");
    assert_mentions(&error, &[path.to_str().unwrap(), "line 2", "UTF-8", "0xe9", "offset 35"]);
}
