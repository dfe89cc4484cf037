"""CIFAR-10 record-level membership inference: the target model, the attacks, the CLI."""
