"""The simulated world: raster camera, car dynamics with battery-speed curve, domain
randomization, and the Gymnasium environment with DeepRacer semantics."""
