"""Base types every layer shares (models, durations, secrets, addresses, periods); imports nothing of the project."""
