"""CIFAR-10 data and the reference paper's CNN with its training-time defenses."""
