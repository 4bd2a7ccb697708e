//! RFC 3261 §17 transactions (placeholder while the layer is written).
