"""The metaworld domain."""
