"""Model code shared by the device and the auditor (speech recognizer, CIFAR-10 CNN)."""
