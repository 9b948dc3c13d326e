"""The text domain."""
