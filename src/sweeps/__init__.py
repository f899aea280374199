"""Paper sweeps: experiment specs -> jobs (spec), fabricated smoke data (smoke_data), the
results store (store) and the multirun driver behind scripts/reproduce.py (launch)."""
