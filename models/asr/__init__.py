"""DNN-HMM phone recognizer: features, HMM, network, training, decoding, scoring, checkpoints."""
