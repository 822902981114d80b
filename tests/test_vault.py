"""runqy.vault on its own: the AES-256-GCM stored form, associated data, the
master-key checks, masking and entry-key rules. No Redis, no HTTP."""

import base64
import os
import subprocess

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from runqy.errors import Unavailable, ValidationError
from runqy.vault import Cipher, check_entry_key, mask


def new_key() -> tuple[bytes, str]:
    raw = os.urandom(32)
    return raw, base64.b64encode(raw).decode()


def test_stored_form_is_base64_of_nonce_then_ciphertext_and_tag_bound_to_vault_and_key():
    raw, encoded = new_key()
    stored = Cipher(encoded).encrypt("prod", "API_TOKEN", "sk-live-123456")
    blob = base64.b64decode(stored, validate=True)
    assert len(blob) == 12 + len("sk-live-123456") + 16
    assert AESGCM(raw).decrypt(blob[:12], blob[12:], b"prod/API_TOKEN") == b"sk-live-123456"
    with pytest.raises(InvalidTag):
        AESGCM(raw).decrypt(blob[:12], blob[12:], None)


def test_values_round_trip_including_empty_and_non_ascii_text():
    cipher = Cipher(new_key()[1])
    for value in ("", "x", "pässwörd – ✓", "a" * 65536):
        assert cipher.decrypt("v", "K", cipher.encrypt("v", "K", value)) == value


def test_the_same_value_is_encrypted_with_a_fresh_nonce_every_time():
    cipher = Cipher(new_key()[1])
    stored = {cipher.encrypt("v", "K", "same-secret") for _ in range(50)}
    assert len(stored) == 50
    assert len({base64.b64decode(s)[:12] for s in stored}) == 50


@pytest.mark.parametrize("vault, key", [("other", "K"), ("v", "OTHER"), ("v/K", ""), ("", "v/K")])
def test_a_value_does_not_decrypt_under_another_vault_or_key(vault, key):
    cipher = Cipher(new_key()[1])
    stored = cipher.encrypt("v", "K", "sk-live-moved")
    with pytest.raises(Unavailable) as caught:
        cipher.decrypt(vault, key, stored)
    assert caught.value.status == 503
    assert "sk-live-moved" not in str(caught.value.messages)


def test_a_different_master_key_raises_unavailable_naming_the_master_key():
    stored = Cipher(new_key()[1]).encrypt("prod", "DB_PASSWORD", "hunter2-hunter2")
    with pytest.raises(Unavailable) as caught:
        Cipher(new_key()[1]).decrypt("prod", "DB_PASSWORD", stored)
    (message,) = caught.value.messages
    assert "RUNQY_VAULT_MASTER_KEY is not the key" in message
    assert "DB_PASSWORD" in message and "prod" in message
    assert "hunter2" not in message


@pytest.mark.parametrize("damage", [
    lambda s: base64.b64encode(bytes([base64.b64decode(s)[0] ^ 1]) + base64.b64decode(s)[1:]).decode(),
    lambda s: base64.b64encode(base64.b64decode(s)[:-1]).decode(),
    lambda s: base64.b64encode(base64.b64decode(s)[:10]).decode(),
    lambda s: "",
    lambda s: "%%% not base64 %%%",
    lambda s: s[:-3],
])
def test_damaged_stored_values_raise_unavailable_never_garbage(damage):
    cipher = Cipher(new_key()[1])
    stored = cipher.encrypt("v", "K", "sk-live-damaged")
    with pytest.raises(Unavailable):
        cipher.decrypt("v", "K", damage(stored))


@pytest.mark.parametrize("master_key", [
    "",
    "not base64 at all!",
    base64.b64encode(os.urandom(16)).decode(),
    base64.b64encode(os.urandom(31)).decode(),
    base64.b64encode(os.urandom(33)).decode(),
    base64.b64encode(os.urandom(64)).decode(),
])
def test_a_missing_or_malformed_master_key_disables_vaults_with_a_hint(master_key):
    cipher = Cipher(master_key)
    assert not cipher.enabled
    assert "RUNQY_VAULT_MASTER_KEY" in cipher.problem
    assert "generate one with" in cipher.problem
    if master_key:
        assert master_key not in cipher.problem
    for call in (cipher.require, lambda: cipher.encrypt("v", "K", "x"), lambda: cipher.decrypt("v", "K", "AAAA")):
        with pytest.raises(Unavailable) as caught:
            call()
        assert caught.value.messages == [cipher.problem]


def test_the_command_in_the_hint_generates_a_key_that_enables_vaults():
    hint = Cipher("").problem
    command = hint.split("generate one with: ", 1)[1].rstrip(")")
    run = subprocess.run(command, shell=True, check=True, capture_output=True, text=True, timeout=30)
    generated = run.stdout.strip()
    assert len(base64.b64decode(generated, validate=True)) == 32
    cipher = Cipher(generated)
    assert cipher.enabled and cipher.problem == ""


def test_two_ciphers_on_the_same_master_key_read_each_others_values():
    _, encoded = new_key()
    assert Cipher(encoded).decrypt("v", "K", Cipher(encoded).encrypt("v", "K", "shared")) == "shared"


@pytest.mark.parametrize("value, shown", [
    ("", "****"), ("a", "****"), ("abcd", "****"), ("abcde", "ab****de"),
    ("sk-live-abcdefyz", "sk****yz"), ("pässwörd", "pä****rd"),
])
def test_mask_keeps_two_characters_at_each_end_of_values_longer_than_four(value, shown):
    assert mask(value) == shown


@pytest.mark.parametrize("key", ["A", "_", "_PRIVATE", "API_TOKEN", "lower_case", "A1", "X" * 128, "PATHX", "MY_PATH",
                                 "HOMEDIR", "PYTHONPATHS"])
def test_environment_variable_names_are_accepted_as_entry_keys(key):
    check_entry_key(key)


@pytest.mark.parametrize("key", ["", "1ABC", "A-B", "A B", "A=B", "A.B", "ÄBC", "X" * 129, "A\n"])
def test_invalid_environment_variable_names_are_refused(key):
    with pytest.raises(ValidationError) as caught:
        check_entry_key(key)
    assert caught.value.status == 400
    assert "environment variable name" in caught.value.messages[0]


@pytest.mark.parametrize("key", ["PATH", "HOME", "VIRTUAL_ENV", "PYTHONPATH", "LD_PRELOAD", "LD_LIBRARY_PATH",
                                 "path", "home", "virtual_env", "pythonpath", "ld_preload", "Path",
                                 "DYLD_INSERT_LIBRARIES"])
def test_reserved_keys_are_refused_in_any_case(key):
    with pytest.raises(ValidationError) as caught:
        check_entry_key(key)
    assert "reserved" in caught.value.messages[0]
