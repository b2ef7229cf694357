"""Deployment: ONNX export with metadata, ONNX Runtime as a backend, and a frame-stream `Predictor`."""
