"""Test harness: real servers started on loopback, podman systemd hosts, and Pulumi under mocks.

Every service module exposes a context manager that starts the server, waits for real readiness and stops it by PID;
`auxip_testing.fixtures` turns them into session-scoped pytest fixtures.
"""
