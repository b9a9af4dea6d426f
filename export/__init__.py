"""vasr.export: ONNX export and the torch-free recognizer runtime (numpy + onnxruntime + vasr.kernels)."""
