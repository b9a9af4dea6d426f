"""vasr.export: checkpoint -> ONNX model directory (fp32 + gated int8) for the runtime and sherpa-onnx; needs torch."""
