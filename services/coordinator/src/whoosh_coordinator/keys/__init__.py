"""API keys: minting, revoking and verifying; the ApiKey aggregate and the registry of
key hashes the gateway verifies against (a bounded context of the coordinator)."""
