//! MNIST preprocessing for the two-layer network.
