"""Discord's REST API under /api/v10, for what guildkit's bot and dashboard call."""
