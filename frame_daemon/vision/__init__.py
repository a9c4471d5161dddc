"""Photo loading and the TFLite mood model."""
