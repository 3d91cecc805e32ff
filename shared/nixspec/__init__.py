"""nixspec."""
