"""One module per TFLite operator: validation, compile-time parameters, cost."""
