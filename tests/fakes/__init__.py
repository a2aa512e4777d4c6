"""Local fake servers that speak the real wire protocols of external services."""
