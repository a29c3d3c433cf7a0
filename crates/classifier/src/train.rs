//! Minibatch SGD for [`TwoLayerNet`], with the reference's learning-rate decay per epoch.

use handgrad_losses::LossError;
use handgrad_tensor::rng::NumpyRng;
use ndarray::{Array2, ArrayView2, Zip};

use crate::kernels::{self, Workspace};
use crate::net::{check_reg, fraction_equal, invalid};
use crate::sparse::{self, Minibatch, OffsetRows, SparseWorkspace, Update};
use crate::{ClassifierError, Gradients, Result, TwoLayerNet};

/// Hyperparameters of one training run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    /// Step size of the first epoch, > 0.
    pub learning_rate: f64,
    /// Factor applied to the learning rate after each epoch, > 0 (1 keeps it fixed).
    pub learning_rate_decay: f64,
    /// L2 regularization strength `reg` in `0.5 reg (|W1|^2 + |W2|^2)`, >= 0.
    pub reg: f64,
    /// Number of SGD steps.
    pub num_iters: usize,
    /// Samples per minibatch, drawn with replacement, >= 1.
    pub batch_size: usize,
    /// Momentum in [0, 1); 0 is plain SGD as in the reference. With momentum the step is
    /// `v = momentum v + g; w -= lr v`, the convention of PyTorch's `SGD`.
    pub momentum: f64,
    /// Seed of the generator that [`TwoLayerNet::fit`] and [`crate::search::search`] use to draw
    /// the weights and then the minibatches. [`TwoLayerNet::train`] takes the generator itself
    /// and ignores this field.
    pub seed: u32,
}

impl Default for TrainConfig {
    /// The defaults of the reference implementation: learning rate 1e-3 decaying by 0.95 per
    /// epoch, reg 5e-6, 100 iterations of batch 200, no momentum, seed 0.
    fn default() -> Self {
        Self {
            learning_rate: 1e-3,
            learning_rate_decay: 0.95,
            reg: 5e-6,
            num_iters: 100,
            batch_size: 200,
            momentum: 0.0,
            seed: 0,
        }
    }
}

impl TrainConfig {
    /// Checks every field against its documented range.
    ///
    /// # Errors
    ///
    /// [`ClassifierError::InvalidConfig`] naming the first field out of range.
    pub fn validate(&self) -> Result<()> {
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(invalid("learning_rate", self.learning_rate, "a finite number > 0"));
        }
        let decay = self.learning_rate_decay;
        if !(decay.is_finite() && decay > 0.0) {
            return Err(invalid("learning_rate_decay", decay, "a finite number > 0"));
        }
        check_reg(self.reg)?;
        if self.batch_size == 0 {
            return Err(invalid("batch_size", self.batch_size, "at least 1"));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(invalid("momentum", self.momentum, "a number in [0, 1)"));
        }
        Ok(())
    }
}

/// Accuracies recorded at the start of an epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochRecord {
    /// Iteration (0-based) after whose step the accuracies were measured.
    pub iteration: usize,
    /// Accuracy on that iteration's minibatch, as the reference measures it.
    pub train_accuracy: f64,
    /// Accuracy on the whole validation set.
    pub val_accuracy: f64,
    /// Learning rate used during the epoch that this record closes.
    pub learning_rate: f64,
}

/// Losses and accuracies recorded by one training run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainHistory {
    /// Minibatch loss of every iteration, before that iteration's step.
    pub loss: Vec<f64>,
    /// One record per epoch.
    pub epochs: Vec<EpochRecord>,
}

impl TrainHistory {
    /// Minibatch accuracy per epoch.
    pub fn train_accuracy(&self) -> Vec<f64> {
        self.epochs.iter().map(|e| e.train_accuracy).collect()
    }

    /// Validation accuracy per epoch.
    pub fn val_accuracy(&self) -> Vec<f64> {
        self.epochs.iter().map(|e| e.val_accuracy).collect()
    }
}

/// Progress report passed to the callback after every iteration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainProgress {
    /// Iteration just finished, 0-based.
    pub iteration: usize,
    /// Total number of iterations of the run.
    pub num_iters: usize,
    /// Minibatch loss of this iteration.
    pub loss: f64,
    /// Set when this iteration closed an epoch.
    pub epoch: Option<EpochRecord>,
}

/// Training and validation sets, borrowed.
struct Sets<'a> {
    x: ArrayView2<'a, f64>,
    y: &'a [usize],
    x_val: ArrayView2<'a, f64>,
    y_val: &'a [usize],
}

impl TwoLayerNet {
    /// Trains the network in place by minibatch SGD and returns what was recorded.
    ///
    /// Each iteration draws `batch_size` row indices with replacement by
    /// `rng.choice(num_train, batch_size)` (numpy's `np.random.choice`), computes
    /// [`TwoLayerNet::loss`] on them and steps every parameter. With
    /// `iterations_per_epoch = max(num_train / batch_size, 1)` as a real number, each iteration
    /// `it` with `it % iterations_per_epoch == 0` records the minibatch and validation accuracy
    /// and then multiplies the learning rate by `learning_rate_decay`. `progress` is called
    /// after every iteration.
    ///
    /// # Errors
    ///
    /// - [`ClassifierError::InvalidConfig`] when `config` is out of range;
    /// - [`ClassifierError::ShapeMismatch`], [`ClassifierError::LabelOutOfRange`] or
    ///   [`ClassifierError::NonFinite`] when a data set does not fit the network;
    /// - [`ClassifierError::Diverged`] when the loss stops being finite. The parameters then hold
    ///   the values of the last finite step.
    #[allow(clippy::too_many_arguments)]
    pub fn train(
        &mut self,
        x: &ArrayView2<'_, f64>,
        y: &[usize],
        x_val: &ArrayView2<'_, f64>,
        y_val: &[usize],
        config: &TrainConfig,
        rng: &mut NumpyRng,
        progress: &mut dyn FnMut(&TrainProgress),
    ) -> Result<TrainHistory> {
        const OP: &str = "TwoLayerNet::train";
        config.validate()?;
        self.check_labelled(OP, "x", x, y)?;
        self.check_labelled(OP, "x_val", x_val, y_val)?;
        kernels::ensure_finite(OP, "x", x)?;
        kernels::ensure_finite(OP, "x_val", x_val)?;

        let sets = Sets { x: x.view(), y, x_val: x_val.view(), y_val };
        Trainer::new(self, config, &sets).run(self, &sets, rng, progress)
    }

    /// Draws a network with [`TwoLayerNet::init`] from a generator seeded with `config.seed`
    /// and trains it with [`TwoLayerNet::train`] from the same generator, as the reference does.
    ///
    /// # Errors
    ///
    /// As [`TwoLayerNet::init`] and [`TwoLayerNet::train`].
    #[allow(clippy::too_many_arguments)]
    pub fn fit(
        hidden_size: usize,
        std: f64,
        x: &ArrayView2<'_, f64>,
        y: &[usize],
        x_val: &ArrayView2<'_, f64>,
        y_val: &[usize],
        num_classes: usize,
        config: &TrainConfig,
        progress: &mut dyn FnMut(&TrainProgress),
    ) -> Result<(Self, TrainHistory)> {
        let mut rng = NumpyRng::new(config.seed);
        let mut net = Self::init(x.ncols(), hidden_size, num_classes, std, &mut rng)?;
        let history = net.train(x, y, x_val, y_val, config, &mut rng, progress)?;
        Ok((net, history))
    }
}

/// State of one training run: buffers reused by every iteration.
struct Trainer {
    config: TrainConfig,
    /// The drawn rows, copied for the dense passes; empty when the sparse passes run.
    batch_x: Array2<f64>,
    batch_indices: Vec<usize>,
    batch_y: Vec<usize>,
    ws: Workspace,
    val_ws: Option<Workspace>,
    sparse: Option<SparseSets>,
    grads: Gradients,
    velocity: Option<Gradients>,
    /// `|W1|^2` of the current weights, kept up to date by the sparse step.
    w1_squares: f64,
}

/// The data sets in sparse form, when they are sparse enough to pay (see [`crate::sparse`]).
struct SparseSets {
    train: OffsetRows,
    /// The validation set against the training set's offsets, when it is sparse enough too.
    validation: Option<OffsetRows>,
    ws: SparseWorkspace,
}

impl SparseSets {
    /// Stores the sets against the training set's most common value per column, or returns
    /// `None` when the training set is too dense for the sparse passes to pay.
    fn new(net: &TwoLayerNet, sets: &Sets<'_>) -> Option<Self> {
        if !sparse::layouts_fit(net) {
            return None;
        }
        let offsets = sparse::common_offsets(&sets.x);
        let train = OffsetRows::new(&sets.x, offsets.clone());
        if train.density() > sparse::MAX_DENSITY {
            return None;
        }
        let validation = Some(OffsetRows::new(&sets.x_val, offsets))
            .filter(|rows| rows.density() <= sparse::MAX_DENSITY);
        Some(Self { train, validation, ws: SparseWorkspace::new(net) })
    }
}

impl Trainer {
    fn new(net: &TwoLayerNet, config: &TrainConfig, sets: &Sets<'_>) -> Self {
        let batch = config.batch_size;
        let sparse = SparseSets::new(net, sets);
        let batch_x_rows = if sparse.is_some() { 0 } else { batch };
        Self {
            config: *config,
            batch_x: Array2::zeros((batch_x_rows, sets.x.ncols())),
            batch_indices: Vec::with_capacity(batch),
            batch_y: vec![0; batch],
            ws: Workspace::new(net, batch),
            val_ws: None,
            sparse,
            grads: kernels::zero_gradients(net),
            velocity: (config.momentum > 0.0).then(|| kernels::zero_gradients(net)),
            w1_squares: net.w1.iter().map(|v| v * v).sum(),
        }
    }

    fn run(
        mut self,
        net: &mut TwoLayerNet,
        sets: &Sets<'_>,
        rng: &mut NumpyRng,
        progress: &mut dyn FnMut(&TrainProgress),
    ) -> Result<TrainHistory> {
        let num_train = sets.x.nrows();
        let num_iters = self.config.num_iters;
        let iterations_per_epoch = (num_train as f64 / self.config.batch_size as f64).max(1.0);
        let mut learning_rate = self.config.learning_rate;
        let mut history = TrainHistory { loss: Vec::with_capacity(num_iters), epochs: Vec::new() };

        for iteration in 0..num_iters {
            self.batch_indices = rng.choice(num_train, self.config.batch_size);
            self.gather(sets);
            let loss = self.step(net, iteration, learning_rate)?;
            history.loss.push(loss);

            let mut epoch = None;
            if iteration as f64 % iterations_per_epoch == 0.0 {
                let record = self.measure(net, sets, iteration, learning_rate);
                history.epochs.push(record);
                epoch = Some(record);
                learning_rate *= self.config.learning_rate_decay;
            }
            progress(&TrainProgress { iteration, num_iters, loss, epoch });
        }
        Ok(history)
    }

    /// Copies the drawn labels, and for the dense passes the drawn rows, into the minibatch
    /// buffers.
    fn gather(&mut self, sets: &Sets<'_>) {
        let indices = &self.batch_indices;
        for (mut row, &index) in self.batch_x.rows_mut().into_iter().zip(indices) {
            row.assign(&sets.x.row(index));
        }
        for (label, &index) in self.batch_y.iter_mut().zip(indices) {
            *label = sets.y[index];
        }
    }

    /// Computes the minibatch loss and gradients and updates the parameters.
    ///
    /// The sparse passes step `W1` while they compute its gradient; the other parameters, and
    /// every parameter of the dense passes, are stepped here.
    fn step(&mut self, net: &mut TwoLayerNet, iteration: usize, learning_rate: f64) -> Result<f64> {
        let reg = self.config.reg;
        let first_layer_stepped = self.sparse.is_some();
        let loss = match self.sparse.as_mut() {
            Some(sparse) => sparse::step_first_layer(
                net,
                Minibatch { x: &sparse.train, rows: &self.batch_indices, labels: &self.batch_y },
                reg,
                Update { learning_rate, momentum: self.config.momentum },
                &mut self.w1_squares,
                self.velocity.as_mut().map(|velocity| &mut velocity.w1),
                &mut self.ws,
                &mut sparse.ws,
                &mut self.grads,
            ),
            None => kernels::loss_and_gradients(
                net,
                &self.batch_x.view(),
                &self.batch_y,
                reg,
                &mut self.ws,
                &mut self.grads,
            ),
        };
        let loss = loss.map_err(|error| match error {
            ClassifierError::Loss(LossError::NonFinite { value, .. }) => {
                ClassifierError::Diverged { iteration, loss: value }
            }
            other => other,
        })?;
        if !loss.is_finite() {
            return Err(ClassifierError::Diverged { iteration, loss });
        }

        let with_w1 = !first_layer_stepped;
        match self.velocity.as_mut() {
            None => apply(net, &self.grads, learning_rate, with_w1),
            Some(velocity) => {
                accumulate(velocity, &self.grads, self.config.momentum, with_w1);
                apply(net, velocity, learning_rate, with_w1);
            }
        }
        Ok(loss)
    }

    /// Measures minibatch and validation accuracy with the updated parameters.
    fn measure(
        &mut self,
        net: &TwoLayerNet,
        sets: &Sets<'_>,
        iteration: usize,
        learning_rate: f64,
    ) -> EpochRecord {
        match self.sparse.as_mut() {
            Some(sparse) => sparse::forward(
                net,
                &sparse.train,
                &self.batch_indices,
                &mut self.ws,
                &mut sparse.ws,
            ),
            None => kernels::forward(net, &self.batch_x.view(), &mut self.ws),
        }
        let predicted = kernels::argmax_rows(&self.ws.scores.view());
        let train_accuracy = fraction_equal(&predicted, &self.batch_y);

        let num_val = sets.x_val.nrows();
        let val_ws = self.val_ws.get_or_insert_with(|| Workspace::new(net, num_val));
        match self.sparse.as_mut() {
            Some(SparseSets { validation: Some(validation), ws, .. }) => {
                let rows: Vec<usize> = (0..num_val).collect();
                sparse::forward(net, validation, &rows, val_ws, ws);
            }
            _ => kernels::forward(net, &sets.x_val, val_ws),
        }
        let predicted = kernels::argmax_rows(&val_ws.scores.view());
        let val_accuracy = fraction_equal(&predicted, sets.y_val);

        EpochRecord { iteration, train_accuracy, val_accuracy, learning_rate }
    }
}

/// Sets `v = momentum v + g` for every parameter, `W1` only when `with_w1` is set.
fn accumulate(velocity: &mut Gradients, grads: &Gradients, momentum: f64, with_w1: bool) {
    let update = |v: &mut f64, &g: &f64| *v = momentum * *v + g;
    if with_w1 {
        Zip::from(&mut velocity.w1).and(&grads.w1).for_each(update);
    }
    Zip::from(&mut velocity.b1).and(&grads.b1).for_each(update);
    Zip::from(&mut velocity.w2).and(&grads.w2).for_each(update);
    Zip::from(&mut velocity.b2).and(&grads.b2).for_each(update);
}

/// Sets `w -= learning_rate * step` for every parameter, `W1` only when `with_w1` is set.
fn apply(net: &mut TwoLayerNet, step: &Gradients, learning_rate: f64, with_w1: bool) {
    if with_w1 {
        net.w1.scaled_add(-learning_rate, &step.w1);
    }
    net.b1.scaled_add(-learning_rate, &step.b1);
    net.w2.scaled_add(-learning_rate, &step.w2);
    net.b2.scaled_add(-learning_rate, &step.b2);
}
