//! The shipped torchvision descriptions against torchvision's published parameter counts
//! (exact) and multiply-accumulate counts (within 1%). Sources: the model tables of the
//! torchvision documentation (v0.15 and later), which list 61,100,840 / 138,357,544 /
//! 11,689,512 parameters and 0.71 / 15.47 / 1.81 GFLOPS, computed there as conv and linear
//! multiply-accumulates at 3 x 224 x 224.

use std::path::PathBuf;

use handgrad_shapes::{analyze, parse_file, Shape, Summary};

fn summary_of(file: &str) -> Summary {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../architectures").join(file);
    let graph = parse_file(&path).unwrap_or_else(|error| panic!("{error}"));
    analyze(&graph).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn assert_macs_within_one_percent(summary: &Summary, published: f64) {
    let relative = (summary.macs as f64 - published).abs() / published;
    assert!(relative < 0.01, "MACs {} vs published {published}: {relative:.4}", summary.macs);
}

#[test]
fn alexnet_matches_torchvision() {
    let summary = summary_of("alexnet.txt");
    assert_eq!(summary.params, 61_100_840);
    assert_macs_within_one_percent(&summary, 0.714e9);
    assert_eq!(summary.row("pool5").unwrap().shape, Shape::map(256, 6, 6));
    assert_eq!(summary.row("flat").unwrap().shape, Shape::vector(9216));
}

#[test]
fn vgg16_matches_torchvision() {
    let summary = summary_of("vgg16.txt");
    assert_eq!(summary.params, 138_357_544);
    assert_macs_within_one_percent(&summary, 15.47e9);
    assert_eq!(summary.row("flat").unwrap().shape, Shape::vector(25_088));
}

#[test]
fn resnet18_matches_torchvision() {
    let summary = summary_of("resnet18.txt");
    assert_eq!(summary.params, 11_689_512);
    assert_macs_within_one_percent(&summary, 1.814e9);
    assert_eq!(summary.row("layer4.1.relu2").unwrap().shape, Shape::map(512, 7, 7));
}

#[test]
fn receptive_fields_of_last_feature_maps() {
    // size_out = size_in + (k - 1) * jump_in, jump_out = jump_in * s.
    // AlexNet: 11 (jump 4); pool 3/2: 11 + 2*4 = 19 (jump 8); conv 5: 19 + 4*8 = 51;
    // pool: 51 + 2*8 = 67 (jump 16); three 3x3: 67 + 3*2*16 = 163; pool: 163 + 2*16 = 195.
    // VGG-16: 1 + 2*2 = 5; pool 2/2: 6 (jump 2); 6 + 2*2*2 = 14; 16 (jump 4); 16 + 3*2*4 = 40;
    // 44 (jump 8); 44 + 3*2*8 = 92; 100 (jump 16); 100 + 3*2*16 = 196; 196 + 16 = 212.
    // ResNet-18: 7 (jump 2); pool 3/2: 11 (jump 4); layer1: 11 + 4*2*4 = 43;
    // layer2: 43 + 2*4 = 51 (jump 8), 51 + 3*2*8 = 99; layer3: 99 + 2*8 = 115 (jump 16),
    // 115 + 3*2*16 = 211; layer4: 211 + 2*16 = 243 (jump 32), 243 + 3*2*32 = 435.
    let cases = [
        ("alexnet.txt", "pool5", 195, 32),
        ("vgg16.txt", "pool5", 212, 32),
        ("resnet18.txt", "layer4.1.relu2", 435, 32),
    ];
    for (file, node, size, jump) in cases {
        let field = summary_of(file).row(node).unwrap().receptive_field.unwrap();
        assert_eq!(field.height.size, size, "{file} {node}");
        assert_eq!(field.width.size, size, "{file} {node}");
        assert_eq!(field.height.jump, jump, "{file} {node}");
    }
}

#[test]
fn resnet18_batchnorm_counts_scale_and_shift() {
    let summary = summary_of("resnet18.txt");
    let bn1 = summary.row("bn1").unwrap();
    assert_eq!(bn1.weights, 64);
    assert_eq!(bn1.biases, 64);
    assert_eq!(bn1.macs, 0);
}
