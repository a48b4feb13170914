"""Head-pose (yaw) estimation: an independent judge of the poses generated faces have.

- `hfr.pose.model`: `YawNet` (4 conv-BN-ReLU-maxpool blocks, global pooling, linear: yaw / 90),
  `prepare` (any size and channel count to the net's input), `predict_degrees`.
- `hfr.pose.config`: `YawConfig`, the `yaw` recipe (`configs/judge/synth-yaw.yaml`).
- `hfr.pose.task`: `YawTask`, the `yaw` task (`hfr train-generator --config configs/judge/synth-yaw.yaml`).
- `hfr.pose.export`: `yaw_estimator.pt` (`hfr-yaw-estimator/1`), `load_yaw_estimator(path, device)`
  -> `YawEstimator.estimate(images) -> degrees`.

Submodules are imported on use, so `import hfr.pose` does not load torch.
"""
