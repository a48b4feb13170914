"""The engine: run directories now; the training loop, checkpoints and distributed running
arrive with the recognizer issue."""
