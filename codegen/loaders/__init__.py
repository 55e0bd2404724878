"""Loaders: read user inputs (.tflite models, board files, role specs) into `codegen.ir`.

Loaders validate as they read and raise `codegen.errors.ShoalInputError` naming the file, the
field and what is accepted. They never write anything.
"""
