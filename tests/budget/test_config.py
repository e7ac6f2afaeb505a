"""The budget config's ``api_key``: a name and the key's id, stored and matched as the key tag."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cachewise.budget import BudgetSpec, load_budgets
from cachewise.budget.config import KEY_TAG, key_id
from cachewise.errors import BudgetConfigError

KEY = "sk-ant-config-test"
SHA = hashlib.sha256(KEY.encode()).hexdigest()


def test_key_id_is_sixteen_hex_digits_of_sha256() -> None:
    assert key_id(KEY) == SHA[:16]


@pytest.mark.parametrize("ref", [f"search-svc:{SHA[:16]}", SHA, f"sha256:{SHA}", f"svc:{SHA.upper()[:20]}"])
def test_api_key_forms_scope_the_budget_by_the_key_tag(ref: str) -> None:
    spec = BudgetSpec.model_validate({"limit": "1", "window": "day", "api_key": ref, "tags": {"team": "a"}})
    assert spec.tags == {"team": "a", KEY_TAG: SHA[:16]}
    assert spec.key_id == SHA[:16]
    assert spec.key_name in ("search-svc", "svc", SHA[:16])
    assert f"key={spec.key_name}" in spec.scope()
    assert KEY_TAG not in spec.scope()


@pytest.mark.parametrize("ref", [KEY, SHA[:15], "name:", "a:b:" + SHA])
def test_a_raw_key_or_short_hash_is_refused_without_echoing_it(tmp_path: Path, ref: str) -> None:
    config = tmp_path / "cachewise.toml"
    config.write_text(f'[[budgets]]\nname = "k"\nlimit = "1"\napi_key = "{ref}"\n', encoding="utf-8")
    with pytest.raises(BudgetConfigError) as caught:
        load_budgets(config)
    assert "budgets[0]" in str(caught.value) and "sha256sum" in str(caught.value)
    assert KEY not in str(caught.value)


def test_api_key_and_a_different_key_tag_conflict() -> None:
    with pytest.raises(ValueError, match="different keys"):
        BudgetSpec.model_validate({"limit": "1", "api_key": SHA, "tags": {KEY_TAG: "0" * 16}})


def test_budgets_without_api_key_are_unchanged() -> None:
    spec = BudgetSpec.model_validate({"limit": "1", "tags": {"feature": "search"}})
    assert spec.api_key is None and spec.key_id is None and spec.key_name is None
    assert spec.scope() == "tag:feature=search"
