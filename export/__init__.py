"""ONNX export and onnxruntime serving (imports without TensorFlow)."""
