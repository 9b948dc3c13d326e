"""The collection room: ``jat-collect``, local data sets in the jat-dataset schema, and their cache."""
