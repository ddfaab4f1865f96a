"""Bridges from other frameworks into jiasu; each imports its framework only when used.

- `jiasu.integrations.keras`: Keras 3 models (torch backend) trained by `jiasu.fit`,
  accelerated inside `model.fit`, and optimized for inference from a `.keras` file;
- `jiasu.integrations.onnx_input`: adapt an ONNX file exported from TensorFlow (inputs
  (N, H, W) or (N, H, W, C)) to jiasu's (N, C, H, W) images.
"""
