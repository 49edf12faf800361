"""Test harness: real servers started on loopback, podman systemd hosts, and Pulumi under mocks.

Every service module exposes a context manager that starts the server, waits for real readiness and stops it by PID;
each module also defines its session-scoped pytest fixture (listed in tests/conftest.py).
"""
