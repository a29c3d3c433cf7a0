//! The network's description for the shape calculator of `handgrad-shapes`.

use handgrad_shapes::{Graph, GraphBuilder, Result, Shape};

use crate::TwoLayerNet;

impl TwoLayerNet {
    /// Describes the network as a graph `input (D) - fc1 (H) - relu1 - fc2 (C)`, whose analysis
    /// by [`handgrad_shapes::analyze`] gives the parameter and multiply-accumulate counts. The
    /// softmax belongs to the loss and has no node.
    ///
    /// # Errors
    ///
    /// As [`GraphBuilder::build`]; a network built by this crate always has a valid graph.
    pub fn architecture(&self) -> Result<Graph> {
        let mut builder = GraphBuilder::new(Shape::vector(self.input_size()));
        builder.name_next("fc1").linear(self.hidden_size());
        builder.name_next("relu1").relu();
        builder.name_next("fc2").linear(self.num_classes());
        builder.build()
    }
}
