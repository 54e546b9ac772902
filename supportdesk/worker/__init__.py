"""The reliable Redis queue of outbound email and the process that drains it."""
