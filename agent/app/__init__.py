"""The application shell: CLI, daemon, runtime, web server and its configuration."""
