"""The credential fields of `nats:` in whoosh.yaml.

How a process uses them to connect: whoosh_shared.runtime.nats_auth.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from whoosh_shared.contract.agents import Strict

TOKEN_FILE_NAME = "nats.token"


class NatsTls(Strict):
    ca: str | None = Field(default=None, description="CA file that signed the server's cert")
    cert: str | None = Field(default=None, description="client certificate (mutual TLS)")
    key: str | None = Field(default=None, description="the client certificate's key")

    @model_validator(mode="after")
    def _cert_with_key(self) -> NatsTls:
        if bool(self.cert) != bool(self.key):
            raise ValueError("nats.tls: 'cert' and 'key' go together")
        return self


class NatsCredentials(Strict):
    """The credential fields of `nats:` (mixed into NatsSettings)."""

    user: str | None = None
    password: str | None = Field(default=None, description="with 'user'")
    token: str | None = None
    token_file: str | None = Field(default=None, description="a file holding the token")
    creds_file: str | None = Field(default=None, description="a NATS .creds file (JWT + nkey)")
    nkeys_seed: str | None = Field(default=None, description="a file holding an nkey seed")
    tls: NatsTls | None = None

    @model_validator(mode="after")
    def _one_credential(self) -> NatsCredentials:
        given = [
            name
            for name, present in (
                ("user/password", self.user or self.password),
                ("token", self.token or self.token_file),
                ("creds_file", self.creds_file),
                ("nkeys_seed", self.nkeys_seed),
            )
            if present
        ]
        if len(given) > 1:
            raise ValueError(f"nats: give one credential, not {' and '.join(given)}")
        if self.password and not self.user:
            raise ValueError("nats.password needs nats.user")
        if self.token and self.token_file:
            raise ValueError("nats: give 'token' or 'token_file', not both")
        return self

    @property
    def has_credential(self) -> bool:
        return bool(self.user or self.token or self.token_file or self.creds_file
                    or self.nkeys_seed)  # fmt: skip
