"""Database schema and engine construction (PostgreSQL is the only source of truth)."""
