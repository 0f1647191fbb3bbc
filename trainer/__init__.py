"""Training: reward-function API, PPO in TensorFlow, evaluation, TFLite export and parity."""
