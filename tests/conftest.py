"""Shared pytest set-up: fixture modules live in tests/fixtures/, one per kind of server."""

pytest_plugins = [
    "tests.fixtures.servers",
    "tests.fixtures.cluster",
    "tests.fixtures.cloud",
]
