"""Pure feature logic, free of discord.py objects, so it is tested without a gateway."""
