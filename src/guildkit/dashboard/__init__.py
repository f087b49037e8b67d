"""The dashboard: Discord OAuth2 login, the JSON API and the HTML pages (DESIGN §7)."""
