"""Fault injection for tests, on private servers only (never the shared :5432 / :6379).

- `redis_server.RedisServer`: a private redis-server to kill, pause (SIGSTOP), flush,
  restart, or restart from an old RDB snapshot.
- `postgres_server.PostgresServer`: a private PostgreSQL 15 cluster to stop, restart, kill
  (crash + recovery) or pause.
- `tcp_proxy.TcpProxy`: a proxy in front of either, to cut or black-hole connections.
- `processes`: child processes with line-by-line output, `free_port()`, and the cleanup
  machinery (atexit reaper, parent-death signal, guardian process) shared by all of the above.
- `fixtures`: the pytest fixtures `redis_server`, `postgres_server`, `tcp_proxy`,
  `python_child` (loaded from tests/conftest.py via `pytest_plugins`).
"""
