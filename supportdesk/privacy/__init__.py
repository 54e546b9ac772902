"""A customer's personal data (DESIGN.md section 13): export, erasure, and the retention purge."""
