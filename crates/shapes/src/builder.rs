//! [`GraphBuilder`]: describes an architecture from Rust code, so a model crate prints its
//! summary from the same settings it builds its layers with.

use crate::error::Result;
use crate::graph::{Activation, Conv2dSpec, Graph, Node, Op, Pair, PoolSpec, Shape};

/// Builds a [`Graph`] node by node. Each method appends a node reading the previous one
/// (or the node set by [`read_from`](Self::read_from)) and returns its name; mistakes are
/// reported by [`build`](Self::build).
///
/// # Example
/// ```
/// use handgrad_shapes::{analyze, Conv2dSpec, GraphBuilder, Shape};
///
/// let mut builder = GraphBuilder::new(Shape::map(3, 100, 100));
/// builder.name_next("A").conv2d(Conv2dSpec::new(5, 3, 1, 0));
/// builder.relu();
/// builder.flatten();
/// builder.linear(10);
/// let summary = analyze(&builder.build()?)?;
/// assert_eq!(summary.row("A").unwrap().shape, Shape::map(5, 98, 98));
/// # Ok::<(), handgrad_shapes::ShapeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct GraphBuilder {
    nodes: Vec<Node>,
    next_name: Option<String>,
    next_inputs: Option<Vec<String>>,
}

impl GraphBuilder {
    /// Starts a graph whose first node, named `input`, has the given shape.
    pub fn new(input: Shape) -> Self {
        let first =
            Node { name: "input".to_string(), op: Op::Input(input), inputs: vec![], line: None };
        Self { nodes: vec![first], next_name: None, next_inputs: None }
    }

    /// Names the next node; without it nodes are called `<op>_<index>`.
    pub fn name_next(&mut self, name: &str) -> &mut Self {
        self.next_name = Some(name.to_string());
        self
    }

    /// Makes the next node read `input` in place of the previous node, to start a branch.
    pub fn read_from(&mut self, input: &str) -> &mut Self {
        self.next_inputs = Some(vec![input.to_string()]);
        self
    }

    /// Adds a further graph input.
    pub fn input(&mut self, name: &str, shape: Shape) -> String {
        self.name_next(name);
        self.next_inputs = Some(Vec::new());
        self.push(Op::Input(shape))
    }

    /// Adds a 2-D convolution.
    pub fn conv2d(&mut self, spec: Conv2dSpec) -> String {
        self.push(Op::Conv2d(spec))
    }

    /// Adds a max pooling layer.
    pub fn maxpool(&mut self, spec: PoolSpec) -> String {
        self.push(Op::MaxPool(spec))
    }

    /// Adds an average pooling layer.
    pub fn avgpool(&mut self, spec: PoolSpec) -> String {
        self.push(Op::AvgPool(spec))
    }

    /// Adds a global average pool, C x H x W to C x 1 x 1.
    pub fn global_avgpool(&mut self) -> String {
        self.push(Op::GlobalAvgPool)
    }

    /// Adds an adaptive average pool to `height x width`.
    pub fn adaptive_avgpool(&mut self, height: usize, width: usize) -> String {
        self.push(Op::AdaptiveAvgPool(Pair::new(height, width)))
    }

    /// Adds a fully connected layer with a bias.
    pub fn linear(&mut self, out_features: usize) -> String {
        self.push(Op::Linear { out_features, bias: true })
    }

    /// Adds a fully connected layer, with or without a bias.
    pub fn linear_with_bias(&mut self, out_features: usize, bias: bool) -> String {
        self.push(Op::Linear { out_features, bias })
    }

    /// Adds a flatten to a vector.
    pub fn flatten(&mut self) -> String {
        self.push(Op::Flatten)
    }

    /// Adds batch normalisation.
    pub fn batchnorm(&mut self) -> String {
        self.push(Op::BatchNorm)
    }

    /// Adds a ReLU.
    pub fn relu(&mut self) -> String {
        self.push(Op::Activation(Activation::Relu))
    }

    /// Adds any element-wise activation.
    pub fn activation(&mut self, activation: Activation) -> String {
        self.push(Op::Activation(activation))
    }

    /// Adds dropout with drop probability `p`.
    pub fn dropout(&mut self, p: f64) -> String {
        self.push(Op::Dropout { p })
    }

    /// Adds a concatenation of `inputs` along channels or features.
    pub fn concat(&mut self, inputs: &[&str]) -> String {
        self.next_inputs = Some(inputs.iter().map(|name| (*name).to_string()).collect());
        self.push(Op::Concat)
    }

    /// Adds an element-wise sum of `inputs`.
    pub fn add(&mut self, inputs: &[&str]) -> String {
        self.next_inputs = Some(inputs.iter().map(|name| (*name).to_string()).collect());
        self.push(Op::Add)
    }

    /// Adds a single-layer GRU that returns every step's hidden state. `input_size` and
    /// `steps` are checked against the input shape, a sequence `steps x input_size` or a
    /// vector of `steps * input_size` features read in step-major order.
    pub fn gru(&mut self, input_size: usize, hidden_size: usize, steps: usize) -> String {
        self.push(Op::Gru {
            hidden_size,
            input_size: Some(input_size),
            steps: Some(steps),
            bias: true,
        })
    }

    /// Adds a selection of the last step of a sequence.
    pub fn last_step(&mut self) -> String {
        self.push(Op::LastStep)
    }

    /// Checks the nodes and returns the graph; shapes are checked by
    /// [`analyze`](crate::analyze).
    ///
    /// # Errors
    /// As [`Graph::new`]: duplicate names, undefined inputs, wrong input counts, settings
    /// out of range. The errors name the node; built graphs have no line numbers.
    pub fn build(&self) -> Result<Graph> {
        Graph::new(self.nodes.clone())
    }

    fn push(&mut self, op: Op) -> String {
        let name =
            self.next_name.take().unwrap_or_else(|| format!("{}_{}", op.name(), self.nodes.len()));
        let inputs = self.next_inputs.take().unwrap_or_else(|| {
            self.nodes.last().map(|node| vec![node.name.clone()]).unwrap_or_default()
        });
        self.nodes.push(Node { name: name.clone(), op, inputs, line: None });
        name
    }
}
