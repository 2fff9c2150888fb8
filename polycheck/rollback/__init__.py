"""Rollback hooks: a check marked for rollback that fails for good rolls its service back at once, and escalates."""
