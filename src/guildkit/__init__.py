"""guildkit: Discord guild settings with PostgreSQL as truth and Redis as an untrusted cache."""
