//! Training-step benchmark.
