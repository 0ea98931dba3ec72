"""Secret references: parsing, resolving each kind, and errors that never show a value."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

from hfwizard.errors import SecretError
from hfwizard.secrets import RefKind, parse_ref, resolve, store_in_keyring


class MemoryKeyring(KeyringBackend):
    """A keyring of the tests' own: this machine has no desktop keyring service."""

    # Below the fail backend's 0: keyring registers every subclass and would otherwise pick this
    # one for the whole session, hiding the missing keyring from other tests. set_keyring still uses it.
    priority = -1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.items.pop((service, username), None)


@pytest.fixture(autouse=True)
def _restore_keyring() -> object:
    original = keyring.get_keyring()
    yield
    keyring.set_keyring(original)


def test_parse_each_kind() -> None:
    assert parse_ref("env:PGPASSWORD").kind is RefKind.ENV
    assert parse_ref("file:~/pw").target == "~/pw"
    assert parse_ref("keyring:hfwizard/pg").kind is RefKind.KEYRING
    assert parse_ref("k8s:db-creds/password").k8s_secret == ("db-creds", "password")


def test_literal_value_error_does_not_repeat_it() -> None:
    with pytest.raises(ValueError) as info:
        parse_ref("hunter2-CANARY")
    assert "CANARY" not in str(info.value)


def test_env_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HFW_TEST_PW", "CANARY-env")
    secret = resolve("env:HFW_TEST_PW")
    assert secret.reveal() == "CANARY-env"
    assert "CANARY" not in repr(secret) and "CANARY" not in str(secret)
    monkeypatch.delenv("HFW_TEST_PW")
    with pytest.raises(SecretError, match="HFW_TEST_PW is not set"):
        resolve("env:HFW_TEST_PW")


def test_file_reference_strips_one_trailing_newline(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_text("CANARY-file\n")
    assert resolve(f"file:{f}").reveal() == "CANARY-file"
    with pytest.raises(SecretError, match="does not exist"):
        resolve(f"file:{tmp_path / 'missing'}")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(SecretError, match="empty"):
        resolve(f"file:{tmp_path / 'empty'}")


def test_keyring_reference_with_a_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    ref = store_in_keyring("hfwizard", "clerk", "CANARY-keyring")
    assert str(ref) == "keyring:hfwizard/clerk"
    assert resolve(ref).reveal() == "CANARY-keyring"
    with pytest.raises(SecretError, match="no entry 'nope'"):
        resolve("keyring:hfwizard/nope")


def test_no_keyring_says_so_and_offers_another_kind() -> None:
    from keyring.backends import fail

    keyring.set_keyring(fail.Keyring())
    with pytest.raises(SecretError) as info:
        resolve("keyring:hfwizard/pg")
    assert "no system keyring" in str(info.value) and "env:NAME" in str(info.value)
    with pytest.raises(SecretError, match="no system keyring"):
        store_in_keyring("hfwizard", "pg", "CANARY")


def test_k8s_reference_is_read_in_the_cluster() -> None:
    with pytest.raises(SecretError, match="lives in the cluster"):
        resolve("k8s:db/password")


def test_empty_reference_names_what_is_missing() -> None:
    for text, example in (("env:", "env:PGPASSWORD"), ("file:", "file:/path/to/secret"), ("k8s:", "k8s:SECRET/KEY")):
        with pytest.raises(ValueError) as info:
            parse_ref(text)
        assert "names nothing after the colon" in str(info.value) and example in str(info.value)
        assert "literal value" not in str(info.value)


def test_file_reference_to_a_directory_fifo_device_or_huge_file_is_refused(tmp_path: Path) -> None:
    import os
    import time

    fifo = tmp_path / "pw.fifo"
    os.mkfifo(fifo)
    huge = tmp_path / "huge"
    with huge.open("wb") as fh:
        fh.truncate(2**30)  # sparse: reading it would take a gigabyte of memory
    for path, says in ((tmp_path, "is a directory"), (fifo, "named pipe (FIFO)"),
                       (Path("/dev/zero"), "character device"), (huge, "1024.0 MiB, over the")):
        started = time.monotonic()
        with pytest.raises(SecretError) as info:
            resolve(f"file:{path}")
        assert time.monotonic() - started < 0.5
        assert says in str(info.value) and f"secret reference file:{path}" in str(info.value)
