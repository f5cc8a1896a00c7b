"""The readings path: validated readings become rows, rules look at them, the store keeps them once."""
