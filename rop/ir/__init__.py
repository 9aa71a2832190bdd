"""The IR: structured three-address code, rank inference, passes, the dataflow graph."""
