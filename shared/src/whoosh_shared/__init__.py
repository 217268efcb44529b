"""The WHOOSH contract.

Everything two services must agree on lives here and only here: message models
(commands, events, queries, work items), subject and stream names, the
`whoosh.yaml` configuration, and thin helpers to reach the bus and the store.
Services import this package; they never import each other.
"""
