"""Vaults in the store (runqy/store/vaults.py) against a real Redis: one hash per vault, ``:meta``
and one ``e:<KEY>`` field per entry, and the index set, read back raw. The store keeps entries
as it is given them (runqy.vault encrypts the values first), so plain values stand in here."""

import json

import pytest

from runqy import keys
from runqy.errors import EntryNotFound, VaultExists, VaultNotFound
from tests.conftest import snapshot
from tests.helpers import NOW, rfc3339

SEALED = "c2VhbGVk"  # stands for the master key's check value
TOKEN = {"value": "dG9rZW4=", "is_secret": True}
REGION = {"value": "ZXU=", "is_secret": False}


def fields(r, name: str) -> dict[str, object]:
    """A vault hash, its fields' JSON decoded."""
    return {k.decode(): json.loads(v) for k, v in r.hgetall(keys.vault(name)).items()}


def vault_with(store, name: str, **entries: dict) -> None:
    store.vaults.create(name, "", SEALED)
    for key, entry in entries.items():
        store.vaults.put_entry(name, key, entry)


def test_create_writes_the_meta_field_and_the_index(pinned, r):
    meta = pinned.vaults.create("prod", "production secrets", SEALED)

    assert meta == {"name": "prod", "description": "production secrets", "created_at": rfc3339(NOW),
                    "check": SEALED}
    assert fields(r, "prod") == {keys.VAULT_META: meta}
    assert r.smembers(keys.VAULTS) == {b"prod"}


def test_create_of_an_existing_vault_raises_vault_exists_and_changes_nothing(pinned, r):
    vault_with(pinned, "prod", API_TOKEN=TOKEN)
    before = snapshot(r)

    with pytest.raises(VaultExists) as caught:
        pinned.vaults.create("prod", "second", "other-check")

    assert caught.value.name == "prod"
    assert snapshot(r) == before


def test_meta_reads_the_meta_field_only(pinned, r):
    vault_with(pinned, "prod", API_TOKEN=TOKEN)

    assert pinned.vaults.meta("prod") == fields(r, "prod")[keys.VAULT_META]


def test_get_answers_the_meta_and_the_entries_by_key(pinned, r):
    vault_with(pinned, "prod", ZETA=TOKEN, ALPHA=REGION)

    meta, entries = pinned.vaults.get("prod")

    assert meta["name"] == "prod"
    assert list(entries) == ["ALPHA", "ZETA"]
    assert entries == {"ALPHA": {**REGION, "updated_at": rfc3339(NOW)}, "ZETA": {**TOKEN, "updated_at": rfc3339(NOW)}}


def test_get_many_answers_each_vaults_entries_in_order_and_none_for_a_missing_one(pinned, r):
    vault_with(pinned, "base", SHARED=TOKEN)
    vault_with(pinned, "empty")

    got = pinned.vaults.get_many(["empty", "nosuch", "base"])

    assert got == [{}, None, {"SHARED": {**TOKEN, "updated_at": rfc3339(NOW)}}]


@pytest.mark.parametrize("read", ["meta", "get"])
def test_reading_a_missing_vault_raises_vault_not_found(pinned, r, read):
    r.hset(keys.vault("stray"), keys.vault_entry_field("K"), json.dumps(TOKEN))  # entries without a meta field

    for name in ("nosuch", "stray"):
        with pytest.raises(VaultNotFound) as caught:
            getattr(pinned.vaults, read)(name)
        assert caught.value.name == name


def test_all_answers_every_indexed_vault_by_name_with_its_entry_count(pinned, r):
    vault_with(pinned, "prod", API_TOKEN=TOKEN, REGION=REGION)
    vault_with(pinned, "empty")
    r.sadd(keys.VAULTS, "gone")  # an index entry whose hash is gone is left out

    listed = pinned.vaults.all()

    assert [(meta["name"], count) for meta, count in listed] == [("empty", 0), ("prod", 2)]
    assert listed[1][0] == fields(r, "prod")[keys.VAULT_META]


def test_delete_removes_the_hash_and_the_index_entry_and_nothing_else(pinned, r):
    vault_with(pinned, "prod", API_TOKEN=TOKEN)
    vault_with(pinned, "keep", OTHER=TOKEN)
    kept = fields(r, "keep")

    pinned.vaults.delete("prod")

    assert r.exists(keys.vault("prod")) == 0
    assert r.smembers(keys.VAULTS) == {b"keep"}
    assert fields(r, "keep") == kept


def test_delete_of_a_missing_vault_raises_vault_not_found_and_drops_a_stale_index_entry(pinned, r):
    r.sadd(keys.VAULTS, "gone")

    for name in ("nosuch", "gone"):
        with pytest.raises(VaultNotFound) as caught:
            pinned.vaults.delete(name)
        assert caught.value.name == name
    assert r.exists(keys.VAULTS) == 0


def test_put_entry_creates_then_replaces_one_field_stamped_now(pinned, r):
    vault_with(pinned, "prod")

    created = pinned.vaults.put_entry("prod", "API_TOKEN", TOKEN)
    replaced = pinned.vaults.put_entry("prod", "API_TOKEN", REGION)

    stamped = {**REGION, "updated_at": rfc3339(NOW)}
    assert (created, replaced) == ((True, {**TOKEN, "updated_at": rfc3339(NOW)}), (False, stamped))
    assert set(fields(r, "prod")) == {keys.VAULT_META, keys.vault_entry_field("API_TOKEN")}
    assert fields(r, "prod")[keys.vault_entry_field("API_TOKEN")] == stamped


def test_put_entry_into_a_missing_vault_raises_vault_not_found_and_creates_no_hash(pinned, r):
    before = snapshot(r)

    with pytest.raises(VaultNotFound):
        pinned.vaults.put_entry("nosuch", "API_TOKEN", TOKEN)

    assert snapshot(r) == before


def test_delete_entry_removes_only_its_field_and_keeps_an_emptied_vault(pinned, r):
    vault_with(pinned, "prod", API_TOKEN=TOKEN, REGION=REGION)

    pinned.vaults.delete_entry("prod", "API_TOKEN")
    assert set(fields(r, "prod")) == {keys.VAULT_META, keys.vault_entry_field("REGION")}
    pinned.vaults.delete_entry("prod", "REGION")

    assert set(fields(r, "prod")) == {keys.VAULT_META}
    assert r.sismember(keys.VAULTS, "prod")


def test_delete_entry_of_a_missing_entry_or_vault_raises_its_not_found_and_changes_nothing(pinned, r):
    vault_with(pinned, "prod", API_TOKEN=TOKEN)
    before = snapshot(r)

    with pytest.raises(EntryNotFound) as missing_entry:
        pinned.vaults.delete_entry("prod", "NOPE")
    with pytest.raises(VaultNotFound) as missing_vault:
        pinned.vaults.delete_entry("nosuch", "API_TOKEN")

    assert (missing_entry.value.vault, missing_entry.value.key, missing_vault.value.name) == ("prod", "NOPE", "nosuch")
    assert snapshot(r) == before
