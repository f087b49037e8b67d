"""The discord.py bot (DESIGN §8): one composition root (`app`), one extension per feature.

Every handler reads the guild's settings through the settings layer on every event, never from a
copy, so an edit made in the dashboard is acted on as soon as the reader sees its version.
"""
