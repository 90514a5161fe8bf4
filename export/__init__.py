"""ONNX export and onnxruntime serving (imports without TensorFlow).

* :mod:`export.onnx_export`: trained artifact -> verified, self-describing
  ONNX file (tf2onnx; TensorFlow is imported only when a function needs it);
  optional int8 dynamic quantization.
* :mod:`export.onnx_metadata`: what an exported file says about itself.
* :mod:`export.scorer`: :class:`PatternScorer`, one onnxruntime session
  scoring feature windows or raw OHLCV bars.
* :mod:`engine.jobs.predict`: the ``engine predict`` job over stored bars.
"""

from export.scorer import PatternScorer, ScoringError

__all__ = ["PatternScorer", "ScoringError"]
