"""The babyai domain."""
