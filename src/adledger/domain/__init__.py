"""The domain core: plain values and pure functions, standard library only."""
