//! Rainfall nowcasting from Himawari-9 satellite patches around rain gauges.

pub mod baselines;
pub mod checkpoint;
pub mod data;
pub mod metrics;
pub mod models;
pub mod normalize;
pub mod synthetic;
pub mod train;
