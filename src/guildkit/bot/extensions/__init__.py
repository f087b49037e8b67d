"""One discord.py extension per feature; each reads the guild's settings on every event."""
