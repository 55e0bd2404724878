"""Oracles that check Shoal's outputs against runtimes the project did not write.

`tflm_oracle` runs models in TensorFlow Lite Micro and in tflite-runtime's reference kernels.
"""
