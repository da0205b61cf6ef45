//! kvsim
