# Two commands on a fresh machine: `make demo` (the main job) and `make test` (the whole suite).
# Both set up everything they need (Debian packages when root, .venv, the package); see ci/run.sh.
.PHONY: demo test lint types setup clean

demo:
	ci/run.sh demo

test:
	ci/run.sh all

lint:
	ci/run.sh lint

types:
	ci/run.sh types

setup:
	ci/run.sh setup

clean:
	rm -rf build .venv *.egg-info
