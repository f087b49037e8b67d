"""Fault-under-load campaign for guildkit (`python -m chaos`, `make chaos`)."""
