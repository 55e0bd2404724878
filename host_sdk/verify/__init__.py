"""Oracles that check Shoal's outputs against runtimes the project did not write, and the
check users run on their own models.

`tflm_oracle` runs models in TensorFlow Lite Micro and in tflite-runtime's reference kernels;
`model_verify` (`shoal verify`) builds and runs the generated C or MicroPython for a model on
the host and virtual boards and compares every output byte with TFLM.
"""
