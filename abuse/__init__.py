"""The abuse campaign against a real dashboard process; `python -m abuse` writes abuse/report.md."""
