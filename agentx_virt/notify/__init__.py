"""Notifications: pure rules from event records and snapshots to traps, and the thin
thread that feeds them."""
