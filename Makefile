# Convenience targets, as the seed's Makefile had them.
.PHONY: setup prod logs stop test serve

setup:            ## create .env from the example
	test -f .env || cp .env.example .env

prod: setup       ## gateway + Redis in Docker
	docker compose up -d --build

logs:
	docker compose logs -f gateway

stop:
	docker compose down

serve:            ## run locally on embedded defaults
	pip install . && aigw serve

test:             ## the README's test command
	pip install -e '.[test]' && pytest
