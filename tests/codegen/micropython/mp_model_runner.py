"""Runs on the MicroPython unix port: drives generated model modules from a job file.

Usage: micropython mp_model_runner.py BACKEND JOB_FILE. BACKEND is "viper" or "bytecode"
(shoal_nn.set_backend; the run fails if it cannot be selected). Each job line is one of
`M name` (import module `name`), `I hex` (invoke it on these input bytes), `R` (reset it);
every invoke prints `O hex` of the output, and the run ends with `DONE`.
"""

import binascii
import sys

import shoal_nn


def main(backend, job_path):
    shoal_nn.set_backend(backend)
    print("BACKEND", shoal_nn.BACKEND)
    model = None
    with open(job_path) as job:
        for line in job:
            line = line.strip()
            if not line:
                continue
            if line[0] == "M":
                model = __import__(line[2:])
            elif line[0] == "R":
                model.reset()
            elif line[0] == "I":
                out = model.invoke(binascii.unhexlify(line[2:]))
                print("O", binascii.hexlify(out).decode())
    print("DONE")


main(sys.argv[1], sys.argv[2])
