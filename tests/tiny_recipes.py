"""Command-line pieces several test modules share: `--set` arguments and DR-GAN's tiny recipe."""

from __future__ import annotations


def set_args(*sets: str) -> list[str]:
    """`--set KEY=VALUE` arguments for each of `sets`."""
    return [arg for s in sets for arg in ("--set", s)]


#: The DR-GAN recipe the CLI tests train, and the overrides that make it tiny (32 px, width 0.25,
#: no in-training evaluation or samples, no identity loss: the recipe's F is a trained file; the
#: identity loss is tested with a tiny F in tests/drgan/test_drgan_options.py and the contract test).
DRGAN_RECIPE = "configs/drgan/synth-multipie.yaml"
DRGAN_TINY = set_args(
    "data.size=32",
    "net.width=0.25",
    "batch_size=16",
    "train.num_workers=0",
    "train.progress=false",
    "train.channels_last=false",
    "train.eval_every=-1",
    "data.eval=none",
    "train.best_metric=none",
    "train.sample_every=0",
    "loss.identity_weight=0",
)
