# Shortcuts for the commands in README.md. Everything runs through dev.py, which creates the
# virtualenv .venv and installs the project when needed.
.PHONY: run test ci lint format check-services

run:  ## set up and run the web server (http://localhost:5050) and a task worker
	python3 dev.py run

test:  ## set up and run the tests; pass pytest arguments with ARGS="-k storage"
	python3 dev.py test $(ARGS)

ci:  ## what CI runs: the tests against both databases, then ruff
	bash .ci/run

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format:
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

check-services:  ## does the configured database, storage and cache answer?
	.venv/bin/python manage.py check_services
