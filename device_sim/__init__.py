"""Simulated smart speaker serving a DNN-HMM recognizer over MQTT."""
