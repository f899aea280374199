"""The training engine behind src/train.py."""
