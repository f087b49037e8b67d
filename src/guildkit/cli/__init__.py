"""The `guildkit` command. Each sub-command lives in its own module and is registered in main."""
