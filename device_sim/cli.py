"""``device-sim`` console script: train and evaluate the recognizer, serve it as a smart speaker."""

from __future__ import annotations

from common.cli_group import console_group

main = console_group(
    "device-sim",
    "The simulated smart speaker and its vendor-side tools.",
    {
        "train": "device_sim.cli_train:train",
        "eval": "device_sim.cli_train:evaluate",
        "serve": "device_sim.cli_serve:serve",
        "query": "device_sim.cli_serve:query",
        "broker": "device_sim.cli_serve:broker",
    },
)


if __name__ == "__main__":
    main()
